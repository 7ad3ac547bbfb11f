import Glibc
import LaneConfig
import LaneModel
import LanePlan
import LaneSupervisor
import LaneSyscall

/// The compiled configuration cache: a lane, its profile, the compiled seccomp program and the
/// policy's fingerprint, as one binary file per lane in the state directory, so a one-shot
/// `lanes run` reads one small file instead of parsing two TOML files and hashing the policy
/// (about 0.8 ms of a one-shot's CPU; docs/benchmarks.md, stop 14).
///
/// An entry is used only when it holds, byte for byte, the lane file and the profile file as they
/// are now, was written by this very binary (device, inode, size, times of `/proc/self/exe`: a
/// rebuilt `lanes` has another parser and another libseccomp), and decodes completely. Anything
/// else is a miss, which parses the files as before and writes the entry again; a file that does
/// not parse is never cached, so every error still names its `FILE:LINE`. Entries are written to
/// a temporary name and renamed into place; the state directory is not visible to any sandbox.
struct CompiledConfigFile {
    let directory: String
    /// The running binary's identity (tests give another); nil turns the cache off.
    let identity: String?
    static let magic: UInt32 = 0x4C4E_4331  // "LNC1"

    init(directory: String, identity: String? = CompiledConfigFile.binaryIdentity) {
        self.directory = directory
        self.identity = identity
    }

    /// The cached lane, profile, program and fingerprint for `lane` of `store`, if still valid.
    func load(lane name: String, store: ConfigStore) -> (Lane, CompiledProfile)? {
        guard isSafeName(name), let identity, let laneText = readWholeFile(store.laneFile(name)),
              let bytes = readWholeFile(path(lane: name, store: store, identity: identity), flags: O_NOFOLLOW, limit: 1 << 20)
        else { return nil }
        var r = ByteReader(input: bytes)
        do throws(PlanDecodingError) {
            try r.require(try r.u32() == Self.magic)
            try r.require(try r.string() == identity)
            try r.require(try r.string() == store.root)
            try r.require(try r.string() == name)
            try r.require(try r.bytes() == laneText)
            let profileText = try r.bytes()
            let (lane, profile) = try ConfigCodec.decode(&r)
            // The profile the lane names now, as it is now.
            guard lane.name == name, readWholeFile(store.profileFile(lane.profile)) == profileText else { return nil }
            let filter = try r.bytes(), fingerprint = try r.string()
            try r.require(r.atEnd && !filter.isEmpty && filter.count % 8 == 0)
            return (lane, CompiledProfile(profile, seccompFilter: filter, fingerprint: fingerprint))
        } catch {
            return nil
        }
    }

    /// Best effort: an entry that cannot be written only costs the next one-shot a parse.
    /// `laneText` and `profileText` are the files' bytes the lane and profile were parsed from.
    func store(lane: Lane, compiled: CompiledProfile, laneText: [UInt8], profileText: [UInt8], store: ConfigStore) {
        guard isSafeName(lane.name), let identity else { return }
        var w = ByteWriter()
        w.u32(Self.magic)
        w.string(identity)
        w.string(store.root)
        w.string(lane.name)
        w.bytes(laneText)
        w.bytes(profileText)
        ConfigCodec.encode(lane, compiled.profile, into: &w)
        w.bytes(compiled.seccompFilter)
        w.string(compiled.fingerprint)
        let path = path(lane: lane.name, store: store, identity: identity)
        _ = mkdir(directory, 0o700)
        let temporary = path + ".\(getpid()).tmp"
        guard let fd = try? FileDescriptor.openOwned(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600) else { return }
        let written = (try? fd.descriptor.writeAll(w.out)) != nil
        fd.close()
        if written { _ = rename(temporary, path) } else { _ = unlink(temporary) }
    }

    /// One file per lane, configuration directory and binary (`lanes` and `lanes-mcp` are two
    /// binaries; several checkouts may share a state directory).
    func path(lane: String, store: ConfigStore, identity: String) -> String {
        let key = fnv1a(Array((store.root + "\u{0}" + identity).utf8))
        return directory + "/" + lane + "." + String(key, radix: 16) + ".bin"
    }

    /// What changes when the running binary is rebuilt or replaced; nil (no cache at all) when
    /// it cannot be known.
    static let binaryIdentity: String? = {
        var st = stat()
        guard stat("/proc/self/exe", &st) == 0 else { return nil }
        return "\(st.st_dev) \(st.st_ino) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)"
    }()

    /// FNV-1a, 64 bits: a file name, not a security boundary (the entry's content is checked).
    private func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
