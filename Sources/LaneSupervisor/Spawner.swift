import CLaneSys
import Glibc
import LaneModel
import LanePlan
import LaneSys
import LaneSyscall

/// A started sandbox: the helper's pid and pidfd, and the supervisor's ends of its pipes. It
/// owns them (moved from `Spawner`'s owners) and they close with it, after `StepMonitor` is
/// done; stdin is taken out earlier by the stdin pump, which closes it to give the step EOF.
struct SpawnedSandbox: ~Copyable {
    let pid: pid_t
    let pidfd: OwnedDescriptor
    var stdinWrite: OwnedDescriptor?
    let stdoutRead: OwnedDescriptor
    let stderrRead: OwnedDescriptor
    let statusRead: OwnedDescriptor
    /// A prestarted sandbox's end of the fd 5 socket, where its `StepCommand` goes
    /// (`SpawnPlan.awaitsCommand`); nil once sent, and for every other sandbox.
    var commandSocket: OwnedDescriptor?

    /// Waits (at most `timeoutMilliseconds`) until a prestarted sandbox's PID 1 says its set-up is
    /// complete. False when it failed (its end closed: the report on the status pipe says why),
    /// took too long, or this is not a prestarted sandbox.
    func awaitReady(timeoutMilliseconds: Int32) -> Bool {
        let raw: Int32
        switch commandSocket {
        case .some(let socket): raw = socket.raw
        case .none: return false
        }
        var fds = pollfd(fd: raw, events: Int16(POLLIN), revents: 0)
        guard retryOnInterrupt({ poll(&fds, 1, timeoutMilliseconds) }) == 1 else { return false }
        var byte: UInt8 = 0
        return retryOnInterrupt({ recv(raw, &byte, 1, Int32(MSG_DONTWAIT)) }) == 1 && byte == SpawnPlan.readyByte
    }

    /// Starts the tool of a prestarted sandbox: one message (an encoded `StepCommand`), then this
    /// end closes. A PID 1 that failed its set-up (and so no longer reads) is not an error here:
    /// its report says why.
    ///
    /// A sandbox whose ready byte was not awaited (started early) keeps this end open until it
    /// goes away: its tool process may not have sent that byte yet, and closing with it unread
    /// would reset the connection under the tool process before it reads its command
    /// (ECONNRESET), while closing before it is sent would make it see a supervisor that left.
    mutating func sendCommand(_ bytes: [UInt8], readyAwaited: Bool = true) {
        let raw: Int32
        switch commandSocket {
        case .some(let socket): raw = socket.raw
        case .none: return
        }
        _ = bytes.withUnsafeBytes { buffer in retryOnInterrupt { send(raw, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) } }
        if readyAwaited { commandSocket.take()?.close() }
    }
}

/// Starts `lane-init` in fresh namespaces through the C `lane_spawn`, writes its id maps, and
/// waits until it has exec'd (or reports the stage that failed). Every descriptor has one
/// `OwnedDescriptor` owner until it is handed to the child (closed here after the clone) or to
/// the caller (`take()`), so an early return closes exactly what is open.
struct Spawner {
    let initPath: String

    static let namespaces = UInt64(LANE_CLONE_NEWUSER | LANE_CLONE_NEWPID | LANE_CLONE_NEWNS
        | LANE_CLONE_NEWNET | LANE_CLONE_NEWUTS | LANE_CLONE_NEWIPC | LANE_CLONE_NEWCGROUP)

