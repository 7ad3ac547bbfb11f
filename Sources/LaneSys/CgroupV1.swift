import CLaneSys
import Glibc
import LaneSyscall
import LaneModel

/// cgroup v1: one directory per controller hierarchy, all with the same group name: memory and
/// pids for every step, cpu and cpuacct when the profile limits CPU, freezer only when a
/// teardown finds processes still alive. The step's first process is attached by pid while it
/// still waits on the spawn's sync pipe, so it runs nothing outside the group. Normally the
/// group is already empty at teardown (PID 1 of the step's pid namespace is reaped, and the
/// kernel kills every other process of the namespace with it), and teardown is just rmdir.
/// Otherwise: freeze (a frozen task cannot fork or exit), kill every member, thaw, repeat until
/// empty. Signals go through pidfds after checking /proc/PID/cgroup, never to a reused pid.
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
            } else if access(dir, W_OK) != 0 {
                problems[c] = "\(dir) is not writable by uid \(geteuid()); chown it (and its cgroup.procs) to this user or set LANES_CGROUP_ROOT to a delegated subtree"
            } else {
                roots[c] = dir
            }
        }
        self.roots = roots
        self.problems = problems
    }

    var backend: CgroupBackend { .v1 }

    var enforceable: CgroupResources {
        CgroupResources(members: CgroupResource.allCases.filter { roots[$0.controller] != nil })
    }

    func whyMissing(_ resource: CgroupResource) -> String {
        "the \(resource.controller) cgroup controller cannot be used: " + (problems[resource.controller] ?? "unknown reason")
    }

    var report: CgroupReport {
        let list = Self.controllers.map { c in
            CgroupReport.Controller(name: c, directory: roots[c] ?? "-", writable: roots[c] != nil, problem: problems[c])
        }
        return CgroupReport(backend: .v1, root: rootSetting, controllers: list,
                            note: "cgroup v1: one directory per controller hierarchy (memory, pids; cpu+cpuacct with cpu_fraction; freezer when a teardown finds live tasks)")
    }

    func createStep(limits: CgroupLimits) throws(LanesError) -> any StepCgroup {
        for r in limits.resources.members where roots[r.controller] == nil {
            throw LanesError(.unsupported, stage: CgroupText.stage, whyMissing(r))
        }
        let name = owner.groupName()
        // Per step only memory and pids (+ cpu and cpuacct with a CPU limit): a v1 mkdir+rmdir
        // costs 0.2–0.65 ms per hierarchy here. The freezer group is made only when a teardown
        // finds live processes (see StepCgroupV1.freezeAndKill); CPU time otherwise comes from
        // PID 1's rusage, which covers every process of the step (PID 1 reaps them all).
        var wanted = ["memory", "pids"]
        if limits.cpuFraction != nil { wanted += ["cpu", "cpuacct"] }
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
                throw LanesError(.setupFailed, stage: CgroupText.stage, errno: err, "cannot create \(dir): \(CgroupText.errorText(err))")
            }
            created.append(dir)
            dirs[c] = dir
        }
        let group = StepCgroupV1(fs: fs, dirs: dirs, freezerRoot: roots["freezer"])
        do throws(LanesError) {
            if let bytes = limits.memoryBytes, let dir = dirs["memory"] {
                try group.set(dir + "/memory.limit_in_bytes", String(bytes))
                // memsw (memory + swap) exists when swap accounting is on; equal to the memory
                // limit means no swap.
                let err = fs.write(dir + "/memory.memsw.limit_in_bytes", String(bytes))
                if err != 0 && err != ENOENT {
                    throw LanesError(.setupFailed, stage: CgroupText.stage, errno: err, "cannot write \(dir)/memory.memsw.limit_in_bytes: \(CgroupText.errorText(err))")
                }
            }
            if let pids = limits.pids, let dir = dirs["pids"] { try group.set(dir + "/pids.max", String(pids)) }
            if let quota = limits.cpuQuotaMicros, let dir = dirs["cpu"] {
                // A new group's cfs_period_us is always 100 ms (CgroupLimits.cpuPeriodMicros).
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
            let group = StepCgroupV1(fs: fs, dirs: dirs, freezerRoot: roots["freezer"])
            if group.destroy(timeout: 2) { removed.append(contentsOf: group.directories) }
        }
        return removed
    }
}

final class StepCgroupV1: StepCgroup {
    let fs: any CgroupFileSystem
    /// Controller → the group's directory in that controller's hierarchy.
    private(set) var dirs: [String: String]
    private(set) var directories: [String]
    /// Where a freezer group can be made when one is needed (slow path only), if anywhere.
    let freezerRoot: String?
    let name: String

    init(fs: any CgroupFileSystem, dirs: [String: String], freezerRoot: String? = nil) {
        self.fs = fs
        self.dirs = dirs
        self.freezerRoot = freezerRoot
        var unique: [String] = []
        for c in CgroupV1Driver.controllers { if let d = dirs[c], !unique.contains(d) { unique.append(d) } }
        directories = unique
        name = String(unique.first?.split(separator: "/").last ?? "")
    }

