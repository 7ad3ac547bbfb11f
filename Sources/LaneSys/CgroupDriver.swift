import CLaneSys
import Glibc
import LaneModel
import LanePlan
import LaneSyscall

/// A resource a step cgroup limits, named by its key in a profile's `[limits]`.
public enum CgroupResource: String, Sendable, CaseIterable, Hashable, Comparable {
    case memory
    case pids
    case cpuFraction = "cpu_fraction"

    /// The cgroup controller that enforces it.
    public var controller: String {
        switch self {
        case .memory: return "memory"
        case .pids: return "pids"
        case .cpuFraction: return "cpu"
        }
    }

    public static func < (a: CgroupResource, b: CgroupResource) -> Bool { a.rawValue < b.rawValue }
}

/// A set of `CgroupResource`s. A bit set rather than `Set<CgroupResource>`: a `Set`'s storage
/// for a type of ours made the Swift runtime scan the static binary's protocol conformances (for
/// `CgroupResource: Hashable`) in every `lanes run`, ~80 µs (docs/benchmarks.md, stop 11).
public struct CgroupResources: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let memory = CgroupResources(.memory)
    public static let pids = CgroupResources(.pids)
    public static let cpuFraction = CgroupResources(.cpuFraction)
    public static let all = CgroupResources(members: CgroupResource.allCases)

    /// The set holding only `resource`.
    public init(_ resource: CgroupResource) {
        switch resource {
        case .memory: rawValue = 1
        case .pids: rawValue = 2
        case .cpuFraction: rawValue = 4
        }
    }

    /// The set of these resources.
    public init(members: [CgroupResource]) {
        var raw: UInt8 = 0
        for r in members { raw |= CgroupResources(r).rawValue }
        rawValue = raw
    }

    /// Its resources, in `CgroupResource.allCases` order.
    public var members: [CgroupResource] { CgroupResource.allCases.filter { contains(CgroupResources($0)) } }

    /// Whether it holds `resource`.
    public func contains(_ resource: CgroupResource) -> Bool { contains(CgroupResources(resource)) }
}

/// The limits of one step cgroup; nil means "not limited".
public struct CgroupLimits: Sendable, Equatable {
    /// Memory in bytes (swap is limited to zero on top of it where the host allows).
    public var memoryBytes: UInt64?
    /// The most tasks (processes and threads) alive at once.
    public var pids: UInt64?
    /// CPU bandwidth as a fraction of cores (1.5 = one and a half cores).
    public var cpuFraction: Double?

    public init(memoryBytes: UInt64? = nil, pids: UInt64? = nil, cpuFraction: Double? = nil) {
        self.memoryBytes = memoryBytes
        self.pids = pids
        self.cpuFraction = cpuFraction
    }

    /// The resources these limits need.
    public var resources: CgroupResources {
        var s: CgroupResources = []
        if memoryBytes != nil { s.insert(.memory) }
        if pids != nil { s.insert(.pids) }
        if cpuFraction != nil { s.insert(.cpuFraction) }
        return s
    }

    /// These limits without the given resources.
    public func removing(_ resources: CgroupResources) -> CgroupLimits {
        CgroupLimits(memoryBytes: resources.contains(.memory) ? nil : memoryBytes,
                     pids: resources.contains(.pids) ? nil : pids,
                     cpuFraction: resources.contains(.cpuFraction) ? nil : cpuFraction)
    }

    /// `cpu.max` / `cpu.cfs_quota_us` for a period of 100 ms.
    static let cpuPeriodMicros: UInt64 = 100_000
    var cpuQuotaMicros: UInt64? {
        cpuFraction.map { max(1000, UInt64(($0 * Double(Self.cpuPeriodMicros)).rounded())) }
    }
}

/// What a step cgroup measured (read after the step, before teardown). nil = not measurable.
public struct CgroupUsage: Sendable, Equatable {
    public var memoryPeakBytes: UInt64?
    public var cpuMicros: UInt64?
    public var pidsPeak: UInt64?
    /// Processes of the group the kernel's OOM killer killed.
    public var oomKills: UInt64 = 0
    /// How often a fork or clone failed because of `pids.max`.
    public var pidsLimitHits: UInt64 = 0

