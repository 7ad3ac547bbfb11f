import Glibc
import LaneModel

/// cgroup v1: one directory per controller hierarchy (memory, pids, cpu, cpuacct, freezer), all
/// with the same group name. The step's first process is attached by pid while it still waits
/// on the spawn's sync pipe, so it runs nothing outside the group. Teardown freezes the group
/// (so no pid can exit and be reused while it is read), kills every pid, thaws, and repeats
/// until the group is empty; then every directory is removed.
struct CgroupV1Driver: CgroupDriver {
    static let controllers = ["memory", "pids", "cpu", "cpuacct", "freezer"]

    let fs: any CgroupFileSystem
    let rootSetting: String
    /// Controller → the directory step groups are created in (co-mounted controllers share one).
    let roots: [String: String]
    /// Controller → why step groups cannot be created there, and what to do.
    let problems: [String: String]
    let owner: CgroupOwner
    let isAlive: @Sendable (CgroupOwner) -> Bool

    init(host: CgroupHost, root: String, fs: any CgroupFileSystem, owner: CgroupOwner = .current,
         isAlive: @escaping @Sendable (CgroupOwner) -> Bool = CgroupOwner.isAlive) {
        self.fs = fs
        self.rootSetting = root
        self.owner = owner
        self.isAlive = isAlive
        var roots: [String: String] = [:], problems: [String: String] = [:]
        for c in Self.controllers {
            guard let h = host.hierarchy(c) else {
                problems[c] = "no cgroup v1 hierarchy with the \(c) controller is mounted (mount -t cgroup -o \(c) cgroup /sys/fs/cgroup/\(c))"
                continue
            }
            let dir = CgroupHost.stepRoot(mountPoint: h.mountPoint, mountRoot: h.mountRoot, own: host.ownV1[c] ?? "/", root: root)
            let err = makeDirectories(dir, below: h.mountPoint, fs: fs)
            if err != 0 {
                problems[c] = "cannot create \(dir): \(CgroupText.errorText(err))" + (err == EACCES || err == EPERM || err == EROFS
                    ? "; delegate a subtree to this user (mkdir it and chown it with its cgroup.procs and tasks files) and set LANES_CGROUP_ROOT to it"
                    : "")
            } else if access(dir, W_OK) != 0 || access(dir + "/cgroup.procs", W_OK) != 0 {
                problems[c] = "\(dir) is not writable by uid \(geteuid()); chown it (and its cgroup.procs) to this user or set LANES_CGROUP_ROOT to a delegated subtree"
            } else {
                roots[c] = dir
            }
        }
        self.roots = roots
        self.problems = problems
    }

    var backend: CgroupBackend { .v1 }

    var enforceable: Set<CgroupResource> {
        Set(CgroupResource.allCases.filter { roots[$0.controller] != nil })
    }

    func whyMissing(_ resource: CgroupResource) -> String {
        "the \(resource.controller) cgroup controller cannot be used: " + (problems[resource.controller] ?? "unknown reason")
    }

    var report: CgroupReport {
        let list = Self.controllers.map { c in
            CgroupReport.Controller(name: c, directory: roots[c] ?? "-", writable: roots[c] != nil, problem: problems[c])
        }
        return CgroupReport(backend: .v1, root: rootSetting, controllers: list,
                            note: "cgroup v1: one directory per controller hierarchy; teardown by freezer")
    }

    func createStep(limits: CgroupLimits) throws(LanesError) -> any StepCgroup {
        for r in limits.resources where roots[r.controller] == nil {
            throw LanesError(.unsupported, stage: "cgroup", whyMissing(r))
        }
        let name = owner.groupName()
        // The cpu hierarchy only when a CPU limit is asked for: each mkdir costs ~50 µs.
        var wanted = ["memory", "pids", "cpuacct", "freezer"]
        if limits.cpuFraction != nil { wanted.insert("cpu", at: 2) }
        var dirs: [String: String] = [:]
        var created: [String] = []
        for c in wanted {
            guard let root = roots[c] else { continue }
            let dir = root + "/" + name
            if let existing = created.first(where: { $0 == dir }) {  // co-mounted (cpu,cpuacct)
                dirs[c] = existing
                continue
            }
            let err = fs.makeDirectory(dir)
            if err != 0 {
                for d in created { _ = fs.removeDirectory(d) }
                throw LanesError(.setupFailed, stage: "cgroup", errno: err, "cannot create \(dir): \(CgroupText.errorText(err))")
            }
            created.append(dir)
            dirs[c] = dir
        }
        let group = StepCgroupV1(fs: fs, dirs: dirs)
        do throws(LanesError) {
            if let bytes = limits.memoryBytes, let dir = dirs["memory"] {
                try group.set(dir + "/memory.limit_in_bytes", String(bytes))
                // memsw (memory + swap) exists when swap accounting is on; equal to the memory
                // limit means no swap.
                let err = fs.write(dir + "/memory.memsw.limit_in_bytes", String(bytes))
                if err != 0 && err != ENOENT {
                    throw LanesError(.setupFailed, stage: "cgroup", errno: err, "cannot write \(dir)/memory.memsw.limit_in_bytes: \(CgroupText.errorText(err))")
                }
            }
            if let pids = limits.pids, let dir = dirs["pids"] { try group.set(dir + "/pids.max", String(pids)) }
            if let quota = limits.cpuQuotaMicros, let dir = dirs["cpu"] {
                try group.set(dir + "/cpu.cfs_period_us", String(CgroupLimits.cpuPeriodMicros))
                try group.set(dir + "/cpu.cfs_quota_us", String(quota))
            }
        } catch {
            _ = group.destroy(timeout: 1)
            throw error
        }
        return group
    }

