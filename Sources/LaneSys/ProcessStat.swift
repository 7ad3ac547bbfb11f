import Glibc

/// The fields of `/proc/PID/stat` that lanes uses to tell a process from a later one with the
/// same pid: its start time, its state and its parent. Read with plain read(2): supervisors do
/// this on every step, and several parts of lanes (journal liveness, cgroup ownership, `lanes
/// stop`) share this one parser.
public struct ProcessStat: Sendable, Equatable {
    /// Field 3: R, S, D, Z, T, …
    public var state: UInt8
    /// Field 4.
    public var parent: Int32
    /// Field 22: clock ticks after boot.
    public var startTime: UInt64

    /// The process's stat, or nil when there is no such process (in this pid namespace).
    /// Whether the process `pid` that started at `startTime` still runs (not reused, not a zombie).
    public static func isRunning(pid: Int32, startTime: UInt64) -> Bool {
        guard let s = read(pid) else { return false }
        return s.startTime == startTime && s.state != UInt8(ascii: "Z")
    }

    public static func read(_ pid: Int32) -> ProcessStat? {
        readProcFile("/proc/\(pid)/stat").flatMap { parse($0[...]) }
    }

    /// Parses the text of a stat file. The command (field 2) is in parentheses and may hold
    /// spaces and parentheses itself, so fields are counted from its last ")".
    public static func parse(_ bytes: ArraySlice<UInt8>) -> ProcessStat? {
        guard let paren = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(paren + 1)...].split(separator: UInt8(ascii: " "))
        // fields[0] is field 3 (state), so field N is fields[N - 3].
        guard fields.count > 19, let state = fields[0].first,
              let parent = Int32(String(decoding: fields[1], as: UTF8.self)),
              let start = UInt64(String(decoding: fields[19], as: UTF8.self)) else { return nil }
        return ProcessStat(state: state, parent: parent, startTime: start)
    }
}

/// A small /proc or /sys file's bytes with one read(2) (no Foundation start-up; the kernel
/// produces these files whole in one read), or nil when it cannot be read.
public func readProcFile(_ path: String, limit: Int = 4096) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: limit)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    return n > 0 ? Array(buffer.prefix(n)) : nil
}