    public init(memoryPeakBytes: UInt64? = nil, cpuMicros: UInt64? = nil, pidsPeak: UInt64? = nil,
                oomKills: UInt64 = 0, pidsLimitHits: UInt64 = 0) {
        self.memoryPeakBytes = memoryPeakBytes
        self.cpuMicros = cpuMicros
        self.pidsPeak = pidsPeak
        self.oomKills = oomKills
        self.pidsLimitHits = pidsLimitHits
    }
}

/// Which kernel interface a driver uses.
public enum CgroupBackend: String, Sendable {
    case v2
    case v1
    /// No usable cgroup: limits cannot be enforced (steps asking for one are refused).
    case none
}

/// A cgroup driver: creates one cgroup per step under its root, and removes cgroups that
/// supervisors killed with SIGKILL left behind.
///
/// The contract every implementation keeps (tested in CgroupTests against the real v1 tree and a
/// fake v2 tree):
/// - `createStep` makes a fresh, empty group with exactly the requested limits, or throws and
///   leaves nothing behind. Its name carries the owning supervisor's pid and start time.
/// - A pid given to `StepCgroup.attach` (or a clone into `cloneIntoFd`) and all its descendants
///   stay in the group; `destroy` kills every one of them, stopped or frozen ones included,
///   waits until the group is empty and removes it.
/// - `removeStale` removes only groups whose owner is dead (pid gone or reused), never a group
///   of a live supervisor.
public protocol CgroupDriver: Sendable {
    var backend: CgroupBackend { get }
    /// What `lanes doctor` prints: backend, root, controllers and whether each is writable.
    var report: CgroupReport { get }
    /// The resources steps can be limited in on this host, with this root.
    var enforceable: CgroupResources { get }
    /// Why `resource` cannot be enforced and how to enable it (for refusals).
    func whyMissing(_ resource: CgroupResource) -> String
    /// A new empty group with these limits.
    func createStep(limits: CgroupLimits) throws(LanesError) -> any StepCgroup
    /// Removes the groups of dead supervisors; returns their paths.
    @discardableResult func removeStale() -> [String]
}

/// One step's cgroup. Not thread-safe: used by the one thread that runs the step.
public protocol StepCgroup: AnyObject {
    /// The group's directory (v1: in the first hierarchy; every hierarchy has the same name).
    var path: String { get }
    /// Every directory of the group (v1: one per hierarchy).
    var directories: [String] { get }
    /// A directory fd for CLONE_INTO_CGROUP (v2), or -1 when the pid must be attached instead.
    var cloneIntoFd: Int32 { get }
    /// Files the spawned child writes "0" to, itself, before it runs anything (v1: each
    /// hierarchy's `tasks`): moving one's own thread skips the global threadgroup lock that
    /// `attach(pid:)` takes. Empty when the group is joined otherwise (v2: CLONE_INTO_CGROUP).
    var selfJoinFiles: [String] { get }
    /// Moves `pid` into the group. Call it before the child runs anything, i.e. before the
    /// spawn's sync byte is written. Costly on v1 (a migration by pid takes the global
    /// threadgroup rwsem: an RCU grace period, ~10 ms per hierarchy here; docs/cgroups.md).
    func attach(pid: pid_t) throws(LanesError)
    /// Sends `signal` to every process in the group, race-free against pid reuse (the group is
    /// frozen while the pids are read and signalled).
    func signalAll(_ signal: Int32)
    /// The group's counters.
    func usage() -> CgroupUsage
    /// Kills everything in the group (stopped and frozen tasks included), waits until it is
    /// empty, removes it. Returns false if it was still there after `timeout` seconds.
    @discardableResult func destroy(timeout: Double) -> Bool
}

extension StepCgroup {
    public var selfJoinFiles: [String] { [] }
}