    var path: String { directories.first ?? "" }
    var cloneIntoFd: Int32 { -1 }

    func set(_ file: String, _ value: String) throws(LanesError) {
        let err = fs.write(file, value)
        if err != 0 {
            throw LanesError(.setupFailed, stage: CgroupText.stage, errno: err, "cannot write \(value) to \(file): \(CgroupText.errorText(err))")
        }
    }

    /// Every hierarchy the group is in but the freezer's (the same set `attach` uses).
    var selfJoinFiles: [String] { directories.filter { $0 != dirs["freezer"] }.map { $0 + "/tasks" } }

    func attach(pid: pid_t) throws(LanesError) {
        for dir in directories where dir != dirs["freezer"] { try set(dir + "/cgroup.procs", String(pid)) }
    }

    /// The controller whose membership defines the group: pids (every task is counted there).
    private var anchor: (controller: String, dir: String)? {
        for c in ["pids", "memory", "cpuacct", "cpu"] { if let d = dirs[c] { return (c, d) } }
        return nil
    }

    private func members() -> [pid_t] {
        guard let anchor else { return [] }
        return CgroupText.pids(fs.read(anchor.dir + "/cgroup.procs"))
    }

    /// Signals `pid` only if it is in this group: a pidfd pins the process, then its
    /// /proc/PID/cgroup must show the group, so a pid that exited and was reused by a process
    /// outside is never signalled.
    private func signalMember(_ pid: pid_t, _ signal: Int32) {
        guard let anchor, pid != getpid() else { return }
        let raw = Int32(truncatingIfNeeded: lane_syscall6(434, Int(pid), 0, 0, 0, 0, 0))  // pidfd_open
        guard raw >= 0 else { return }
        let pidfd = OwnedDescriptor(adopting: raw)
        let line = (HostCgroupFileSystem().read("/proc/\(pid)/cgroup") ?? "").split(separator: "\n").first {
            $0.split(separator: ":", maxSplits: 2).dropFirst().first?.split(separator: ",").contains(Substring(anchor.controller)) == true
        }
        guard let line, line.hasSuffix("/" + name) else { return }
        _ = lane_pidfd_send_signal(pidfd.raw, signal)
    }

    /// Every member, each verified (see `signalMember`). Without a freezer a member may fork
    /// meanwhile; callers that must end everything loop until the group is empty.
    func signalAll(_ signal: Int32) {
        for pid in members() { signalMember(pid, signal) }
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

    /// The slow path, only when something is still alive: a freezer group of the same name,
    /// every (verified) member moved into it, FROZEN (a frozen task cannot fork or exit), SIGKILL
    /// to each (stopped ones included; it lands on thaw), THAWED.
    private func freezeAndKill() {
        if dirs["freezer"] == nil, let root = freezerRoot {
            let dir = root + "/" + name
            let err = fs.makeDirectory(dir)
            if err == 0 || err == EEXIST {
                dirs["freezer"] = dir
                directories.append(dir)
            }
        }
        guard let f = dirs["freezer"] else {
            signalAll(SIGKILL)
            return
        }
        for pid in members() where pid != getpid() {
            // Same verification as signalMember: only a member is moved (never this process).
            let raw = Int32(truncatingIfNeeded: lane_syscall6(434, Int(pid), 0, 0, 0, 0, 0))
            guard raw >= 0 else { continue }
            let pin = OwnedDescriptor(adopting: raw)  // pins the pid until the move is done
            let text = HostCgroupFileSystem().read("/proc/\(pid)/cgroup") ?? ""
            if text.contains("/" + name + "\n") { _ = fs.write(f + "/cgroup.procs", String(pid)) }
            pin.close()
        }
        if fs.write(f + "/freezer.state", "FROZEN") == 0 {
            var pause = 0.00005
            for _ in 0..<200 where fs.read(f + "/freezer.state")?.hasPrefix("FROZEN") != true {
                cgroupPause(pause)
                pause = min(pause * 2, 0.005)
            }
        }
        for pid in CgroupText.pids(fs.read(f + "/cgroup.procs")) { signalMember(pid, SIGKILL) }
        signalAll(SIGKILL)
        _ = fs.write(f + "/freezer.state", "THAWED")
    }

    func destroy(timeout: Double) -> Bool {
        let start = MonotonicClock.seconds()
        var pause = 0.00005
        while true {
            let pids = members() + (dirs["freezer"].map { CgroupText.pids(fs.read($0 + "/cgroup.procs")) } ?? [])
            if pids.isEmpty {
                var left = directories.filter { fs.removeDirectory($0) != 0 && fs.exists($0) }
                // rmdir can see EBUSY for a moment while the last task's exit is accounted.
                while !left.isEmpty && MonotonicClock.seconds() - start < timeout {
                    cgroupPause(pause)
                    pause = min(pause * 2, 0.01)
                    left = left.filter { fs.removeDirectory($0) != 0 && fs.exists($0) }
                }
                return left.isEmpty
            }
            freezeAndKill()
            if MonotonicClock.seconds() - start >= timeout { return false }
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

