import CLaneSys
import Glibc
import LanePlan
import LaneSyscall

/// A set-up stage (from `lane_stages.h`) that failed, what it was working on, and the errno.
struct SetupFailure: Error {
    let stage: SetupStage
    let detail: String
    let errno: Int32
    init(_ stage: lane_stage, _ detail: String = "", _ err: Int32 = Glibc.errno) {
        self.stage = SetupStage(stage)
        self.detail = detail
        self.errno = err
    }

    var report: InitReport { InitReport(kind: .setupFailed, errno: errno, stage: stage, detail: detail) }
}

/// Throws `SetupFailure(stage, detail)` when a syscall returned -1.
@discardableResult
func check(_ result: Int32, _ stage: lane_stage, _ detail: @autoclosure () -> String = "") throws(SetupFailure) -> Int32 {
    if result == -1 { throw SetupFailure(stage, detail()) }
    return result
}

/// The status pipe to `lanes`. Exactly one report is written.
struct StatusChannel {
    let fd: FileDescriptor

    func send(_ report: InitReport) {
        // Nothing to do if `lanes` is gone: it reads a missing report as a failed start.
        try? fd.writeAll(report.encode())
    }

    func fail(_ failure: SetupFailure) -> Never {
        send(failure.report)
        exit(0)
    }
}

/// The `prctl` lane-init calls; a parameter so a test can make it fail (see `makeNondumpable`).
typealias Prctl = (Int32, UInt, UInt, UInt, UInt) -> Int32

/// Makes lane-init non-dumpable, so the tool can neither ptrace PID 1 nor open
/// /proc/1/{environ,mem,exe}, and reads the flag back: a flag that did not stick refuses the
/// step like a failed call (the `nondumpable_init` protection is reported only when it holds).
///
/// `prctl` is injected only by `LanesTests` (NondumpableTests), to prove the refusal path: the
/// real call cannot be made to fail from outside, and lane-init takes no environment or other
/// input a step could steer, so a test seam must be a parameter of this function, not a switch.
func makeNondumpable(prctl: Prctl = lane_prctl) throws(SetupFailure) {
    try check(prctl(LANE_PR_SET_DUMPABLE, 0, 0, 0, 0), LANE_STAGE_NONDUMPABLE, "PR_SET_DUMPABLE")
    let dumpable = prctl(LANE_PR_GET_DUMPABLE, 0, 0, 0, 0)
    if dumpable == -1 { throw SetupFailure(LANE_STAGE_NONDUMPABLE, "PR_GET_DUMPABLE") }
    if dumpable != 0 { throw SetupFailure(LANE_STAGE_NONDUMPABLE, "still dumpable after PR_SET_DUMPABLE", EPERM) }
}

/// The command of a prestarted sandbox: one message on the unix socket `fd`, after the waiting
/// tool process said on it that the sandbox is complete (one byte, `SpawnPlan.readyByte`:
/// `lanes` then records the sandbox's mount table, and checks it again when a step claims it).
/// End of file, or a `lanes` that is gone, means the sandbox is not needed: the tool process
/// exits at once, having run nothing, and PID 1 with it.
func receiveCommand(fd: Int32) throws(SetupFailure) -> StepCommand {
    var ready = SpawnPlan.readyByte
    if retryOnInterrupt({ send(fd, &ready, 1, Int32(MSG_NOSIGNAL)) }) != 1 { exit(0) }
    // MSG_TRUNC: the message's real length, so an oversized one is refused, not cut. The buffer
    // is not zeroed first: only the pages the message lands on are touched (this process is a
    // fork of PID 1, and zeroing 64 KiB cost it 16 page faults in every prestarted step).
    var n = 0
    let buffer = [UInt8](unsafeUninitializedCapacity: StepCommand.maxEncodedBytes + 1) { raw, initialized in
        n = retryOnInterrupt { recv(fd, raw.baseAddress, raw.count, Int32(MSG_TRUNC)) }
        initialized = max(0, min(n, raw.count))
    }
    if n == 0 { exit(0) }
    guard n > 0 else { throw SetupFailure(LANE_STAGE_PLAN, "receive the step's command") }
    guard n <= StepCommand.maxEncodedBytes else { throw SetupFailure(LANE_STAGE_PLAN, "the step's command is too long", E2BIG) }
    do { return try PlanCodec.decodeCommand(buffer) } catch {
        throw SetupFailure(LANE_STAGE_PLAN, "malformed command at byte \(error.offset)", EINVAL)
    }
}