    func removeStale() -> [String] {
        var names: Set<String> = []
        for dir in Set(roots.values) {
            for name in fs.subdirectories(dir) {
                guard let o = CgroupOwner.parse(name), o != owner, !isAlive(o) else { continue }
                names.insert(name)
            }
        }
        var removed: [String] = []
        for name in names.sorted() {
            var dirs: [String: String] = [:]
            for (c, root) in roots where fs.exists(root + "/" + name) { dirs[c] = root + "/" + name }
            let group = StepCgroupV1(fs: fs, dirs: dirs)
            if group.destroy(timeout: 2) { removed.append(contentsOf: group.directories) }
        }
        return removed
    }
}

final class StepCgroupV1: StepCgroup {
    let fs: any CgroupFileSystem
    /// Controller → the group's directory in that controller's hierarchy.
    let dirs: [String: String]
    let directories: [String]

    init(fs: any CgroupFileSystem, dirs: [String: String]) {
        self.fs = fs
        self.dirs = dirs
        var unique: [String] = []
        for c in CgroupV1Driver.controllers { if let d = dirs[c], !unique.contains(d) { unique.append(d) } }
        directories = unique
    }

    var path: String { directories.first ?? "" }
    var cloneIntoFd: Int32 { -1 }

    func set(_ file: String, _ value: String) throws(LanesError) {
        let err = fs.write(file, value)
        if err != 0 {
            throw LanesError(.setupFailed, stage: "cgroup", errno: err, "cannot write \(value) to \(file): \(CgroupText.errorText(err))")
        }
    }

    func attach(pid: pid_t) throws(LanesError) {
        for dir in directories { try set(dir + "/cgroup.procs", String(pid)) }
    }

    /// The directory whose cgroup.procs is read: the freezer's (the one that can be frozen).
    private var main: String? { dirs["freezer"] ?? dirs["pids"] ?? directories.first }

    private func members() -> [pid_t] {
        guard let main else { return [] }
        return CgroupText.pids(fs.read(main + "/cgroup.procs"))
    }

    /// FROZEN and wait until the kernel says so (FREEZING while in progress), up to 0.5 s.
    private func freeze() -> Bool {
        guard let f = dirs["freezer"], fs.write(f + "/freezer.state", "FROZEN") == 0 else { return false }
        var pause = 0.00005
        for _ in 0..<200 {
            if fs.read(f + "/freezer.state")?.hasPrefix("FROZEN") == true { return true }
            cgroupPause(pause)
            pause = min(pause * 2, 0.005)
        }
        return false
    }

    private func thaw() {
        if let f = dirs["freezer"] { _ = fs.write(f + "/freezer.state", "THAWED") }
    }

    func signalAll(_ signal: Int32) {
        let frozen = freeze()
        for pid in members() { _ = kill(pid, signal) }
        if frozen || dirs["freezer"] != nil { thaw() }
    }

    func usage() -> CgroupUsage {
        var u = CgroupUsage()
        if let m = dirs["memory"] {
            u.memoryPeakBytes = CgroupText.number(fs.read(m + "/memory.max_usage_in_bytes"))
            u.oomKills = CgroupText.keyed(fs.read(m + "/memory.oom_control"), "oom_kill") ?? 0
        }
        if let p = dirs["pids"] {
            u.pidsPeak = CgroupText.number(fs.read(p + "/pids.peak"))
            u.pidsLimitHits = CgroupText.keyed(fs.read(p + "/pids.events"), "max") ?? 0
        }
        if let c = dirs["cpuacct"] {
            u.cpuMicros = CgroupText.number(fs.read(c + "/cpuacct.usage")).map { $0 / 1000 }
        }
        return u
    }

    func destroy(timeout: Double) -> Bool {
        let start = monotonicNow()
        var pause = 0.00005
        while true {
            let pids = members()
            if pids.isEmpty {
                var left = directories.filter { fs.removeDirectory($0) != 0 && fs.exists($0) }
                // rmdir can see EBUSY for a moment while the last task's exit is accounted.
                while !left.isEmpty && monotonicNow() - start < timeout {
                    cgroupPause(pause)
                    pause = min(pause * 2, 0.01)
                    left = left.filter { fs.removeDirectory($0) != 0 && fs.exists($0) }
                }
                return left.isEmpty
            }
            // Frozen tasks cannot exit, so the pids read stay theirs while they are signalled;
            // SIGKILL is delivered to stopped tasks too, and takes effect on thaw.
            signalAll(SIGKILL)
            if monotonicNow() - start >= timeout { return false }
            cgroupPause(pause)
            pause = min(pause * 2, 0.01)
        }
    }
}

/// mkdir -p of `path`, creating only components below `top` (which must exist). 0 or errno.
func makeDirectories(_ path: String, below top: String, fs: any CgroupFileSystem) -> Int32 {
    guard path.hasPrefix(top) else { return EINVAL }
    if fs.exists(path) { return 0 }
    var current = top
    for part in path.dropFirst(top.count).split(separator: "/") {
        current += "/" + part
        let err = fs.makeDirectory(current)
        if err != 0 && err != EEXIST { return err }
    }
    return 0
}

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
