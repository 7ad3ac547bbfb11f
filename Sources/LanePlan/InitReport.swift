/// What `lane-init` tells `lanes` on its status fd when it is done: how the tool ended, or which
/// set-up stage failed and why. Fixed layout: kind, value, errno, stage number (little-endian
/// i32 each; the stage from `lane_stages.h`, 0 when none), then a detail (u32 length + UTF-8),
/// e.g. the mount target of a failed bind.
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

    public init(kind: Kind, value: Int32 = 0, errno: Int32 = 0, stage: SetupStage? = nil, detail: String = "") {
        self.kind = kind
        self.value = value
        self.errno = errno
        self.stage = stage
        self.detail = detail
    }

    public func encode() -> [UInt8] {
        var w = Writer()
        w.u32(UInt32(bitPattern: kind.rawValue))
        w.u32(UInt32(bitPattern: value))
        w.u32(UInt32(bitPattern: errno))
        w.u32(UInt32(bitPattern: stage?.code ?? 0))
        w.string(detail)
        return w.out
    }

    public static func decode(_ bytes: [UInt8]) -> InitReport? {
        var r = Reader(input: bytes)
        guard let k = try? r.u32(), let kind = Kind(rawValue: Int32(bitPattern: k)),
              let v = try? r.u32(), let e = try? r.u32(), let s = try? r.u32(), let d = try? r.string() else { return nil }
        let stage = s == 0 ? nil : SetupStage(code: Int32(bitPattern: s))
        if s != 0 && stage == nil { return nil }
        return InitReport(kind: kind, value: Int32(bitPattern: v), errno: Int32(bitPattern: e), stage: stage, detail: d)
    }
}