func readPlan(fd: FileDescriptor) throws(SetupFailure) -> SpawnPlan {
    // The memfd's offset is where `lanes` stopped writing: read from the start.
    var bytes = [UInt8](repeating: 0, count: 0)
    var st = stat()
    guard fstat(fd.rawValue, &st) == 0 else { throw SetupFailure(LANE_STAGE_READ_PLAN) }
    guard lseek(fd.rawValue, 0, SEEK_SET) == 0 else { throw SetupFailure(LANE_STAGE_READ_PLAN) }
    do { bytes = try fd.readAll(limit: Int(st.st_size)) } catch { throw SetupFailure(LANE_STAGE_READ_PLAN, "", error.rawValue) }
    guard bytes.count == Int(st.st_size) else { throw SetupFailure(LANE_STAGE_READ_PLAN, "short read", EIO) }
    do { return try PlanCodec.decode(bytes) } catch { throw SetupFailure(LANE_STAGE_READ_PLAN, "undecodable plan", EINVAL) }
}

/// Hostname and loopback of the new uts and net namespaces.
func configureHost(_ plan: SpawnPlan) throws(SetupFailure) {
    try check(sethostname(plan.hostname, plan.hostname.utf8.count), LANE_STAGE_HOSTNAME)
    if plan.loopbackUp { try check(lane_loopback_up(), LANE_STAGE_LOOPBACK) }
}

func applyLimits(_ limits: [ResourceLimit]) throws(SetupFailure) {
    for limit in limits {
        var rl = rlimit(rlim_cur: rlim_t(limit.soft), rlim_max: rlim_t(limit.hard))
        try check(setrlimit(__rlimit_resource_t(UInt32(limit.resource)), &rl), LANE_STAGE_RLIMITS,
                  "\(resourceName(limit.resource)) \(limit.soft)/\(limit.hard)")
    }
}

/// The RLIMIT_ name of a resource number (for messages).
func resourceName(_ resource: Int32) -> String {
    switch resource {
    case Int32(RLIMIT_CORE.rawValue): "RLIMIT_CORE"
    case Int32(RLIMIT_NOFILE.rawValue): "RLIMIT_NOFILE"
    case Int32(RLIMIT_FSIZE.rawValue): "RLIMIT_FSIZE"
    case Int32(RLIMIT_CPU.rawValue): "RLIMIT_CPU"
    case Int32(__RLIMIT_NPROC.rawValue): "RLIMIT_NPROC"
    default: "resource \(resource)"
    }
}

/// PID 1's last act before it exits. Order matters: no other process of the sandbox may be left
/// when `lanes` reads the report (the tool's leftovers, or the egress relay after a failed
/// set-up: killed and reaped), and PID 1's copies of the step's stdio close before the report is
/// sent, so the output pipes are at EOF by the time `lanes` has it. `lanes` may then finish the
/// step while PID 1's exit still tears the namespaces down (InitReport.ending). The steps are
/// parameters so a test can check the order (LastActTests): the real kill cannot run in a test
/// process, where kill(-1) would reach every process of the user.
struct LastAct {
    var killRemaining: () -> Void = InitLoop.killRemaining
    var resourceUse: () -> InitReport.Ending = lane_init.resourceUse
    var close: (Int32) -> Void = { _ = Glibc.close($0) }
    /// Writes the report to the status pipe (fd 4).
    let send: (InitReport) -> Void

    func perform(_ report: InitReport) {
        killRemaining()
        var report = report
        report.ending = resourceUse()
        for fd: Int32 in [0, 1, 2] { close(fd) }
        send(report)
        close(4)
    }
}

/// What PID 1 and every process it reaped used: the rusage `wait4` would give `lanes` for PID 1.
func resourceUse() -> InitReport.Ending {
    var me = rusage(), children = rusage()
    _ = getrusage(RUSAGE_SELF.rawValue, &me)
    _ = getrusage(RUSAGE_CHILDREN.rawValue, &children)
    func micros(_ t: timeval) -> UInt64 { UInt64(max(0, t.tv_sec)) * 1_000_000 + UInt64(max(0, t.tv_usec)) }
    let cpu = micros(me.ru_utime) + micros(me.ru_stime) + micros(children.ru_utime) + micros(children.ru_stime)
    return InitReport.Ending(cpuMicros: cpu, maxRssKb: UInt64(max(0, max(me.ru_maxrss, children.ru_maxrss))))
}
