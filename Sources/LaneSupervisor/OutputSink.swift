import Glibc

/// Where one of the step's output streams goes: relayed to one of `lanes`' own fds as it
/// arrives, or captured for the JSON result. Either way at most `limit` bytes are kept; the rest
/// is read and dropped, so a flood neither blocks the step nor grows `lanes`' memory.
struct OutputSink {
    let relayFd: Int32?
    let limit: Int
    private(set) var captured: [UInt8] = []
    private(set) var kept = 0
    private(set) var truncated = false

    init(relayFd: Int32?, limit: Int) {
        self.relayFd = relayFd
        self.limit = limit
    }

    mutating func accept(_ chunk: UnsafeRawBufferPointer) {
        let room = max(0, limit - kept)
        let take = min(room, chunk.count)
        if take < chunk.count { truncated = true }
        guard take > 0 else { return }
        kept += take
        let part = UnsafeRawBufferPointer(rebasing: chunk[0..<take])
        if let relayFd {
            var offset = 0
            while offset < take {
                let n = write(relayFd, part.baseAddress! + offset, take - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }  // our own stdout is gone: keep draining the step
                offset += n
            }
        } else {
            captured.append(contentsOf: part)
        }
    }
}
