import Foundation
import Glibc
import LaneModel
@testable import LaneSys
import Testing

/// The v2 backend's logic against a fake cgroup2 tree (this host has no v2 controllers): what it
/// writes, what it reads back, what it refuses, what it removes.
@Suite struct CgroupV2FakeTreeTests {
    static let owner = CgroupOwner(pid: 4242, startTime: 777)

    func host(_ tree: FakeCgroup2Tree, own: String) -> CgroupHost {
        CgroupHost(mountinfo: "41 31 0:38 / \(tree.top) rw,relatime - cgroup2 cgroup2 rw\n", selfCgroup: "0::\(own)\n")
    }

    /// A delegated user service: memory, pids and cpu passed down to /user.slice/u.service.
    func delegatedTree() throws -> FakeCgroup2Tree {
        let tree = try FakeCgroup2Tree()
        tree.put(tree.top + "/cgroup.subtree_control", "cpu memory pids\n")
        try tree.provision("user.slice", subtreeControl: "cpu memory pids\n")
        try tree.provision("user.slice/u.service", subtreeControl: "cpu memory pids\n")
        return tree
    }

    @Test func limitsAreWrittenAndTheStepIsClonedIntoTheGroup() throws {
        let tree = try delegatedTree()
        let driver = CgroupV2Driver(host: host(tree, own: "/user.slice/u.service"), root: "lanes", fs: tree, owner: Self.owner)
        #expect(driver.enforceable == .all)
        let root = tree.top + "/user.slice/u.service/lanes"
        #expect(driver.rootDir == root)
        #expect(tree.contents(root + "/cgroup.subtree_control") == "cpu memory pids\n")

        let group = try driver.createStep(limits: CgroupLimits(memoryBytes: 64 << 20, pids: 100, cpuFraction: 0.5))
        #expect(group.path.hasPrefix(root + "/lanes-4242-777-"))
        #expect(CgroupOwner.parse((group.path as NSString).lastPathComponent) == Self.owner)
        #expect(tree.contents(group.path + "/memory.max") == "67108864\n")
        #expect(tree.contents(group.path + "/memory.swap.max") == "0\n")
        #expect(tree.contents(group.path + "/pids.max") == "100\n")
        #expect(tree.contents(group.path + "/cpu.max") == "50000 100000\n")
        #expect(group.cloneIntoFd >= 0, "CLONE_INTO_CGROUP needs a directory fd")
        var st = stat()
        #expect(fstat(group.cloneIntoFd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR)

        // Counters as the kernel would leave them after an OOM kill.
        tree.put(group.path + "/memory.peak", "66060288\n")
        tree.put(group.path + "/memory.events", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
        tree.put(group.path + "/pids.peak", "37\n")
        tree.put(group.path + "/pids.events", "max 5\n")
        tree.put(group.path + "/cpu.stat", "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n")
        #expect(group.usage() == CgroupUsage(memoryPeakBytes: 66_060_288, cpuMicros: 123_456, pidsPeak: 37, oomKills: 1, pidsLimitHits: 5))

        // A live group (a pid inside): teardown goes through cgroup.kill, then rmdir.
        tree.put(group.path + "/cgroup.procs", "999999\n")
        tree.put(group.path + "/cgroup.events", "populated 1\nfrozen 0\n")
        #expect(group.destroy(timeout: 1))
        #expect(!tree.exists(group.path))
        let kills = tree.writes.filter { $0.0 == group.path + "/cgroup.kill" }
        #expect(kills.count >= 1 && kills.allSatisfy { $0.1 == "1" })
        #expect(tree.writes.last.map { $0.0 == group.path && $0.1 == "rmdir" } == true)
    }

    @Test func unsetLimitsAreNotWritten() throws {
        let tree = try delegatedTree()
        let driver = CgroupV2Driver(host: host(tree, own: "/user.slice/u.service"), root: "lanes", fs: tree, owner: Self.owner)
        let group = try driver.createStep(limits: CgroupLimits(pids: 64))
        #expect(tree.contents(group.path + "/memory.max") == "max\n")
        #expect(tree.contents(group.path + "/cpu.max") == "max 100000\n")
        #expect(tree.contents(group.path + "/pids.max") == "64\n")
        #expect(group.destroy(timeout: 1))
    }

    @Test func signalAllFreezesAroundTheKill() throws {
        let tree = try delegatedTree()
        let driver = CgroupV2Driver(host: host(tree, own: "/user.slice/u.service"), root: "lanes", fs: tree, owner: Self.owner)
        let group = try driver.createStep(limits: CgroupLimits())
        // Signal 0 to our own pid: harmless, and proves the pid list was read while frozen.
        tree.put(group.path + "/cgroup.procs", "\(getpid())\n")
        group.signalAll(0)
        let freezes = tree.writes.filter { $0.0 == group.path + "/cgroup.freeze" }.map(\.1)
        #expect(freezes == ["1", "0"])
        tree.put(group.path + "/cgroup.procs", "")
        tree.put(group.path + "/cgroup.events", "populated 0\nfrozen 0\n")
        #expect(group.destroy(timeout: 1))
    }

    @Test func aRootThatIsNotDelegatedRefusesWithTheFix() throws {
        let tree = try FakeCgroup2Tree()
        // The parent passes only pids down: memory and cpu cannot be enabled below it.
        tree.put(tree.top + "/cgroup.subtree_control", "pids\n")
        try tree.provision("system.slice", subtreeControl: "pids\n")
        let driver = CgroupV2Driver(host: host(tree, own: "/system.slice"), root: "lanes", fs: tree, owner: Self.owner)
        #expect(driver.enforceable == [.pids])
        let why = driver.whyMissing(.memory)
        #expect(why.contains("memory") && why.contains("cgroup.subtree_control") && why.contains("Delegate=yes"))
        #expect(throws: LanesError.self) { try driver.createStep(limits: CgroupLimits(memoryBytes: 64 << 20)) }
        let report = driver.report
        #expect(report.backend == .v2 && report.writableControllers == ["pids"])
    }

    @Test func absoluteRootIsFromTheTopOfTheHierarchy() throws {
        let tree = try delegatedTree()
        let driver = CgroupV2Driver(host: host(tree, own: "/elsewhere"), root: "/user.slice/u.service/agents", fs: tree, owner: Self.owner)
        #expect(driver.rootDir == tree.top + "/user.slice/u.service/agents")
        #expect(driver.enforceable == .all)
    }

    @Test func staleGroupsOfDeadOwnersAreRemovedAndLiveOnesKept() throws {
        let tree = try delegatedTree()
        let dead = CgroupOwner(pid: 1111, startTime: 5), live = CgroupOwner(pid: 2222, startTime: 6)
        let isAlive: @Sendable (CgroupOwner) -> Bool = { $0 == CgroupOwner(pid: 2222, startTime: 6) }
        let h = host(tree, own: "/user.slice/u.service")
        let deadGroup = try CgroupV2Driver(host: h, root: "lanes", fs: tree, owner: dead).createStep(limits: CgroupLimits(pids: 10))
        let liveGroup = try CgroupV2Driver(host: h, root: "lanes", fs: tree, owner: live).createStep(limits: CgroupLimits(pids: 10))
        tree.put(deadGroup.path + "/cgroup.procs", "999998\n")  // something survived its owner
        tree.put(deadGroup.path + "/cgroup.events", "populated 1\nfrozen 0\n")
        _ = tree.makeDirectory(tree.top + "/user.slice/u.service/lanes/not-ours")
        let cleaner = CgroupV2Driver(host: h, root: "lanes", fs: tree, owner: Self.owner, isAlive: isAlive)
        let removed = cleaner.removeStale()
        #expect(removed == [deadGroup.path])
        #expect(!tree.exists(deadGroup.path))
        #expect(tree.exists(liveGroup.path))
        #expect(tree.exists(tree.top + "/user.slice/u.service/lanes/not-ours"))
    }

    @Test func autoChoosesV2WhenControllersAreThereAndOffMeansNone() throws {
        let tree = try delegatedTree()
        let h = host(tree, own: "/user.slice/u.service")
        #expect(Cgroups.driver(environment: [:], host: h, fs: tree).backend == .v2)
        let off = Cgroups.driver(environment: ["LANES_CGROUP": "off"], host: h, fs: tree)
        #expect(off.backend == .none && off.enforceable.isEmpty)
        #expect(off.whyMissing(.pids).contains("LANES_CGROUP"))
    }
}

@Suite struct CgroupProbeTests {
    static let thisHostMountinfo = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """
    static let thisHostCgroup = "9:name=systemd:/\n8:pids:/\n6:freezer:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n"

    @Test func parsesHybridHost() {
        let h = CgroupHost(mountinfo: Self.thisHostMountinfo, selfCgroup: Self.thisHostCgroup)
        #expect(h.v2MountPoint == "/sys/fs/cgroup/unified")
        #expect(h.hierarchy("memory")?.mountPoint == "/sys/fs/cgroup/memory")
        #expect(h.hierarchy("cpuacct")?.mountPoint == "/sys/fs/cgroup/cpuacct")
        #expect(h.v1.count == 5, "name=systemd has no controller")
        #expect(h.ownV1["memory"] == "/process_api/abc")
        #expect(CgroupHost.stepRoot(mountPoint: "/sys/fs/cgroup/memory", mountRoot: "/", own: "/process_api/abc", root: "lanes")
            == "/sys/fs/cgroup/memory/process_api/abc/lanes")
        #expect(CgroupHost.stepRoot(mountPoint: "/sys/fs/cgroup/pids", mountRoot: "/", own: "/", root: "lanes") == "/sys/fs/cgroup/pids/lanes")
        #expect(CgroupHost.stepRoot(mountPoint: "/sys/fs/cgroup/pids", mountRoot: "/", own: "/x", root: "/agents/a") == "/sys/fs/cgroup/pids/agents/a")
    }

    @Test func comountedAndNamespacedHierarchies() {
        let info = "30 25 0:26 /a/b /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        let h = CgroupHost(mountinfo: info, selfCgroup: "3:cpu,cpuacct:/a/b/c\n")
        #expect(h.hierarchy("cpu") == h.hierarchy("cpuacct"))
        #expect(h.ownV1["cpuacct"] == "/a/b/c")
        #expect(CgroupHost.directory(mountPoint: "/sys/fs/cgroup/cpu,cpuacct", mountRoot: "/a/b", path: "/a/b/c") == "/sys/fs/cgroup/cpu,cpuacct/c")
        #expect(CgroupHost.unescape("/mnt/with\\040space") == "/mnt/with space")
    }

    @Test func groupNamesCarryTheOwner() {
        let o = CgroupOwner(pid: 31337, startTime: 123_456)
        #expect(CgroupOwner.parse(o.groupName()) == o)
        #expect(CgroupOwner.parse("lanes") == nil)
        #expect(CgroupOwner.parse("lanes-12-x-y") == nil)
        #expect(CgroupOwner.isAlive(.current))
        #expect(!CgroupOwner.isAlive(CgroupOwner(pid: getpid(), startTime: CgroupOwner.current.startTime + 1)), "a reused pid is not the owner")
        // Names carry the owner's pid namespace; an owner in another one is never judged dead by pid.
        #expect(CgroupOwner.parse(CgroupOwner.current.groupName()) == CgroupOwner.current)
        #expect(CgroupOwner.current.pidNamespace != 0)
        #expect(CgroupOwner.parse("lanes-31337-123456-k3x") == CgroupOwner(pid: 31337, startTime: 123_456), "the older names still parse")
        let foreign = CgroupOwner(pid: 999_999, startTime: 1, pidNamespace: CgroupOwner.current.pidNamespace + 1)
        #expect(CgroupOwner.isAlive(foreign))
        #expect(!CgroupOwner.isAlive(CgroupOwner(pid: 999_999, startTime: 1, pidNamespace: CgroupOwner.current.pidNamespace)))
    }
}
