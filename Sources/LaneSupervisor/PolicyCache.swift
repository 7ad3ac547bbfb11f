import Crypto
import Glibc
import LaneModel
import LaneSys
import LaneSyscall

/// Keeps compiled seccomp programs on disk, so a profile's policy is compiled once, not on every
/// step (libseccomp needs about 3 ms for the allow-list; a cache hit is one small read).
///
/// The key is a SHA-256 of the profile's seccomp section and of the identity of the running
/// `lanes` binary (inode, size, mtime), so a changed policy or a rebuilt binary never reuses a
/// stale program. Entries are written to a temporary name and renamed into place, so a reader
/// never sees half a file. The directory lives in the state directory, which no sandbox sees.
public struct PolicyCache: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The compiled program for `policy`, from the cache or freshly compiled (and then stored).
    public func filter(for policy: Profile.Seccomp) throws(LanesError) -> [UInt8] {
        let path = directory + "/" + key(policy) + ".bpf"
        if let cached = Self.read(path), !cached.isEmpty, cached.count % 8 == 0 { return cached }
        let compiled = try SeccompCompiler.compile(policy)
        store(compiled, at: path)
        return compiled
    }

    func key(_ policy: Profile.Seccomp) -> String {
        var st = stat()
        _ = stat("/proc/self/exe", &st)
        let identity = "\(st.st_ino) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        // Each name length-prefixed (unambiguous for any text), not `\(array)`: Array's
        // description goes through debugPrint and its first use cost ~0.2 ms of a one-shot run.
        // By hand, not `joined(separator:)`: its first use in a process costs a scan of the
        // static binary's protocol conformances (~70 µs of a `lanes run`; docs/benchmarks.md).
        func list(_ names: [String]) -> String {
            var out = ""
            for name in names {
                if !out.isEmpty { out += "," }
                out += String(name.utf8.count)
                out += ":"
                out += name
            }
            return out
        }
        let text = "\(identity)\n\(policy.defaultAction.rawValue)\nallow \(list(policy.allow))\ndeny \(list(policy.deny))"
        return hexString(SHA256.hash(data: Array(text.utf8)))
    }

    /// Best effort: a cache that cannot be written only costs the next step a compile.
    private func store(_ bytes: [UInt8], at path: String) {
        _ = mkdir(directory, 0o700)
        let temporary = path + ".\(getpid()).tmp"
        guard let fd = try? FileDescriptor.openOwned(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600) else { return }
        let written = (try? fd.descriptor.writeAll(bytes)) != nil
        fd.close()
        if written { _ = rename(temporary, path) } else { _ = unlink(temporary) }
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let fd = try? FileDescriptor.openOwned(path, O_RDONLY | O_NOFOLLOW) else { return nil }
        var st = stat()
        guard fstat(fd.raw, &st) == 0, st.st_size > 0, st.st_size < 1 << 20 else { return nil }
        guard let bytes = try? fd.descriptor.readAll(limit: Int(st.st_size)), bytes.count == Int(st.st_size) else { return nil }
        return bytes
    }
}
