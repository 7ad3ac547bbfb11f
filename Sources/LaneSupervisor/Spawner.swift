import CLaneSys
import Glibc
import LaneModel
import LanePlan
import LaneSys

/// A started sandbox: the helper's pid and pidfd, and the supervisor's ends of its pipes.
struct SpawnedSandbox {
    let pid: pid_t
    let pidfd: Int32
    let stdinWrite: Int32
    let stdoutRead: Int32
    let stderrRead: Int32
    let statusRead: Int32
}

/// Starts `lane-init` in fresh namespaces through the C `lane_spawn`, writes its id maps, and
/// waits until it has exec'd (or reports the stage that failed).
struct Spawner {
    let initPath: String

    static let namespaces = UInt64(LANE_CLONE_NEWUSER | LANE_CLONE_NEWPID | LANE_CLONE_NEWNS
        | LANE_CLONE_NEWNET | LANE_CLONE_NEWUTS | LANE_CLONE_NEWIPC | LANE_CLONE_NEWCGROUP)

    /// `cgroup`: the step's group. v2 clones straight into it (CLONE_INTO_CGROUP); v1 moves the
    /// child's pid into it while the child still waits for its id maps, before it runs anything.
    /// `egressChannel`: lane-init's end of the egress socketpair (proxy mode); it becomes the
    /// helper's fd 5 (`SpawnPlan.egressChannelFd`) and is closed here after the spawn.
    func spawn(_ plan: SpawnPlan, cgroup: (any StepCgroup)? = nil, egressChannel: Int32? = nil) throws(LanesError) -> SpawnedSandbox {
        let planFd = try writePlan(plan)
        defer { close(planFd) }
        let stdin = try pipe(), stdout = try pipe(), stderr = try pipe(), status = try pipe()
        let sync = try pipe(), err = try pipe()
        let childEnds = [stdin.read, stdout.write, stderr.write, planFd, status.write] + (egressChannel.map { [$0] } ?? [])
        let argv = CStringArray(["lane-init"]), envp = CStringArray([])
        // uid 0 of a user namespace whose setgroups is denied (a rootless container) cannot
        // drop groups: it takes the unprivileged path, like any other uid.
        let root = geteuid() == 0 && Self.setgroupsAllowed()
        var pid: pid_t = 0, pidfd: Int32 = -1
        let rc = childEnds.withUnsafeBufferPointer { fds in
            initPath.withCString { path in
                var args = lane_spawn_args(
                    path: path, argv: argv.pointers, envp: envp.pointers, fds: fds.baseAddress,
                    fd_count: Int32(fds.count), sync_fd: sync.read, sync_write_fd: sync.write, err_fd: err.write,
                    clone_flags: Self.namespaces, cgroup_fd: cgroup?.cloneIntoFd ?? -1, drop_groups: root ? 1 : 0)
                return lane_spawn(&args, &pid, &pidfd)
            }
        }
        for fd in childEnds where fd != planFd { close(fd) }
        close(sync.read)
        close(err.write)
        guard rc == 0 else {
            [stdin.write, stdout.read, stderr.read, status.read, sync.write, err.read].forEach { close($0) }
            let hint = rc == -EPERM || rc == -ENOSPC || rc == -EINVAL
                ? " (user namespaces may be disabled: see `lanes doctor`)" : ""
            throw LanesError(.setupFailed, stage: "spawn (clone3 with new namespaces)", errno: -rc,
                             String(cString: strerror(-rc)) + hint)
        }
        do {
            try writeIdMaps(pid: pid, root: root)
            // v1: the child waits on the sync pipe, so it runs nothing before it is moved.
            if let cgroup, cgroup.cloneIntoFd < 0 { try cgroup.attach(pid: pid) }
        } catch {
            _ = lane_pidfd_send_signal(pidfd, SIGKILL)
            var st: Int32 = 0
            waitpid(pid, &st, 0)
            [pidfd, stdin.write, stdout.read, stderr.read, status.read, sync.write, err.read].forEach { close($0) }
            throw error
        }
        var go: UInt8 = 1
        _ = write(sync.write, &go, 1)
        close(sync.write)
        let failure = readChildFailure(err.read)
        close(err.read)
        if let (stage, code) = failure {
            var st: Int32 = 0
            waitpid(pid, &st, 0)
            [pidfd, stdin.write, stdout.read, stderr.read, status.read].forEach { close($0) }
            let names = [LANE_STAGE_SYNC.rawValue: "spawn (sync)", LANE_STAGE_SETGROUPS.rawValue: "spawn (setgroups)",
                         LANE_STAGE_FDS.rawValue: "spawn (fd map)", LANE_STAGE_EXEC.rawValue: "exec lane-init (\(initPath))",
                         LANE_STAGE_PDEATHSIG.rawValue: "spawn (PDEATHSIG)"]
            throw LanesError(.setupFailed, stage: names[UInt32(stage)] ?? "spawn", errno: code, String(cString: strerror(code)))
        }
        return SpawnedSandbox(pid: pid, pidfd: pidfd, stdinWrite: stdin.write, stdoutRead: stdout.read,
                              stderrRead: stderr.read, statusRead: status.read)
    }

    /// Whether this process may call setgroups: /proc/self/setgroups says "allow" (or does not
    /// exist, on kernels older than 3.19).
    static func setgroupsAllowed() -> Bool {
        let fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 16)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        return n > 0 && buf.starts(with: Array("allow".utf8))
    }

    /// Maps uid/gid 0 of the new user namespace to the caller. Unprivileged callers must deny
    /// setgroups first; root keeps it so the child can drop its supplementary groups.
    private func writeIdMaps(pid: pid_t, root: Bool) throws(LanesError) {
        let dir = "/proc/\(pid)/"
        if !root { try writeProcFile(dir + "setgroups", "deny") }
        try writeProcFile(dir + "uid_map", "0 \(geteuid()) 1\n")
        try writeProcFile(dir + "gid_map", "0 \(getegid()) 1\n")
    }

    private func writeProcFile(_ path: String, _ text: String) throws(LanesError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        let ok = fd >= 0 && text.withCString { write(fd, $0, strlen($0)) } == text.utf8.count
        let err = errno
        if fd >= 0 { close(fd) }
        if !ok { throw LanesError(.setupFailed, stage: "user namespace id map", errno: err, "writing \(path) failed: \(String(cString: strerror(err)))") }
    }

    private func readChildFailure(_ fd: Int32) -> (Int32, Int32)? {
        var record: (Int32, Int32) = (0, 0)
        let n = withUnsafeMutableBytes(of: &record) { buf -> Int in
            while true {
                let r = read(fd, buf.baseAddress, 8)
                if r < 0 && errno == EINTR { continue }
                return r
            }
        }
        return n == 8 ? record : nil
    }

    private func writePlan(_ plan: SpawnPlan) throws(LanesError) -> Int32 {
        let bytes = PlanCodec.encode(plan)
        let fd = lane_memfd_create("lanes-plan", UInt32(LANE_MFD_CLOEXEC))
        guard fd >= 0 else { throw LanesError(.setupFailed, stage: "plan", errno: errno, "memfd_create failed") }
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { close(fd); throw LanesError(.setupFailed, stage: "plan", errno: errno, "writing the plan failed") }
        return fd
    }

    private func pipe() throws(LanesError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard lane_pipe2(&fds, O_CLOEXEC) == 0 else { throw LanesError(.setupFailed, stage: "pipe", errno: errno, "pipe2 failed") }
        return (fds[0], fds[1])
    }
}
