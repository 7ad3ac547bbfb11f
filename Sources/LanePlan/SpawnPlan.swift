/// Everything `lane-init` needs to build the sandbox and start the tool, computed by `lanes`
/// before the spawn. It travels to the helper through a memfd (see `PlanCodec`).
public struct SpawnPlan: Sendable, Equatable {
    /// The tool's argv; argv[0] is looked up in the sandbox's PATH when it has no slash.
    public var argv: [String]
    /// The tool's environment as `KEY=VALUE` strings.
    public var environment: [String]
    /// The tool's working directory inside the sandbox.
    public var workdir: String
    public var hostname: String
    /// The filesystem, in the order it is built (root-relative targets, absolute sources).
    public var mounts: [MountStep]
    public var rlimits: [ResourceLimit]
    /// The compiled seccomp filter (struct sock_filter array); empty means none, which the
    /// supervisor never sends for a real step.
    public var seccompFilter: [UInt8]
    /// The uid and gid the tool runs as inside its own user namespace (never 0).
    public var sandboxUid: UInt32
    public var sandboxGid: UInt32
    /// Bring the loopback interface of the new network namespace up.
    public var loopbackUp: Bool
    /// Proxy mode (issue 12): lane-init listens on 127.0.0.1:`egressPort` and passes each
    /// connection to the supervisor over fd 5 (a unix socket). 0: no listener, no fd 5.
    public var egressPort: UInt16
    /// A prestarted sandbox (`lanes mcp`'s warm path): PID 1 builds everything, then waits on
    /// fd 5 for the `StepCommand` (argv, environment, working directory) before it starts the
    /// tool; `argv`, `environment` and `workdir` here are then ignored. End of file there
    /// (nothing was sent: the sandbox was not needed) ends it without starting anything.
    public var awaitsCommand: Bool
    /// The CPU affinity mask (sched_getaffinity's bytes) PID 1 sets before it forks the tool;
    /// empty: left as inherited. Set for a one-shot's early sandbox, whose `lane-init` starts
    /// away from the CPU `lanes` runs on (`Spawner.spawn(toolAffinity:)`); the tool gets the
    /// caller's own mask back.
    public var toolAffinity: [UInt8] = []

    public init(argv: [String], environment: [String], workdir: String, hostname: String = "lane",
                mounts: [MountStep], rlimits: [ResourceLimit], seccompFilter: [UInt8],
                sandboxUid: UInt32 = 1000, sandboxGid: UInt32 = 1000, loopbackUp: Bool = true,
                egressPort: UInt16 = 0, awaitsCommand: Bool = false) {
        self.argv = argv
        self.environment = environment
        self.workdir = workdir
        self.hostname = hostname
        self.mounts = mounts
        self.rlimits = rlimits
        self.seccompFilter = seccompFilter
        self.sandboxUid = sandboxUid
        self.sandboxGid = sandboxGid
        self.loopbackUp = loopbackUp
        self.egressPort = egressPort
        self.awaitsCommand = awaitsCommand
    }

    /// The plan with the command's parts taken from `command`.
    public func with(_ command: StepCommand) -> SpawnPlan {
        var plan = self
        plan.argv = command.argv
        plan.environment = command.environment
        plan.workdir = command.workdir
        plan.awaitsCommand = false
        return plan
    }

    /// The fd lane-init finds the egress channel on when `egressPort` is not 0.
    public static let egressChannelFd: Int32 = 6
    /// What a prestarted sandbox's PID 1 sends on fd 5 once its set-up is complete, before it
    /// waits for its `StepCommand`.
    public static let readyByte: UInt8 = 0x52  // "R"
}

/// What a prestarted sandbox is told when its step starts (`SpawnPlan.awaitsCommand`).
public struct StepCommand: Sendable, Equatable {
    /// The largest encoded command sent to a prestarted sandbox (one socket message); a bigger
    /// one goes the cold way, in the plan.
    public static let maxEncodedBytes = 65536
    /// The tool's argv (looked up in the environment's PATH).
    public var argv: [String]
    /// The tool's whole environment, `KEY=value`.
    public var environment: [String]
    /// The tool's working directory inside the sandbox.
    public var workdir: String
    public init(argv: [String], environment: [String], workdir: String) {
        self.argv = argv
        self.environment = environment
        self.workdir = workdir
    }
}

/// One step of building the sandbox's filesystem. Targets are paths inside the new root.
public enum MountStep: Sendable, Equatable {
    /// A tmpfs of `sizeBytes` (0 = kernel default) with `mode`.
    case tmpfs(target: String, sizeBytes: UInt64, mode: UInt32)
    /// A bind of a host path, read-only or not, always nosuid and nodev. An optional source that
    /// does not exist is skipped; a required one fails the step.
    case bind(source: String, target: String, readOnly: Bool, optional: Bool)
    /// A fresh procfs for the sandbox's pid namespace.
    case proc(target: String)
    /// A minimal /dev: null, zero, full, random, urandom, tty, a private pts and shm.
    case devices(target: String)
    /// A symbolic link at `target` pointing to `destination`.
    case symlink(destination: String, target: String)
    /// A file with fixed contents (for /etc/passwd and friends).
    case file(target: String, contents: [UInt8], mode: UInt32)
    /// A directory (parents are created as needed).
    case directory(target: String, mode: UInt32)
    /// Makes an existing mount read-only (done after everything below it is built).
    case remountReadOnly(target: String)
    /// Attaches tree `index` of the mount trees `lanes` passed on fd 5 (already nosuid, nodev,
    /// read-only or not, id-mapped or not): how a root `lanes` hands over the workspace.
    case attach(target: String, index: UInt32)
    /// Binds a path of the new root onto itself: read-only (a protected path), or read-write
    /// (pins a directory that holds protected paths, so it cannot be renamed or replaced).
    case rebind(target: String, readOnly: Bool)
    /// An overlay at `target`: host directory `lower` read-only below, the host directories
    /// `upper` and `work` (in the state directory) taking the writes (filesystem.commit = auto or
    /// review, docs/filesystem.md). Mounted with userxattr, no redirects, no metacopy.
    case overlay(lower: String, upper: String, work: String, target: String)
    /// The same overlay from mount trees `lanes` passed on fd 5 (how a root `lanes` hands over
    /// layers its step's identity may not reach by path): tree `lower` is the workspace
    /// (read-only), tree `layers` the step's directory holding the `upper` and `work`
    /// directories (names relative to it; one tree, since overlayfs wants both on one mount).
    /// PID 1 attaches them at a private path of the new root, mounts the overlay from there
    /// and detaches them again before anything else runs.
    case overlayTrees(lower: UInt32, layers: UInt32, upper: String, work: String, target: String)

    /// How many of the trees passed on fd 5 this step consumes.
    public var treeCount: Int {
        switch self {
        case .attach: return 1
        case .overlayTrees: return 2
        default: return 0
        }
    }
}

/// One setrlimit call.
public struct ResourceLimit: Sendable, Equatable {
    public var resource: Int32
    public var soft: UInt64
    public var hard: UInt64
    public init(resource: Int32, soft: UInt64, hard: UInt64) {
        self.resource = resource
        self.soft = soft
        self.hard = hard
    }
}
