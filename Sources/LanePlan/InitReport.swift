/// What `lane-init` tells `lanes` on its status fd when it is done: how the tool ended, or which
/// set-up stage failed and why. Fixed layout: kind, value, errno, stage number (little-endian
/// i32 each; the stage from `lane_stages.h`, 0 when none), then a detail (u32 length + UTF-8),
/// e.g. the mount target of a failed bind; the denials; then, when PID 1 sends it as it ends,
/// its `Ending` (flag, CPU microseconds, peak RSS KiB: u32, u64, u64).
public struct InitReport: Sendable, Equatable {
    public enum Kind: Int32, Sendable {
        /// The tool exited; `value` is its exit code.
        case exited = 1
        /// The tool was killed by signal `value`.
        case signaled = 2
        /// Sandbox set-up failed at `stage` with `errno`.
        case setupFailed = 3
        /// The command could not be executed; `value` is 126 or 127.
        case execFailed = 4
    }
    public var kind: Kind
    public var value: Int32
    public var errno: Int32
    /// The stage that failed (`setupFailed`, `execFailed`).
    public var stage: SetupStage?
    /// What the stage was working on, e.g. a mount target; never a secret (plans hold none in
    /// paths or names, only in credential file contents).
    public var detail: String
    /// The calls the seccomp policy refused, one entry per (syscall, set-id) pair.
    public var denials: [DeniedCall]
    /// Set by PID 1 when it sends the report as its last act: every other process of the sandbox
    /// has exited and been reaped (the sandbox cannot run anything any more), its copies of the
    /// step's stdio are closed, and what PID 1 and its reaped processes used is here. `lanes` may
    /// then finish the step without waiting for PID 1's own exit, which tears the namespaces down
    /// (0.4-2 ms on this VM); nil from an older or failed PID 1.
    public var ending: Ending?

    /// The sandbox's resource use as PID 1 ends (`getrusage` of itself and of its children).
    public struct Ending: Sendable, Equatable {
        public var cpuMicros: UInt64
        public var maxRssKb: UInt64
        public init(cpuMicros: UInt64, maxRssKb: UInt64) {
            self.cpuMicros = cpuMicros
            self.maxRssKb = maxRssKb
        }
    }

    public init(kind: Kind, value: Int32 = 0, errno: Int32 = 0, stage: SetupStage? = nil, detail: String = "",
                denials: [DeniedCall] = []) {
        self.kind = kind
        self.value = value
        self.errno = errno
        self.stage = stage
        self.detail = detail
        self.denials = denials
    }

    /// A system call the policy refused, as PID 1 recorded it: its number, whether it was a
    /// mode-setting call refused for S_ISUID/S_ISGID, how often, and the first caller.
    public struct DeniedCall: Sendable, Equatable {
        public var nr: Int32
        public var setid: Bool
        public var count: UInt32
        /// The first caller's pid in the sandbox's pid namespace and its command name.
        public var firstPid: Int32
        public var firstProcess: String
        public init(nr: Int32, setid: Bool, count: UInt32, firstPid: Int32, firstProcess: String) {
            self.nr = nr
            self.setid = setid
            self.count = count
            self.firstPid = firstPid
            self.firstProcess = firstProcess
        }
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(bitPattern: kind.rawValue))
        w.u32(UInt32(bitPattern: value))
        w.u32(UInt32(bitPattern: errno))
        w.u32(UInt32(bitPattern: stage?.code ?? 0))
        w.string(detail)
        w.u32(UInt32(denials.count))
        for d in denials {
            w.u32(UInt32(bitPattern: d.nr))
            w.u32(d.setid ? 1 : 0)
            w.u32(d.count)
            w.u32(UInt32(bitPattern: d.firstPid))
            w.string(d.firstProcess)
        }
        if let ending {
            w.u32(1)
            w.u64(ending.cpuMicros)
            w.u64(ending.maxRssKb)
        }
        return w.out
    }

    public static func decode(_ bytes: [UInt8]) -> InitReport? {
        var r = ByteReader(input: bytes)
        guard let k = try? r.u32(), let kind = Kind(rawValue: Int32(bitPattern: k)),
              let v = try? r.u32(), let e = try? r.u32(), let s = try? r.u32(), let d = try? r.string(),
              let n = try? r.count() else { return nil }
        let stage = s == 0 ? nil : SetupStage(code: Int32(bitPattern: s))
        if s != 0 && stage == nil { return nil }
        var denials: [DeniedCall] = []
        for _ in 0..<n {
            guard let nr = try? r.u32(), let setid = try? r.u32(), let count = try? r.u32(), let pid = try? r.u32(),
                  let name = try? r.string() else { return nil }
            denials.append(DeniedCall(nr: Int32(bitPattern: nr), setid: setid != 0, count: count,
                                      firstPid: Int32(bitPattern: pid), firstProcess: name))
        }
        var report = InitReport(kind: kind, value: Int32(bitPattern: v), errno: Int32(bitPattern: e), stage: stage, detail: d,
                                denials: denials)
        if r.offset < bytes.count {
            guard let flag = try? r.u32(), flag == 1, let cpu = try? r.u64(), let rss = try? r.u64(),
                  r.offset == bytes.count else { return nil }
            report.ending = Ending(cpuMicros: cpu, maxRssKb: rss)
        }
        return report
    }
}
