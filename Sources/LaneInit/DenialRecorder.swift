import CLaneSys
import Glibc
import LanePlan

/// Answers the seccomp listener of the tool's filter: every call the policy refuses arrives
/// here (SECCOMP_RET_USER_NOTIF), is answered with EPERM (EACCES for ioctl) exactly as the plain
/// errno action would, and is counted per (syscall, set-id). Allowed calls never come here.
struct DenialRecorder {
    private struct Key: Hashable {
        let nr: Int32
        let setid: Bool
    }
    private var order: [Key] = []
    private var entries: [Key: InitReport.DeniedCall] = [:]

    /// Handles one pending notification; false when the listener is gone (every filtered
    /// process has exited) or broken.
    mutating func answer(_ listener: Int32) -> Bool {
        var event = lane_denial_event()
        guard lane_notif_answer(listener, &event) == 0 else { return errno == ENOENT || errno == EINTR }
        let key = Key(nr: event.nr, setid: event.setid_bits != 0)
        if var entry = entries[key] {
            entry.count &+= 1
            entries[key] = entry
        } else {
            order.append(key)
            entries[key] = InitReport.DeniedCall(nr: event.nr, setid: key.setid, count: 1, firstPid: event.pid,
                                                 firstProcess: Self.command(of: event.pid))
        }
        return true
    }

    /// In the order first seen.
    var denials: [InitReport.DeniedCall] { order.compactMap { entries[$0] } }

    /// /proc/PID/comm of the caller (it is blocked in the call, so it is still there).
    static func command(of pid: Int32) -> String {
        let fd = open("/proc/\(pid)/comm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 32)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return "" }
        return String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: "\n")
    }
}

private extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}
