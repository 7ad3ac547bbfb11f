import Glibc
import LaneSyscall

/// The file operations a cgroup driver performs, behind a protocol so the drivers' logic can run
/// against a fake tree in a temporary directory (this host has no cgroup2 controllers).
/// Every method returns an errno (0 = success) instead of throwing: the drivers turn failures
/// into `LanesError`s that name the file and the fix.
public protocol CgroupFileSystem: Sendable {
    /// The whole file, or nil when it cannot be read.
    func read(_ path: String) -> String?
    /// Writes `value` in one write(2) (cgroupfs parses each write separately). 0 or errno.
    func write(_ path: String, _ value: String) -> Int32
    /// mkdir(2) with mode 0755. 0 or errno (EEXIST included).
    func makeDirectory(_ path: String) -> Int32
    /// rmdir(2). 0 or errno.
    func removeDirectory(_ path: String) -> Int32
    /// Names of the sub-directories of `path` (not recursive).
    func subdirectories(_ path: String) -> [String]
    /// An O_RDONLY|O_DIRECTORY fd for CLONE_INTO_CGROUP, or -errno.
    func openDirectory(_ path: String) -> Int32
    /// Whether `path` exists.
    func exists(_ path: String) -> Bool
}

/// The real cgroupfs.
public struct HostCgroupFileSystem: CgroupFileSystem {
    public init() {}

    public func read(_ path: String) -> String? {
        readWholeFile(path).map { String(decoding: $0, as: UTF8.self) }
    }

    public func write(_ path: String, _ value: String) -> Int32 {
        writeExistingFile(path, value)
    }

    public func makeDirectory(_ path: String) -> Int32 { mkdir(path, 0o755) == 0 ? 0 : errno }

    public func removeDirectory(_ path: String) -> Int32 { rmdir(path) == 0 ? 0 : errno }

    public func subdirectories(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func openDirectory(_ path: String) -> Int32 {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        return fd >= 0 ? fd : -errno
    }

    public func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}
