import Glibc
import LaneSyscall
import LaneModel

/// Where one of the step's output streams goes: relayed to one of `lanes`' own fds as it
/// arrives (and captured for the journal), or only captured for the JSON result; credential
/// values are redacted before either. Either way at most `limit` bytes are kept; the rest
/// is read and dropped, so a flood neither blocks the step nor grows `lanes`' memory.
struct OutputSink {
    let relayFd: Int32?
    let limit: Int
    private(set) var captured: [UInt8] = []
    private(set) var kept = 0
    private(set) var truncated = false

    /// Credential values are replaced before anything is kept or relayed.
    private var redactor: Redactor?

    init(relayFd: Int32?, limit: Int, redactor: Redactor? = nil) {
        self.relayFd = relayFd
        self.limit = limit
        self.redactor = (redactor?.isEmpty ?? true) ? nil : redactor
    }

    mutating func accept(_ chunk: UnsafeRawBufferPointer) {
        guard let clean = redactor?.feed(chunk) else { return keep(chunk) }
        clean.withUnsafeBytes { keep($0) }
    }

    /// The end of the stream: passes on what the redactor held back.
    mutating func finish() {
        guard let rest = redactor?.finish() else { return }
        rest.withUnsafeBytes { keep($0) }
    }

    private mutating func keep(_ chunk: UnsafeRawBufferPointer) {
        let room = max(0, limit - kept)
        let take = min(room, chunk.count)
        if take < chunk.count { truncated = true }
        guard take > 0 else { return }
        kept += take
        let part = UnsafeRawBufferPointer(rebasing: chunk[0..<take])
        if let relayFd {
            // Our own stdout may be gone: then keep draining the step all the same.
            try? FileDescriptor(rawValue: relayFd).writeAll(part)
        }
        // Kept in both modes: the journal records what was relayed, too.
        captured.append(contentsOf: part)
    }
}