/// The name of a step group, `lanes-<pid>-<starttime>-<nonce>`: the owner's pid and start time
/// (field 22 of /proc/PID/stat) let the next `lanes` tell a dead owner from a live one.
public struct CgroupOwner: Sendable, Equatable {
    public let pid: Int32
    public let startTime: UInt64
    /// The inode of the owner's pid namespace (`/proc/self/ns/pid`); 0 in names written before
    /// it was recorded. A pid means something only in its own namespace.
    public let pidNamespace: UInt64

    public init(pid: Int32, startTime: UInt64, pidNamespace: UInt64 = 0) {
        self.pid = pid
        self.startTime = startTime
        self.pidNamespace = pidNamespace
    }

    /// This process.
    public static let current = CgroupOwner(pid: getpid(), startTime: processStartTime(getpid()) ?? 0, pidNamespace: ownPidNamespace)

    static let ownPidNamespace: UInt64 = {
        var st = stat()
        return stat("/proc/self/ns/pid", &st) == 0 ? UInt64(st.st_ino) : 0
    }()

    static let prefix = "lanes-"

    func groupName() -> String {
        let nonce = MonotonicClock.nanoseconds()
        return "\(Self.prefix)\(pid)-\(startTime)-\(pidNamespace)-\(String(nonce, radix: 36))"
    }

    /// The owner encoded in a group name (`lanes-PID-START-PIDNS-NONCE`, or the older
    /// `lanes-PID-START-NONCE`), or nil if the name is not a step group's.
    public static func parse(_ name: String) -> CgroupOwner? {
        guard name.hasPrefix(prefix) else { return nil }
        let parts = name.dropFirst(prefix.count).split(separator: "-")
        guard parts.count == 3 || parts.count == 4, let pid = Int32(parts[0]), pid > 0, let start = UInt64(parts[1]) else { return nil }
        if parts.count == 3 { return CgroupOwner(pid: pid, startTime: start) }
        guard let ns = UInt64(parts[2]) else { return nil }
        return CgroupOwner(pid: pid, startTime: start, pidNamespace: ns)
    }

    /// Whether the process that owns a group is still alive (same pid and same start time). An
    /// owner in another pid namespace cannot be judged by pid from here: it counts as alive, so
    /// its group is never removed under it (a stale one is left for a supervisor in its own
    /// namespace to remove).
    public static func isAlive(_ owner: CgroupOwner) -> Bool {
        if owner.pidNamespace != 0 && ownPidNamespace != 0 && owner.pidNamespace != ownPidNamespace { return true }
        guard let start = processStartTime(owner.pid) else { return false }
        return start == owner.startTime
    }

    /// Field 22 of /proc/PID/stat (clock ticks since boot), nil if the process does not exist.
    public static func processStartTime(_ pid: Int32) -> UInt64? { ProcessStat.read(pid)?.startTime }
}

/// Shared helpers of the drivers.
enum CgroupText {
    /// The set-up stage cgroup failures are reported under (`lane_stages.h`).
    static let stage = SetupStage(LANE_STAGE_CGROUP).name

    /// The value of `key` in a flat-keyed file ("key value" lines: memory.events, pids.events,
    /// memory.oom_control, cpu.stat).
    static func keyed(_ text: String?, _ key: String) -> UInt64? {
        guard let text else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 && parts[0] == key { return UInt64(parts[1]) }
        }
        return nil
    }

    /// A file holding one number.
    static func number(_ text: String?) -> UInt64? {
        guard let text else { return nil }
        return UInt64(text.split(whereSeparator: { $0 == "\n" || $0 == " " }).first ?? "")
    }

    /// The pids listed in a cgroup.procs file.
    static func pids(_ text: String?) -> [pid_t] {
        (text ?? "").split(separator: "\n").compactMap { pid_t($0) }
    }

    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }
}

/// Sleeps `seconds` (used by the teardown loops, which back off from 50 µs up to 10 ms).
func cgroupPause(_ seconds: Double) { MonotonicClock.sleep(seconds) }
