import Glibc
import LaneModel

/// Reading a change set's contents for `lanes diff` (never following a link in any tree).
public enum ChangeInspection {
    /// The most bytes read of one side of a file for a diff.
    public static let maxBytes = 1 << 20

    /// What `entry.path` held before and holds after the change, as far as still known: pending →
    /// the workspace now and the step's upper directory; applied → the kept pre-image and the
    /// workspace now. nil for a side that is absent, not a file, or no longer available.
    public static func sides(_ set: ChangeSet, _ entry: ChangeEntry, store: ChangeStore) -> (before: [UInt8]?, after: [UInt8]?) {
        guard let ws = try? DirectoryFD.open(absolute: set.workspace) else { return (nil, nil) }
        let beforePath = entry.from ?? entry.path
        switch set.state {
        case .pending, .conflict, .failed:
            let upper = (try? store.upper(run: set.run, step: set.step)).flatMap { try? DirectoryFD.open(absolute: $0) }
            let after = entry.type == .file ? upper.flatMap { read($0, entry.path) } : nil
            return (read(ws, beforePath), after)
        case .applied:
            let objects = (try? store.undo(run: set.run, step: set.step)).map { ObjectStore(directory: $0) }
            let image = set.preImages?.first { $0.path == beforePath }
            var before: [UInt8]?
            if let hash = image?.state?.sha256, let objects, let fd = try? objects.open(hash) {
                before = readFd(fd)
                close(fd)
            }
            return (before, read(ws, entry.path))
        case .discarded, .reverted:
            return (nil, nil)
        }
    }

    static func read(_ dir: DirectoryFD, _ path: String) -> [UInt8]? {
        let fd = dir.openBeneath(path, flags: O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return readFd(fd)
    }

    static func readFd(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 1 << 16)
        while out.count <= maxBytes {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }
}
