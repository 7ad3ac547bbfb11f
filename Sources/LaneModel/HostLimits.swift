/// Whether a profile's rlimits fit under the hard limits `lanes` itself runs with. The sandbox
/// cannot raise a hard limit (that takes CAP_SYS_RESOURCE in the initial user namespace, which
/// no process inside a step has), so a profile asking for more would fail deep in lane-init with
/// "setrlimit 7: Operation not permitted". This names the key, the value and the host's limit
/// instead; `lanes check`, `lanes doctor` and every step ask it. Pure: the hard limits are given.
public enum HostLimits {
    /// The process hard limits that matter to a profile; nil means unlimited.
    public struct Hard: Sendable, Equatable {
        public var openFiles: UInt64?
        public var fileSizeBytes: UInt64?
        public var cpuSeconds: UInt64?
        public var processes: UInt64?
        public init(openFiles: UInt64? = nil, fileSizeBytes: UInt64? = nil, cpuSeconds: UInt64? = nil, processes: UInt64? = nil) {
            self.openFiles = openFiles
            self.fileSizeBytes = fileSizeBytes
            self.cpuSeconds = cpuSeconds
            self.processes = processes
        }
    }

    /// One profile limit the host cannot grant.
    public struct Excess: Sendable, Equatable, CustomStringConvertible {
        /// The profile key, e.g. `limits.open_files`.
        public var key: String
        public var requested: UInt64
        public var hostHard: UInt64
        /// The shell command that shows or raises the host limit.
        public var ulimitFlag: String
        /// The rlimit, e.g. `RLIMIT_NOFILE`.
        public var resource: String
        public var description: String {
            "\(resource): \(key) = \(requested) is above this process's hard limit \(hostHard) (`ulimit -H\(ulimitFlag)`); raise the hard limit or lower \(key)"
        }
    }

    /// Every limit of `limits` above `hard`. RLIMIT_CPU's hard limit is one second above the
    /// soft one (SIGXCPU first, then SIGKILL), so that is what must fit.
    public static func excesses(_ limits: Profile.Limits, hard: Hard) -> [Excess] {
        var out: [Excess] = []
        func check(_ key: String, _ requested: UInt64, _ host: UInt64?, _ flag: String, _ resource: String, slack: UInt64 = 0) {
            if let host, requested &+ slack > host {
                out.append(Excess(key: key, requested: requested, hostHard: host, ulimitFlag: flag, resource: resource))
            }
        }
        check("limits.open_files", limits.openFiles, hard.openFiles, "n", "RLIMIT_NOFILE")
        check("limits.file_size", limits.fileSizeBytes, hard.fileSizeBytes, "f", "RLIMIT_FSIZE")
        check("limits.cpu", limits.cpuSeconds, hard.cpuSeconds, "t", "RLIMIT_CPU", slack: 1)
        check("limits.processes", limits.processes, hard.processes, "u", "RLIMIT_NPROC")
        return out
    }
}
