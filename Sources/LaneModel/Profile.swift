/// How a step is sandboxed: the filesystem view, network mode, seccomp policy, limits and
/// environment. Loaded from `Profiles/NAME.toml` by `LaneConfig`; a pure value.
public struct Profile: Sendable, Equatable {
    /// The profile's name (its file name without `.toml`).
    public var name: String
    /// One line saying what the profile is for.
    public var description: String
    public var filesystem: Filesystem
    public var network: Network
    public var seccomp: Seccomp
    public var limits: Limits
    /// Variables the step's environment holds; nothing else passes from the supervisor.
    public var environment: [String: String]

    public init(
        name: String, description: String = "", filesystem: Filesystem = .init(),
        network: Network = .init(), seccomp: Seccomp = .init(), limits: Limits = .init(),
        environment: [String: String] = Profile.defaultEnvironment
    ) {
        self.name = name
        self.description = description
        self.filesystem = filesystem
        self.network = network
        self.seccomp = seccomp
        self.limits = limits
        self.environment = environment
    }

    /// The environment a profile gets when it sets none: a sane PATH, a writable HOME, UTF-8.
    public static let defaultEnvironment: [String: String] = [
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
    ]

    /// What the sandbox shows of the host's files.
    public struct Filesystem: Sendable, Equatable {
        public enum Access: String, Sendable, Equatable { case readOnly = "read-only", readWrite = "read-write" }
        /// How the workspace is bound (at its own absolute path).
        public var workspace: Access
        /// Extra host paths bound read-only at the same path.
        public var readOnly: [String]
        /// Extra host paths bound read-write at the same path.
        public var readWrite: [String]
        /// Size-limited tmpfs mounts, path → bytes. `/tmp` always exists.
        public var tmpfs: [Tmpfs]
        /// How the step's workspace writes land (`commit`, docs/filesystem.md).
        public var commit: CommitMode = .direct
        /// Workspace-relative paths the host executes or trusts (git hooks and configuration,
        /// shell start-up files, editor task folders, agent configuration): read-only in the
        /// step where they exist, quarantined after the step where it created them. Entries
        /// under `.git/` apply to every repository in the writable tree, and any repository a
        /// step creates is checked for hooks and executing configuration (docs/security.md).
        public var protected: [String]

        public init(workspace: Access = .readWrite, readOnly: [String] = [], readWrite: [String] = [],
                    tmpfs: [Tmpfs] = [Tmpfs(path: "/tmp", sizeBytes: 256 << 20)], protected: [String] = []) {
            self.workspace = workspace
            self.readOnly = readOnly
            self.readWrite = readWrite
            self.tmpfs = tmpfs
            self.protected = protected
        }
    }

    /// A tmpfs mount with a size limit.
    public struct Tmpfs: Sendable, Equatable {
        public var path: String
        public var sizeBytes: UInt64
        public init(path: String, sizeBytes: UInt64) {
            self.path = path
            self.sizeBytes = sizeBytes
        }
    }

    /// Network access. `none` means a fresh network namespace with only loopback up. The key is a
    /// mode so that an allow-list mode (`mode = "allow-list"`, `allow = [...]`) can be added.
    public struct Network: Sendable, Equatable {
        public enum Mode: String, Sendable, Equatable { case none }
        public var mode: Mode
        public init(mode: Mode = .none) { self.mode = mode }
    }

    /// The seccomp policy: the base allow-list plus extra allowed and denied syscall names.
    public struct Seccomp: Sendable, Equatable {
        public enum DefaultAction: String, Sendable, Equatable { case errno, kill }
        public var defaultAction: DefaultAction
        public var allow: [String]
        public var deny: [String]
        public init(defaultAction: DefaultAction = .errno, allow: [String] = [], deny: [String] = []) {
            self.defaultAction = defaultAction
            self.allow = allow
            self.deny = deny
        }
    }

    /// Hard limits of one step.
    public struct Limits: Sendable, Equatable {
        /// Wall-clock deadline in seconds; the whole tree is killed when it fires.
        public var wallSeconds: Double
        /// RLIMIT_CPU in seconds.
        public var cpuSeconds: UInt64
        /// RLIMIT_NOFILE.
        public var openFiles: UInt64
        /// RLIMIT_FSIZE in bytes.
        public var fileSizeBytes: UInt64
        /// RLIMIT_NPROC (counted in the step's own user namespace).
        public var processes: UInt64
        /// How much of stdout and of stderr is kept (and relayed); the rest is dropped.
        public var outputBytes: UInt64
        /// Seconds between SIGTERM and SIGKILL when a step is stopped.
        public var killGraceSeconds: Double
        /// cgroup memory limit in bytes (swap limited to zero on top); nil = not limited.
        public var memoryBytes: UInt64?
        /// cgroup pids limit (tasks alive at once); nil = not limited.
        public var pids: UInt64?
        /// cgroup CPU bandwidth in cores (0.5 = half a core); nil = not limited.
        public var cpuFraction: Double?
        /// cgroup limits (by key: "memory", "pids", "cpu_fraction") that may be skipped when the
        /// host cannot enforce them; the result then lists them as not applied. Every other
        /// cgroup limit the host cannot enforce makes the step refuse to start.
        public var optional: [String]

        /// RLIMIT_NOFILE values a step can run with: lane-init holds fds 0-2 and its status fd
        /// (4) and needs two more for the tool's error pipe; the kernel never allows more than
        /// its `nr_open` ceiling (`sysctl_nr_open_max` on 64-bit). Checked by the parser.
        public static let openFilesRange: ClosedRange<UInt64> = 6...2_147_483_584

        public init(wallSeconds: Double = 600, cpuSeconds: UInt64 = 600, openFiles: UInt64 = 1024,
                    fileSizeBytes: UInt64 = 1 << 30, processes: UInt64 = 512,
                    outputBytes: UInt64 = 1 << 20, killGraceSeconds: Double = 0.5,
                    memoryBytes: UInt64? = nil, pids: UInt64? = nil, cpuFraction: Double? = nil,
                    optional: [String] = []) {
            self.wallSeconds = wallSeconds
            self.cpuSeconds = cpuSeconds
            self.openFiles = openFiles
            self.fileSizeBytes = fileSizeBytes
            self.processes = processes
            self.outputBytes = outputBytes
            self.killGraceSeconds = killGraceSeconds
            self.memoryBytes = memoryBytes
            self.pids = pids
            self.cpuFraction = cpuFraction
            self.optional = optional
        }
    }
}
