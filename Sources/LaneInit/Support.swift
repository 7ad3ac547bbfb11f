import CLaneSys
import Glibc
import LanePlan

/// A set-up step that failed, with the errno it failed with.
struct SetupFailure: Error {
    let stage: String
    let errno: Int32
    init(_ stage: String, _ err: Int32 = Glibc.errno) {
        self.stage = stage
        self.errno = err
    }
}

/// Throws `SetupFailure(stage)` when a syscall returned -1.
@discardableResult
func check(_ result: Int32, _ stage: @autoclosure () -> String) throws(SetupFailure) -> Int32 {
    if result == -1 { throw SetupFailure(stage()) }
    return result
}

/// The status pipe to `lanes`. Exactly one report is written.
struct StatusChannel {
    let fd: Int32

    func send(_ report: InitReport) {
        let bytes = report.encode()
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    func fail(stage: String, errno: Int32) -> Never {
        send(InitReport(kind: .setupFailed, errno: errno, stage: stage))
        exit(0)
    }
}

func readPlan(fd: Int32) throws -> SpawnPlan {
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw SetupFailure("read plan") }
    var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
        if n <= 0 { throw SetupFailure("read plan") }
        done += n
    }
    return try PlanCodec.decode(bytes)
}

/// Hostname and loopback of the new uts and net namespaces.
func configureHost(_ plan: SpawnPlan) throws(SetupFailure) {
    try check(sethostname(plan.hostname, plan.hostname.utf8.count), "sethostname")
    if plan.loopbackUp { try check(lane_loopback_up(), "loopback up") }
}

func applyLimits(_ limits: [ResourceLimit]) throws(SetupFailure) {
    for limit in limits {
        var rl = rlimit(rlim_cur: rlim_t(limit.soft), rlim_max: rlim_t(limit.hard))
        try check(setrlimit(__rlimit_resource_t(UInt32(limit.resource)), &rl), "setrlimit \(limit.resource)")
    }
}
