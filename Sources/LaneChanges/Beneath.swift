import CLaneSys
import Crypto
import Glibc
import LaneModel

/// A directory fd that closes itself, and the operations the change-set engine makes relative to
/// it. Every path given here is workspace-relative and resolved with openat2(RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): no component may be a symlink and nothing can
/// leave the directory, whatever the tree looks like when the call is made.
final class DirectoryFD {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    /// Opens an absolute host directory (no symlink in its last component).
    static func open(absolute path: String) throws(LanesError) -> DirectoryFD {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw sysError("open \(path)") }
        return DirectoryFD(fd: fd)
    }

    static let resolve = UInt64(LANE_RESOLVE_BENEATH | LANE_RESOLVE_NO_SYMLINKS | LANE_RESOLVE_NO_MAGICLINKS)

    /// Opens `path` below this directory without following any symlink.
    func openBeneath(_ path: String, flags: Int32, mode: UInt32 = 0) -> Int32 {
        lane_openat2(fd, path, UInt64(flags | O_CLOEXEC | O_NOFOLLOW), UInt64(mode), Self.resolve)
    }

    /// Opens the directory `path` ("" or "." for this one).
    func directory(_ path: String) throws(LanesError) -> DirectoryFD {
        let fd = openBeneath(path.isEmpty ? "." : path, flags: O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw Self.sysError("open directory \(path.isEmpty ? "." : path)") }
        return DirectoryFD(fd: fd)
    }

    /// The parent directory of `path` and its last component.
    func parent(of path: String) throws(LanesError) -> (DirectoryFD, String) {
        let (dir, name) = splitPath(path)
        return (try directory(dir), name)
    }

    /// lstat of `name` in this directory; nil when it does not exist.
    func lstat(_ name: String) throws(LanesError) -> stat? {
        var st = stat()
        if fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 { return st }
        if errno == ENOENT { return nil }
        throw Self.sysError("stat \(name)")
    }

    /// The state of `path` below this directory; nil when it (or a parent) does not exist.
    /// A parent that is a symlink or not a directory is an error, never followed.
    func state(of path: String, hash: Bool) throws(LanesError) -> PathState? {
        let (dir, name) = splitPath(path)
        let parentFd = openBeneath(dir.isEmpty ? "." : dir, flags: O_RDONLY | O_DIRECTORY)
        if parentFd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw Self.sysError("open directory of \(path)")
        }
        let parent = DirectoryFD(fd: parentFd)
        guard let st = try parent.lstat(name) else { return nil }
        var s = PathState(st)
        if s.type == .symlink { s.linkTarget = try parent.readLink(name) }
        if hash && s.type == .file { s.sha256 = try parent.hashFile(name) }
        return s
    }

    func readLink(_ name: String) throws(LanesError) -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(fd, name, &buf, buf.count - 1)
        guard n >= 0 else { throw Self.sysError("readlink \(name)") }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// SHA-256 of the regular file `name` (opened without following links, non-blocking).
    func hashFile(_ name: String) throws(LanesError) -> String {
        let f = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard f >= 0 else { throw Self.sysError("open \(name)") }
        defer { close(f) }
        var st = stat()
        guard fstat(f, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw LanesError(.setupFailed, stage: "changes", "\(name) is not a regular file")
        }
        return try Self.hash(fd: f, copyTo: nil)
    }

    /// Reads `fd` to its end, hashing it and (if given) writing every byte to `copyTo`.
    static func hash(fd: Int32, copyTo out: Int32?) throws(LanesError) -> String {
        var hasher = SHA256()
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw sysError("read")
            }
            if n == 0 { break }
            hasher.update(data: buf[0..<n])
            if let out {
                var done = 0
                while done < n {
                    let w = buf.withUnsafeBytes { write(out, $0.baseAddress! + done, n - done) }
                    if w < 0 {
                        if errno == EINTR { continue }
                        throw sysError("write")
                    }
                    done += w
                }
            }
        }
        return hexString(hasher.finalize())
    }

    /// The names in this directory (without . and ..).
    func names() throws(LanesError) -> [String] {
        let dupFd = dup(fd)
        guard dupFd >= 0, let dir = fdopendir(dupFd) else { throw Self.sysError("opendir") }
        defer { closedir(dir) }
        rewinddir(dir)
        var out: [String] = []
        while let ent = readdir(dir) {
            let name = withUnsafePointer(to: ent.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    static func sysError(_ what: String) -> LanesError {
        let e = errno
        return LanesError(.setupFailed, stage: "changes", errno: e, "\(what): \(String(cString: strerror(e)))")
    }
}

/// "a/b/c" → ("a/b", "c"); "c" → ("", "c").
func splitPath(_ path: String) -> (String, String) {
    guard let slash = path.lastIndex(of: "/") else { return ("", path) }
    return (String(path[..<slash]), String(path[path.index(after: slash)...]))
}

func joinPath(_ dir: String, _ name: String) -> String { dir.isEmpty ? name : dir + "/" + name }

/// A workspace-relative path that cannot leave the workspace: not empty, not absolute, no empty,
/// `.` or `..` component, no NUL.
public func isSafeRelativePath(_ p: String) -> Bool {
    !p.isEmpty && !p.hasPrefix("/") && !p.contains("\0")
        && !p.split(separator: "/", omittingEmptySubsequences: false).contains { $0.isEmpty || $0 == "." || $0 == ".." }
}

/// Whether `path` is `dir` or lies below it (relative paths).
func isInsideRelative(_ path: String, _ dir: String) -> Bool { path == dir || path.hasPrefix(dir + "/") }
