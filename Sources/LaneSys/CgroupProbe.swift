import Glibc
import LaneModel

/// The cgroup hierarchies this process sees, parsed from /proc/self/mountinfo and
/// /proc/self/cgroup. Pure parsing: the texts are passed in, so the choice is unit-testable.
public struct CgroupHost: Sendable, Equatable {
    /// A cgroup v1 hierarchy: where it is mounted, which cgroup the mount shows, its controllers.
    public struct Hierarchy: Sendable, Equatable {
        public var mountPoint: String
        public var mountRoot: String
        public var controllers: [String]
    }

    public var v1: [Hierarchy] = []
    /// The cgroup2 mount point, if any, and the cgroup it shows.
    public var v2MountPoint: String?
    public var v2MountRoot = "/"
    /// This process's cgroup path per v1 controller, and in the unified hierarchy.
    public var ownV1: [String: String] = [:]
    public var ownV2: String?

    public init(mountinfo: String, selfCgroup: String) {
        for line in mountinfo.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard let dash = parts.firstIndex(of: "-"), dash + 3 <= parts.count, parts.count > 4 else { continue }
            let fstype = parts[dash + 1]
            let root = Self.unescape(String(parts[3])), mountPoint = Self.unescape(String(parts[4]))
            if fstype == "cgroup2" && v2MountPoint == nil {
                v2MountPoint = mountPoint
                v2MountRoot = root
            } else if fstype == "cgroup" {
                let known = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio",
                             "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"]
                let controllers = parts[dash + 3].split(separator: ",").map(String.init).filter { known.contains($0) }
                if !controllers.isEmpty, !v1.contains(where: { $0.controllers == controllers }) {
                    v1.append(Hierarchy(mountPoint: mountPoint, mountRoot: root, controllers: controllers))
                }
            }
        }
        for line in selfCgroup.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            if parts[0] == "0" && parts[1].isEmpty {
                ownV2 = path
            } else {
                for c in parts[1].split(separator: ",") { ownV1[String(c)] = path }
            }
        }
    }

    /// The host as this process sees it now.
    public static func current() -> CgroupHost {
        let fs = HostCgroupFileSystem()
        return CgroupHost(mountinfo: fs.read("/proc/self/mountinfo") ?? "", selfCgroup: fs.read("/proc/self/cgroup") ?? "")
    }

    /// The v1 hierarchy holding `controller`.
    public func hierarchy(_ controller: String) -> Hierarchy? {
        v1.first { $0.controllers.contains(controller) }
    }

    /// The directory of cgroup `path` (a cgroup path as in /proc/self/cgroup) under a mount that
    /// shows cgroup `mountRoot`.
    static func directory(mountPoint: String, mountRoot: String, path: String) -> String {
        var rel = path
        if mountRoot != "/" && (rel == mountRoot || rel.hasPrefix(mountRoot + "/")) { rel = String(rel.dropFirst(mountRoot.count)) }
        if rel == "/" || rel.isEmpty { return mountPoint }
        return mountPoint + (rel.hasPrefix("/") ? rel : "/" + rel)
    }

    /// Where step groups live in one hierarchy: `root` absolute → from the hierarchy's top
    /// (the mount), relative → below this process's own cgroup there.
    static func stepRoot(mountPoint: String, mountRoot: String, own: String, root: String) -> String {
        if root.hasPrefix(mountPoint + "/") || root == mountPoint { return root }
        if root.hasPrefix("/") { return directory(mountPoint: mountPoint, mountRoot: "/", path: root) }
        return directory(mountPoint: mountPoint, mountRoot: mountRoot, path: own) + "/" + root
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo.
    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\"), i + 4 <= b.count,
               let v = UInt8(String(decoding: b[(i + 1)..<(i + 4)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// What `lanes doctor` prints about cgroups.
public struct CgroupReport: Sendable, Equatable, CustomStringConvertible {
    /// One controller: where its step groups go and whether `lanes` can create them there.
    public struct Controller: Sendable, Equatable {
        public var name: String
        public var directory: String
        public var writable: Bool
        /// Why not, and how to fix it.
        public var problem: String?
    }

    public var backend: CgroupBackend
    /// The configured root (LANES_CGROUP_ROOT, default `lanes` under the supervisor's cgroup).
    public var root: String
    public var controllers: [Controller]
    /// A one-line note (why this backend, or what to do).
    public var note: String?

    /// Names of the controllers step groups can be created in.
    public var writableControllers: [String] { controllers.filter(\.writable).map(\.name) }

    public var description: String {
        var lines = ["backend: \(backend.rawValue)", "root: \(root)"]
        for c in controllers {
            lines.append("  \(c.name): \(c.writable ? "writable" : "NOT writable") \(c.directory)" + (c.problem.map { " — \($0)" } ?? ""))
        }
        if let note { lines.append("note: \(note)") }
        return lines.joined(separator: "\n")
    }
}

/// Chooses and builds the cgroup driver for this process.
///
/// Environment:
/// - `LANES_CGROUP`: `auto` (default), `v2`, `v1`, or `off` (no cgroups: a profile that asks for
///   a cgroup limit is refused unless the limit is optional).
/// - `LANES_CGROUP_ROOT`: where step groups live. Relative (default `lanes`): below the
///   supervisor's own cgroup; absolute: from the top of the hierarchy (or a full path under the
///   cgroup mount), e.g. a systemd user delegation for unprivileged users.
public enum Cgroups {
    public static let defaultRoot = "lanes"

    /// The cgroup report for `lanes doctor`: backend, root in use, writable controllers.
    /// Creates the root directories if they are missing (that is what makes them "writable").
    public static func report(environment: [String: String] = processEnvironment()) -> CgroupReport {
        driver(environment: environment).report
    }

    /// The driver for this host and configuration.
    public static func driver(environment: [String: String] = processEnvironment(),
                              host: CgroupHost = .current(),
                              fs: any CgroupFileSystem = HostCgroupFileSystem()) -> any CgroupDriver {
        let mode = environment["LANES_CGROUP"].flatMap { $0.isEmpty ? nil : $0 } ?? "auto"
        let root = environment["LANES_CGROUP_ROOT"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultRoot
        switch mode {
        case "off":
            return NoCgroupDriver(root: root, reason: "cgroups are turned off (LANES_CGROUP=off)",
                                  advice: "unset LANES_CGROUP to use the host's cgroups")
        case "v2":
            return CgroupV2Driver(host: host, root: root, fs: fs)
        case "v1":
            return CgroupV1Driver(host: host, root: root, fs: fs)
        default:
            if let mount = host.v2MountPoint {
                let own = CgroupHost.directory(mountPoint: mount, mountRoot: host.v2MountRoot, path: host.ownV2 ?? "/")
                let available = (fs.read(own + "/cgroup.controllers") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" })
                if available.contains("memory") || available.contains("pids") || host.v1.isEmpty {
                    return CgroupV2Driver(host: host, root: root, fs: fs)
                }
            }
            if host.hierarchy("memory") != nil || host.hierarchy("pids") != nil {
                return CgroupV1Driver(host: host, root: root, fs: fs)
            }
            return NoCgroupDriver(root: root, reason: "no cgroup hierarchy with the memory or pids controller is mounted",
                                  advice: "mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup) with the memory, pids and cpu controllers enabled")
        }
    }

    public static func processEnvironment() -> [String: String] {
        var env: [String: String] = [:]
        for key in ["LANES_CGROUP", "LANES_CGROUP_ROOT"] {
            if let v = getenv(key) { env[key] = String(cString: v) }
        }
        return env
    }
}

/// The driver when no cgroup can be used: enforces nothing and says why.
struct NoCgroupDriver: CgroupDriver {
    let root: String
    let reason: String
    let advice: String

    var backend: CgroupBackend { .none }
    var enforceable: CgroupResources { [] }
    var report: CgroupReport {
        CgroupReport(backend: .none, root: root, controllers: [], note: "\(reason); \(advice)")
    }
    func whyMissing(_ resource: CgroupResource) -> String {
        "the \(resource.controller) cgroup controller is not available: \(reason); \(advice)"
    }
    func createStep(limits: CgroupLimits) throws(LanesError) -> any StepCgroup {
        throw LanesError(.unsupported, stage: CgroupText.stage, "\(reason); \(advice)")
    }
    func removeStale() -> [String] { [] }
}
