import Glibc
import LaneModel
import LaneSyscall

/// cgroup v2: one group per step below a root whose `cgroup.subtree_control` enables memory,
/// pids and cpu. The step is cloned straight into the group (CLONE_INTO_CGROUP), so not one
/// instruction of it runs outside. OOM kills come from `memory.events`, usage from
/// `memory.peak`, `pids.peak` and `cpu.stat`; teardown writes `cgroup.kill` and waits for
/// `populated 0` in `cgroup.events`.
struct CgroupV2Driver: CgroupDriver {
    static let controllers = ["memory", "pids", "cpu"]

    let fs: any CgroupFileSystem
    let rootSetting: String
    /// The directory step groups are created in, when it could be set up.
    let rootDir: String?
    /// Controllers enabled for the root's children.
    let enabled: Set<String>
    let problems: [String: String]
    let owner: CgroupOwner
    let isAlive: @Sendable (CgroupOwner) -> Bool

    init(host: CgroupHost, root: String, fs: any CgroupFileSystem, owner: CgroupOwner = .current,
         isAlive: @escaping @Sendable (CgroupOwner) -> Bool = CgroupOwner.isAlive) {
        self.fs = fs
        self.rootSetting = root
        self.owner = owner
        self.isAlive = isAlive
        var problems: [String: String] = [:]
        guard let mount = host.v2MountPoint else {
            for c in Self.controllers { problems[c] = "no cgroup2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)" }
            self.rootDir = nil
            self.enabled = []
            self.problems = problems
            return
        }
        let dir = CgroupHost.stepRoot(mountPoint: mount, mountRoot: host.v2MountRoot, own: host.ownV2 ?? "/", root: root)
        let err = makeDirectories(dir, below: mount, fs: fs)
        guard err == 0 else {
            let why = "cannot create \(dir): \(CgroupText.errorText(err))" + (err == EACCES || err == EPERM || err == EROFS
                ? "; run lanes in a delegated subtree (systemd-run --user --scope -p Delegate=yes …) and set LANES_CGROUP_ROOT to it" : "")
            for c in Self.controllers { problems[c] = why }
            self.rootDir = nil
            self.enabled = []
            self.problems = problems
            return
        }
        let parent = String(dir[..<(dir.lastIndex(of: "/") ?? dir.endIndex)])
        let available = Set((fs.read(dir + "/cgroup.controllers") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        var enabled = Set((fs.read(dir + "/cgroup.subtree_control") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        for c in Self.controllers where !enabled.contains(c) {
            guard available.contains(c) else {
                problems[c] = "\(parent) does not pass the \(c) controller down (it is not in \(dir)/cgroup.controllers); enable it with `echo +\(c) > \(parent)/cgroup.subtree_control`, or use a delegated subtree (systemd: Delegate=yes) as LANES_CGROUP_ROOT"
                continue
            }
            let e = fs.write(dir + "/cgroup.subtree_control", "+" + c)
            if e == 0 {
                enabled.insert(c)
            } else {
                problems[c] = "cannot enable \(c) in \(dir)/cgroup.subtree_control: \(CgroupText.errorText(e))"
                    + (e == EBUSY ? " (the root holds processes itself; choose an empty LANES_CGROUP_ROOT)" : "")
            }
        }
        self.rootDir = dir
        self.enabled = enabled
        self.problems = problems
    }

    var backend: CgroupBackend { .v2 }

    var enforceable: CgroupResources {
        CgroupResources(members: CgroupResource.allCases.filter { enabled.contains($0.controller) })
    }

    func whyMissing(_ resource: CgroupResource) -> String {
        "the \(resource.controller) cgroup controller cannot be used: " + (problems[resource.controller] ?? "unknown reason")
    }

    var report: CgroupReport {
        let list = Self.controllers.map { c in
            CgroupReport.Controller(name: c, directory: rootDir ?? "-", writable: enabled.contains(c), problem: problems[c])
        }
        return CgroupReport(backend: .v2, root: rootSetting, controllers: list,
                            note: "cgroup v2: CLONE_INTO_CGROUP, teardown by cgroup.kill")
    }

    func createStep(limits: CgroupLimits) throws(LanesError) -> any StepCgroup {
        for r in limits.resources.members where !enabled.contains(r.controller) {
            throw LanesError(.unsupported, stage: CgroupText.stage, whyMissing(r))
        }
        guard let rootDir else {
            throw LanesError(.unsupported, stage: CgroupText.stage, problems["memory"] ?? "no cgroup2 root")
        }
        let dir = rootDir + "/" + owner.groupName()
        let err = fs.makeDirectory(dir)
        guard err == 0 else {
            throw LanesError(.setupFailed, stage: CgroupText.stage, errno: err, "cannot create \(dir): \(CgroupText.errorText(err))")
        }
        let group = StepCgroupV2(fs: fs, dir: dir)
        do throws(LanesError) {
            if let bytes = limits.memoryBytes {
                try group.set("memory.max", String(bytes))
                // No swap: a step at its limit is OOM-killed instead of thrashing the disk.
                let e = fs.write(dir + "/memory.swap.max", "0")
                if e != 0 && e != ENOENT {
                    throw LanesError(.setupFailed, stage: CgroupText.stage, errno: e, "cannot write \(dir)/memory.swap.max: \(CgroupText.errorText(e))")
                }
            }
            if let pids = limits.pids { try group.set("pids.max", String(pids)) }
            if let quota = limits.cpuQuotaMicros { try group.set("cpu.max", "\(quota) \(CgroupLimits.cpuPeriodMicros)") }
            let fd = fs.openDirectory(dir)
            guard fd >= 0 else {
                throw LanesError(.setupFailed, stage: CgroupText.stage, errno: -fd, "cannot open \(dir): \(CgroupText.errorText(-fd))")
            }
            group.fd = fd
        } catch {
            _ = group.destroy(timeout: 1)
            throw error
        }
        return group
    }

    func removeStale() -> [String] {
        guard let rootDir else { return [] }
        var removed: [String] = []
        for name in fs.subdirectories(rootDir).sorted() {
            guard let o = CgroupOwner.parse(name), o != owner, !isAlive(o) else { continue }
            let group = StepCgroupV2(fs: fs, dir: rootDir + "/" + name)
            if group.destroy(timeout: 2) { removed.append(group.path) }
        }
        return removed
    }
}

final class StepCgroupV2: StepCgroup {
    let fs: any CgroupFileSystem
    let path: String
    fileprivate(set) var fd: Int32 = -1

    init(fs: any CgroupFileSystem, dir: String) {
        self.fs = fs
        self.path = dir
    }

    deinit { if fd >= 0 { close(fd) } }

    var directories: [String] { [path] }
    var cloneIntoFd: Int32 { fd }

    func set(_ file: String, _ value: String) throws(LanesError) {
        let err = fs.write(path + "/" + file, value)
        if err != 0 {
            throw LanesError(.setupFailed, stage: CgroupText.stage, errno: err, "cannot write \(value) to \(path)/\(file): \(CgroupText.errorText(err))")
        }
    }

    /// After CLONE_INTO_CGROUP the pid is already inside; this is for a spawn without it.
    func attach(pid: pid_t) throws(LanesError) {
        try set("cgroup.procs", String(pid))
    }

    private func members() -> [pid_t] { CgroupText.pids(fs.read(path + "/cgroup.procs")) }

    private func populated() -> Bool {
        (CgroupText.keyed(fs.read(path + "/cgroup.events"), "populated") ?? 1) != 0 || !members().isEmpty
    }

    func signalAll(_ signal: Int32) {
        let froze = fs.write(path + "/cgroup.freeze", "1") == 0
        if froze {
            var pause = 0.00005
            for _ in 0..<200 where CgroupText.keyed(fs.read(path + "/cgroup.events"), "frozen") != 1 {
                cgroupPause(pause)
                pause = min(pause * 2, 0.005)
            }
        }
        for pid in members() { _ = kill(pid, signal) }
        if froze { _ = fs.write(path + "/cgroup.freeze", "0") }
    }

    func usage() -> CgroupUsage {
        CgroupUsage(
            memoryPeakBytes: CgroupText.number(fs.read(path + "/memory.peak")),
            cpuMicros: CgroupText.keyed(fs.read(path + "/cpu.stat"), "usage_usec"),
            pidsPeak: CgroupText.number(fs.read(path + "/pids.peak")),
            oomKills: CgroupText.keyed(fs.read(path + "/memory.events"), "oom_kill") ?? 0,
            pidsLimitHits: CgroupText.keyed(fs.read(path + "/pids.events"), "max") ?? 0)
    }

    func destroy(timeout: Double) -> Bool {
        if fd >= 0 { close(fd); fd = -1 }
        let start = MonotonicClock.seconds()
        var pause = 0.00005
        while populated() {
            // cgroup.kill (Linux 5.14) kills every task, stopped and frozen ones included, and
            // any task forked meanwhile; older kernels get freeze → SIGKILL → thaw.
            if fs.write(path + "/cgroup.kill", "1") != 0 { signalAll(SIGKILL) }
            if MonotonicClock.seconds() - start >= timeout { return false }
            cgroupPause(pause)
            pause = min(pause * 2, 0.01)
        }
        while fs.removeDirectory(path) != 0 && fs.exists(path) {
            if MonotonicClock.seconds() - start >= timeout { return false }
            cgroupPause(pause)
            pause = min(pause * 2, 0.01)
        }
        return true
    }
}