    /// `cgroup`: the step's group. v2 clones straight into it (CLONE_INTO_CGROUP); v1 moves the
    /// child's pid into it while the child still waits for its id maps, before it runs anything.
    /// `identity`: the host ids the sandbox maps to (nil: the caller's). `trees`: host paths
    /// (read-only or not) this process opens as detached mount trees, id-mapped when
    /// `identity.idmapWorkspace`, and hands to PID 1 on fd 5 for its `.attach` steps.
    /// `egressChannel`: lane-init's end of the egress socketpair (proxy mode); it becomes the
    /// helper's fd 6 (`SpawnPlan.egressChannelFd`) and is closed here after the spawn.
    /// `toolAffinity` (this thread's CPUs; empty: none of this): `lane-init` starts on another CPU
    /// than this thread's (when one is allowed) and gives the tool these back
    /// (`SpawnPlan.toolAffinity`): for a one-shot's early sandbox, whose start should overlap
    /// `lanes`' own work, not share its CPU.
    func spawn(_ plan: SpawnPlan, cgroup: (any StepCgroup)? = nil, identity: StepIdentity? = nil,
               trees: [(source: String, readOnly: Bool)] = [], egressChannel: Int32? = nil,
               toolAffinity: [UInt8] = []) throws(LanesError) -> SpawnedSandbox {
        var plan = plan
        plan.toolAffinity = toolAffinity
        let planFd = try writePlan(plan)
        let stdin = try pipe(), stdout = try pipe(), stderr = try pipe(), status = try pipe()
        let sync = try pipe(), err = try pipe()
        // Trees (the workspace and writable directories) go to PID 1 over this pair (fd 5).
        var pairFds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pairFds) == 0 else {
            throw Self.failure(LANE_STAGE_ATTACH, errno: errno, "socketpair: " + Errno(rawValue: errno).reason)
        }
        let treeSocket = OwnedDescriptor(adopting: pairFds[0]), treeSocketChild = OwnedDescriptor(adopting: pairFds[1])
        let childEnds = [stdin.read.raw, stdout.write.raw, stderr.write.raw, planFd.raw, status.write.raw, treeSocketChild.raw]
            + (egressChannel.map { [$0] } ?? [])  // fd 6 (SpawnPlan.egressChannelFd)
        let argv = CStringArray(["lane-init"]), envp = CStringArray([])
        // uid 0 of a user namespace whose setgroups is denied (a rootless container) cannot
        // drop groups: it takes the unprivileged path, like any other uid.
        let root = geteuid() == 0 && Self.setgroupsAllowed()
        var pid: pid_t = 0, pidfd: Int32 = -1
        // The child's stack and argument copy (x86_64: it shares this address space until its
        // exec). Unmapped when this function returns: by then the child has exec'd (the error
        // pipe read EOF) or has been reaped.
        var childMemory = lane_spawn_memory()
        defer { lane_spawn_release(&childMemory) }
        // v1: the child moves itself into the step's groups (`StepCgroup.selfJoinFiles`); the
        // files are opened here, so the kernel checks this process's credentials.
        let joinFds = try Self.openJoinFiles(cgroup)
        defer { for fd in joinFds { close(fd) } }
        let (syncRead, syncWrite, errWrite) = (sync.read.raw, sync.write.raw, err.write.raw)
        let rc = childEnds.withUnsafeBufferPointer { fds in
            joinFds.withUnsafeBufferPointer { joins in
                initPath.withCString { path in
                    var args = lane_spawn_args(
                        path: path, argv: argv.pointers, envp: envp.pointers, fds: fds.baseAddress,
                        fd_count: Int32(fds.count), sync_fd: syncRead, sync_write_fd: syncWrite, err_fd: errWrite,
                        clone_flags: Self.namespaces, cgroup_fd: cgroup?.cloneIntoFd ?? -1, drop_groups: root ? 1 : 0,
                        join_fds: joins.baseAddress, join_count: Int32(joins.count),
                        avoid_caller_cpu: plan.toolAffinity.isEmpty ? 0 : 1, caller_cpu: -1)
                    return lane_spawn(&args, &pid, &pidfd, &childMemory)
                }
            }
        }
        // The child has its copies (or there is no child): our copies of its ends go now.
        stdin.read.close(); stdout.write.close(); stderr.write.close(); status.write.close()
        sync.read.close(); err.write.close(); treeSocketChild.close()
        if let egressChannel { close(egressChannel) }
        _ = consume planFd
        guard rc == 0 else {
            let hint = rc == -EPERM || rc == -ENOSPC || rc == -EINVAL
                ? " (user namespaces may be disabled: see `lanes doctor`)" : ""
            throw Self.failure(LANE_STAGE_SPAWN, errno: -rc, "clone3 with new namespaces failed: " + Errno(rawValue: -rc).reason + hint)
        }
        let pidFd = OwnedDescriptor(adopting: pidfd)
        do {
            try writeIdMaps(pid: pid, root: root, identity: identity)
            // Before the sync byte: PID 1 reads the trees before it builds anything.
            if !trees.isEmpty { try sendTrees(trees, pid: pid, idmap: identity?.idmapWorkspace ?? false, socket: treeSocket.raw) }
            // v1 without self-join files: the child waits on the sync pipe, so it runs nothing
            // before it is moved.
            if let cgroup, cgroup.cloneIntoFd < 0, joinFds.isEmpty { try cgroup.attach(pid: pid) }
        } catch {
            _ = lane_pidfd_send_signal(pidFd.raw, SIGKILL)
            var st: Int32 = 0
            _ = retryOnInterrupt { waitpid(pid, &st, 0) }
            throw error
        }
        // If the byte cannot be written the child reads EOF and reports LANE_STAGE_SYNC. The
        // write end stays open until the child exec'd: after re-arming PDEATHSIG it checks for a
        // hang-up there to know this process is still alive.
        try? sync.write.descriptor.writeAll([1])
        let failure = readChildFailure(err.read.descriptor)
        sync.write.close()
        err.read.close()
        if let (code, errno) = failure {
            var st: Int32 = 0
            _ = retryOnInterrupt { waitpid(pid, &st, 0) }
            let stage = SetupStage(code: code) ?? SetupStage(LANE_STAGE_SPAWN)
            let detail = stage == SetupStage(LANE_STAGE_EXEC_INIT) ? initPath + ": " : ""
            throw LanesError(.setupFailed, stage: stage.name, errno: errno, detail + Errno(rawValue: errno).reason)
        }
        var commandSocket: OwnedDescriptor? = nil
        if plan.awaitsCommand { commandSocket = .some(consume treeSocket) }
        return SpawnedSandbox(pid: pid, pidfd: pidFd, stdinWrite: stdin.write, stdoutRead: stdout.read,
                              stderrRead: stderr.read, statusRead: status.read, commandSocket: commandSocket)
    }

    /// A set-up failure of the supervisor's side, named by its stage in `lane_stages.h`.
    static func failure(_ stage: lane_stage, errno: Int32? = nil, _ message: String) -> LanesError {
        LanesError(.setupFailed, stage: SetupStage(stage).name, errno: errno, message)
    }

    /// Whether this process may call setgroups: /proc/self/setgroups says "allow" (or does not
    /// exist, on kernels older than 3.19).
    static func setgroupsAllowed() -> Bool {
        guard let bytes = readWholeFile("/proc/self/setgroups", limit: 16) else { return true }
        return bytes.starts(with: Array("allow".utf8))
    }

    /// Maps uid/gid 0 of the new user namespace to the caller. Unprivileged callers must deny
    /// setgroups first; root keeps it so the child can drop its supplementary groups.
    /// Root maps to `identity` (never to host root; see `StepIdentity`).
    private func writeIdMaps(pid: pid_t, root: Bool, identity: StepIdentity?) throws(LanesError) {
        let dir = "/proc/\(pid)/"
        if !root { try writeProcFile(dir + "setgroups", "deny") }
        let uid = root ? identity?.uid ?? geteuid() : geteuid()
        let gid = root ? identity?.gid ?? getegid() : getegid()
        try writeProcFile(dir + "uid_map", "0 \(uid) 1\n")
        try writeProcFile(dir + "gid_map", "0 \(gid) 1\n")
    }

    /// Opens each tree (as this process, so the step's identity need not reach the path) and
    /// sends them in one message. With `idmap` they are id-mapped through the child's user
    /// namespace: its uid 0 (the step's identity) acts as the files' owner, uid 0 on disk.
    private func sendTrees(_ trees: [(source: String, readOnly: Bool)], pid: pid_t, idmap: Bool, socket: Int32) throws(LanesError) {
        var userns: Int32 = -1
        if idmap {
            userns = open("/proc/\(pid)/ns/user", O_RDONLY | O_CLOEXEC)
            guard userns >= 0 else { throw Self.failure(LANE_STAGE_BIND_IDMAP, errno: errno, "cannot open the sandbox's user namespace") }
        }
        defer { if userns >= 0 { close(userns) } }
        var fds: [Int32] = []
        defer { fds.forEach { close($0) } }
        for t in trees {
            var stage: Int32 = 0
            let fd = lane_open_tree(t.source, t.readOnly ? 1 : 0, userns, &stage)
            guard fd >= 0 else {
                let err = errno
                let hint = stage == Int32(LANE_STAGE_BIND_IDMAP.rawValue) ? " (the filesystem may not support id-mapped mounts)" : ""
                let failed = SetupStage(code: stage) ?? SetupStage(LANE_STAGE_ATTACH)
                throw LanesError(.setupFailed, stage: failed.name, errno: err, "\(t.source): \(Errno(rawValue: err).reason)\(hint)")
            }
            fds.append(fd)
        }
        guard fds.withUnsafeBufferPointer({ lane_send_fds(socket, $0.baseAddress, Int32($0.count)) }) == 0 else {
            throw Self.failure(LANE_STAGE_ATTACH, errno: errno, "sending the workspace to the sandbox failed")
        }
    }

    private func writeProcFile(_ path: String, _ text: String) throws(LanesError) {
        let err = writeExistingFile(path, text)
        if err != 0 { throw Self.failure(LANE_STAGE_ID_MAP, errno: err, "writing \(path) failed: \(Errno(rawValue: err).reason)") }
    }

    /// The group's self-join files, open for writing (CLOEXEC; the child's copies close at its
    /// exec). A file that cannot be opened refuses the step: attaching by pid would meet the
    /// same permissions.
    private static func openJoinFiles(_ cgroup: (any StepCgroup)?) throws(LanesError) -> [Int32] {
        guard let cgroup, cgroup.cloneIntoFd < 0 else { return [] }
        var fds: [Int32] = []
        for path in cgroup.selfJoinFiles {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            if fd < 0 {
                let e = errno
                for f in fds { close(f) }
                throw failure(LANE_STAGE_CGROUP_ATTACH, errno: e, "cannot open \(path): " + Errno(rawValue: e).reason)
            }
            fds.append(fd)
        }
        return fds
    }

    /// The clone child writes {stage, errno} before it gives up; EOF means lane-init exec'd.
    private func readChildFailure(_ fd: FileDescriptor) -> (Int32, Int32)? {
        var record: (Int32, Int32) = (0, 0)
        let n = withUnsafeMutableBytes(of: &record) { (try? fd.readFully(into: $0)) ?? 0 }
        return n == 8 ? record : nil
    }

    private func writePlan(_ plan: SpawnPlan) throws(LanesError) -> OwnedDescriptor {
        let fd = lane_memfd_create("lanes-plan", UInt32(LANE_MFD_CLOEXEC))
        guard fd >= 0 else { throw Self.failure(LANE_STAGE_PLAN, errno: errno, "memfd_create failed") }
        let owned = OwnedDescriptor(adopting: fd)
        do { try owned.descriptor.writeAll(PlanCodec.encode(plan)) } catch {
            throw Self.failure(LANE_STAGE_PLAN, errno: error.rawValue, "writing the plan failed: \(error.reason)")
        }
        return owned
    }

    private func pipe() throws(LanesError) -> PipeEnds {
        do { return try PipeEnds() } catch { throw Self.failure(LANE_STAGE_PIPE, errno: error.rawValue, "pipe2 failed: \(error.reason)") }
    }
}
