// lane-init: the helper that becomes PID 1 of a step's sandbox.
//
// `lanes` clones it into fresh user, pid, mount, net, uts, ipc and cgroup namespaces (as uid 0
// of the new user namespace, with every capability there) and passes:
//   fd 0-2  the step's stdio pipes
//   fd 3    a memfd holding the SpawnPlan
//   fd 4    the status pipe, where one InitReport is written at the end
//   fd 5    (proxy mode only) the egress channel to the supervisor's proxy (EgressRelay)
// It is single-threaded and freshly exec'd, so ordinary Swift is safe here. It reads top to
// bottom in the order the kernel requires; each failure names its stage.
import CLaneSys
import Glibc
import LanePlan

// Not dumpable: the tool can neither ptrace PID 1 nor open /proc/1/{environ,mem,exe}.
_ = lane_prctl(LANE_PR_SET_DUMPABLE, 0, 0, 0, 0)

let status = StatusChannel(fd: 4)
let plan: SpawnPlan
do {
    plan = try readPlan(fd: 3)
} catch {
    status.fail(stage: "read plan", errno: EINVAL)
}
close(3)

do throws(SetupFailure) {
    try SandboxFilesystem(plan: plan).build()
    try configureHost(plan)
    try applyLimits(plan.rlimits)
    // After loopback is up, before the tool exists (so the tool cannot take the port).
    try EgressRelay.start(plan)
} catch {
    status.fail(stage: error.stage, errno: error.errno)
}

let report = InitLoop(plan: plan).run()
status.send(report)
exit(0)
