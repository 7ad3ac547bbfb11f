import Crypto
import Glibc
import LaneModel
import LanePlan
import LaneSys

/// A profile compiled once: its seccomp program, its rlimits, and the fingerprint (SHA-256 of
/// the compiled policy) that names this exact policy in results and in the journal.
public struct CompiledProfile: Sendable {
    public let profile: Profile
    public let seccompFilter: [UInt8]
    public let rlimits: [ResourceLimit]
    /// Hex SHA-256 over the filter, the limits, the environment and the filesystem and network
    /// sections: any change to what the sandbox enforces changes it.
    public let fingerprint: String

    /// Compiles `profile`; with a `cache`, the seccomp program is taken from it when present.
    public init(_ profile: Profile, cache: PolicyCache? = nil) throws(LanesError) {
        self.profile = profile
        if let cache {
            seccompFilter = try cache.filter(for: profile.seccomp)
        } else {
            seccompFilter = try SeccompCompiler.compile(profile.seccomp)
        }
        let l = profile.limits
        rlimits = Self.rlimits(l)
        var hasher = SHA256()
        hasher.update(data: seccompFilter)
        let fs = profile.filesystem
        let description = [
            "limits \(l.wallSeconds) \(l.cpuSeconds) \(l.openFiles) \(l.fileSizeBytes) \(l.processes) \(l.outputBytes) \(l.killGraceSeconds)",
            "cgroup memory=\(l.memoryBytes.map(String.init) ?? "-") pids=\(l.pids.map(String.init) ?? "-") cpu=\(l.cpuFraction.map { "\($0)" } ?? "-") optional=\(Self.listText(l.optional.sorted()))",
            "env " + profile.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{0}"),
            "fs \(fs.workspace.rawValue) ro=\(Self.listText(fs.readOnly)) rw=\(Self.listText(fs.readWrite)) tmpfs=\(Self.listText(fs.tmpfs.map { "\($0.path):\($0.sizeBytes)" })) protected=\(Self.listText(fs.protected))"
                // Only a non-default commit changes it further.
                + (fs.commit == .direct ? "" : " commit=\(fs.commit.rawValue)"),
            Self.networkLine(profile.network),
        ].joined(separator: "\n")
        hasher.update(data: Array(description.utf8))
        fingerprint = hexString(hasher.finalize())
    }

    /// A profile compiled before, as the compiled configuration cache kept it (the program and
    /// the fingerprint this initializer's sibling computed for the same profile).
    public init(_ profile: Profile, seccompFilter: [UInt8], fingerprint: String) {
        self.profile = profile
        self.seccompFilter = seccompFilter
        self.rlimits = Self.rlimits(profile.limits)
        self.fingerprint = fingerprint
    }

    static func rlimits(_ l: Profile.Limits) -> [ResourceLimit] {
        [
            ResourceLimit(resource: Int32(RLIMIT_CORE.rawValue), soft: 0, hard: 0),
            ResourceLimit(resource: Int32(RLIMIT_NOFILE.rawValue), soft: l.openFiles, hard: l.openFiles),
            ResourceLimit(resource: Int32(RLIMIT_FSIZE.rawValue), soft: l.fileSizeBytes, hard: l.fileSizeBytes),
            ResourceLimit(resource: Int32(RLIMIT_CPU.rawValue), soft: l.cpuSeconds, hard: l.cpuSeconds + 1),
            ResourceLimit(resource: Int32(__RLIMIT_NPROC.rawValue), soft: l.processes, hard: l.processes),
        ]
    }

    /// `none` keeps the line it always had (fingerprints of existing profiles do not change).
    static func networkLine(_ n: Profile.Network) -> String {
        guard n.mode == .proxy else { return "net \(n.mode.rawValue)" }
        return "net proxy allow=\(listText(n.allow.map(\.text))) deny=\(listText(n.deny.map(\.text))) conns=\(n.maxConnections) bytes=\(n.maxBytes.map(String.init) ?? "-")"
    }

    /// Exactly what `"\(names)"` prints for an array of strings (`["a", "b"]`), which the
    /// fingerprint has always hashed, without Swift's debugPrint machinery when no name needs
    /// escaping (its first use cost ~0.2 ms of a one-shot `lanes run`); with such a name, the
    /// interpolation itself.
    static func listText(_ names: [String]) -> String {
        let plain = names.allSatisfy { $0.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") } }
        guard plain else { return "\(names)" }
        return "[" + names.map { "\"" + $0 + "\"" }.joined(separator: ", ") + "]"
    }
}
