import Foundation
import LaneJournal

/// Secrets in the state directory: one file per secret, mode 0600, in `secrets/` (0700).
/// Values are read and written as bytes and never printed; only names and times are listed.
public struct SecretStore: Sendable {
    public let directory: String

    public init(state: StateDirectory) { directory = state.secretsPath }

    public struct Entry: Sendable, Equatable {
        public var name: String
        /// When it was set (seconds since 1970).
        public var setAt: Double
    }

    private func ensureDirectory() throws(JournalError) {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw JournalError(.unavailable, "cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        _ = chmod(directory, 0o700)
    }

    private func file(_ name: String) throws(JournalError) -> String {
        guard isValidName(name) else {
            throw JournalError(.notFound, "invalid secret name \"\(name)\" (use 1–64 of A-Z a-z 0-9 . _ -, not starting with a dot)")
        }
        return directory + "/" + name
    }

    /// Stores the value (replacing an older one atomically).
    public func set(_ name: String, value: [UInt8]) throws(JournalError) {
        let target = try file(name)
        try ensureDirectory()
        let temp = directory + "/.tmp-" + name + "-" + String(getpid())
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw JournalError(.unavailable, "cannot write secret \(name): \(String(cString: strerror(errno)))") }
        var ok = fchmod(fd, 0o600) == 0
        var offset = 0
        while ok && offset < value.count {
            let n = value.withUnsafeBytes { write(fd, $0.baseAddress! + offset, value.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { ok = false } else { offset += n }
        }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok, rename(temp, target) == 0 else {
            unlink(temp)
            throw JournalError(.unavailable, "cannot write secret \(name)")
        }
    }

    /// The value, or nil when there is no such secret.
    public func get(_ name: String) throws(JournalError) -> [UInt8]? {
        let path = try file(name)
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw JournalError(.unavailable, "cannot read secret \(name): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        return readAll(fd)
    }

    /// Removes it; false when there was none.
    @discardableResult
    public func remove(_ name: String) throws(JournalError) -> Bool {
        let path = try file(name)
        if unlink(path) == 0 { return true }
        if errno == ENOENT { return false }
        throw JournalError(.unavailable, "cannot remove secret \(name): \(String(cString: strerror(errno)))")
    }

    /// Names and times, sorted by name.
    public func list() throws(JournalError) -> [Entry] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.filter { !$0.hasPrefix(".") }.sorted().compactMap { name in
            var st = stat()
            guard lstat(directory + "/" + name, &st) == 0 else { return nil }
            return Entry(name: name, setAt: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
        }
    }

    func isValidName(_ s: String) -> Bool {
        guard !s.isEmpty, s.count <= 64, !s.hasPrefix(".") else { return false }
        return s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "_" || $0 == "-" }
    }
}

/// Reads an fd to its end.
func readAll(_ fd: Int32) -> [UInt8] {
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return out
}
