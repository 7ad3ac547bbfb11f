/// What `lane-init` tells `lanes` on its status fd when it is done: how the tool ended, or which
/// set-up stage failed and why. Fixed layout: kind, value, errno (little-endian i32 each), then
/// the stage name (u32 length + UTF-8).
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
    public var stage: String

    public init(kind: Kind, value: Int32 = 0, errno: Int32 = 0, stage: String = "") {
        self.kind = kind
        self.value = value
        self.errno = errno
        self.stage = stage
    }

    public func encode() -> [UInt8] {
        var w = Writer()
        w.u32(UInt32(bitPattern: kind.rawValue))
        w.u32(UInt32(bitPattern: value))
        w.u32(UInt32(bitPattern: errno))
        w.string(stage)
        return w.out
    }

    public static func decode(_ bytes: [UInt8]) -> InitReport? {
        var r = Reader(input: bytes)
        guard let k = try? r.u32(), let kind = Kind(rawValue: Int32(bitPattern: k)),
              let v = try? r.u32(), let e = try? r.u32(), let s = try? r.string() else { return nil }
        return InitReport(kind: kind, value: Int32(bitPattern: v), errno: Int32(bitPattern: e), stage: s)
    }
}
