// lane-init: the helper that becomes PID 1 of a step's sandbox.
//
// `lanes` clones it into fresh user, pid, mount, net, uts, ipc and cgroup namespaces (as uid 0
// of the new user namespace, with every capability there) and passes:
//   fd 0-2  the step's stdio pipes
//   fd 3    a memfd holding the SpawnPlan
//   fd 4    the status pipe, where one InitReport is written at the end
//   fd 5    a unix socket; when the plan attaches trees, `lanes` sent them on it (SCM_RIGHTS);
//           in a prestarted sandbox (`awaitsCommand`) the forked tool process then says the
//           sandbox is ready and waits there for its StepCommand
//   fd 6    (proxy mode only) the egress channel to the supervisor's proxy (EgressRelay)
// It is single-threaded and freshly exec'd, so ordinary Swift is safe here. It reads top to
// bottom in the order the kernel requires; each failure names its stage (lane_stages.h).
import CLaneSys
import Glibc
import LanePlan
import LaneSyscall

let status = StatusChannel(fd: FileDescriptor(rawValue: 4))
let plan: SpawnPlan
do throws(SetupFailure) {
    // First: nothing of the plan is read while PID 1 could still be inspected.
    try makeNondumpable()
    let planFd = OwnedDescriptor(adopting: 3)
    plan = try readPlan(fd: planFd.descriptor)
} catch {
    status.fail(error)
}

do throws(SetupFailure) {
    var filesystem = SandboxFilesystem(plan: plan)
    let treeCount = plan.mounts.reduce(0) { $0 + $1.treeCount }
    if treeCount > 0 {
        var fds = [Int32](repeating: -1, count: Int(LANE_MAX_PASSED_FDS))
        let got = lane_recv_fds(5, &fds, LANE_MAX_PASSED_FDS)
        guard got == treeCount else { throw SetupFailure(LANE_STAGE_ATTACH, "receive workspace trees", got < 0 ? errno : EPROTO) }
        filesystem.trees = Array(fds.prefix(Int(got)))
    }
    if !plan.awaitsCommand { close(5) }
    try filesystem.build()
    for fd in filesystem.trees { close(fd) }
    try configureHost(plan)
    try applyLimits(plan.rlimits)
    // After loopback is up, before the tool exists (so the tool cannot take the port).
    try EgressRelay.start(plan)
} catch {
    status.fail(error)
}

// A prestarted sandbox is complete now. Its tool process is forked at once and gets as far as
// it can without the command (own session and user namespace, no capabilities, default
// signals); then it says the sandbox is ready and waits on fd 5 for the step's command. Nothing
// of the tool runs before the command arrives (ToolLauncher).
let report = InitLoop(plan: plan, commandFd: plan.awaitsCommand ? 5 : -1).run()
LastAct(send: { status.send($0) }).perform(report)
exit(0)
