import CLaneSys
import Glibc
import LaneModel
import LanePlan
import LaneSys
import LaneSyscall

/// Runs one step: plan → spawn → watch → result. Nothing here runs between clone and exec;
/// that is `lane_spawn` (C) and then `lane-init` (a fresh process).
public struct StepRunner: Sendable {
    /// Path of the `lane-init` helper.
    public let initPath: String
    /// Makes the cgroup driver (probes the host once per step runner).
    public var cgroups: @Sendable () -> any CgroupDriver
    /// Where sandboxes started ahead of their step come from (`lanes mcp`); nil: every sandbox
    /// starts when its step does (the one-shot `lanes run`).
    public var prestarted: (any SandboxPrestarter)?
    /// Where a sandbox goes whose PID 1 sent its final report and is still exiting; nil: the
    /// step waits for PID 1 and removes the cgroup itself (and reports a group it could not remove).
    public var retirer: (any SandboxRetirer)?

    public init(initPath: String, cgroups: @escaping @Sendable () -> any CgroupDriver = { Cgroups.driver() }) {
        self.initPath = initPath
        self.cgroups = cgroups
    }

    /// The protections every step gets; a step that cannot have one of them does not run.
    public static func protections(_ profile: Profile) -> [String] {
        ["user_namespace", "pid_namespace", "mount_namespace", "network_namespace:loopback_only",
         "uts_namespace", "ipc_namespace", "cgroup_namespace", "tmpfs_root", "read_only_system_binds",
         "workspace:\(profile.filesystem.workspace.rawValue)", "seccomp:\(profile.seccomp.defaultAction.rawValue)",
         "capabilities_dropped", "no_new_privs", "rlimits", "new_session", "clean_environment",
         "fds_closed", "pdeathsig", "init_reaper", "nondumpable_init"]
    }

    /// Runs the step. `compiled` is the profile compiled once for this process.
    public func run(_ request: StepRequest, compiled: CompiledProfile) -> StepResult {
        let start = MonotonicClock.seconds()
        var result = StepResult(lane: request.lane.name, profile: request.profile.name,
                                profileFingerprint: compiled.fingerprint, outcome: .failedToStart,
                                protections: Self.protections(request.profile))
        do throws(LanesError) {
            let signals = try blockStopSignals()
            if request.stdin == nil { try checkStdin() }
            // Before the spawn: lane-init cannot raise a hard limit (issue 11).
            try HostLimits.require(request.profile)
            let identity = StepIdentity.forStep(workspace: request.workspace, root: geteuid() == 0 && Spawner.setgroupsAllowed())
            try prepareWritableDirectories(request, identity: identity)
            if identity.rootful { result.hostIdentity = "\(identity.uid):\(identity.gid)" }
            let protection = Self.protectedPaths(request)
            result.unprotected = protection.unprotected
            if !request.profile.filesystem.protected.isEmpty { result.protections.append("protected_paths") }
            let staged = try WorkspaceChanges.prepare(request)
            if let staged {
                result.protections.append("workspace_commit:\(staged.set.commit)")
                if identity.rootful { try WorkspaceChanges.handOver(staged, to: identity) }
            }
            // Proxy mode: the proxy runs before the clone, so lane-init's channel exists.
            let egress = try StepEgress.start(request)
            defer { if let egress { result.network = egress.proxy.stop() } }
            if egress != nil { result.protections.append("egress_proxy") }
            var (plan, trees) = Self.layout(request, compiled: compiled, identity: identity, protection: protection.mounts,
                                            overlay: staged.map { ($0.upper, $0.work) })
            if egress != nil { plan.egressPort = Profile.Network.proxyPort }
            // `lanes mcp`: a sandbox started before this call, when one of exactly this shape is
            // ready; the next one starts now, in the background (docs/mcp.md, "Warm path").
            // (The command is encoded only then: a one-shot has no use for it.)
            let command = prestarted != nil && staged == nil && egress == nil
                ? PlanCodec.encode(StepCommand(argv: plan.argv, environment: plan.environment, workdir: plan.workdir)) : nil
            let shape = command.flatMap { $0.count <= StepCommand.maxEncodedBytes ? Self.shape(plan, trees: trees, identity: identity, request: request) : nil }
            let ready = shape.flatMap { prestarted?.take(shape: $0) }
            let cgroup: (any StepCgroup)?
            var sandbox: SpawnedSandbox
            if let ready, let command, let claimed = ready.claim(into: &result) {
                sandbox = claimed
                cgroup = ready.cgroup
                sandbox.sendCommand(command, readyAwaited: !ready.startedEarly)
            } else {
                cgroup = try makeCgroup(request.profile.limits, &result)
                do throws(LanesError) {
                    sandbox = try Spawner(initPath: initPath).spawn(plan, cgroup: cgroup, identity: identity, trees: trees,
                                                                    egressChannel: egress?.childEnd)
                } catch {
                    _ = cgroup?.destroy(timeout: 2)
                    throw error
                }
                sweepStaleGroups()
            }
            if let shape, let prestarted { refill(prestarted, shape: shape, request: request, compiled: compiled) }
            let limit = Int(clamping: request.profile.limits.outputBytes)
            var monitor = StepMonitor(sandbox: sandbox, deadlineSeconds: request.wallSeconds,
                                      graceSeconds: request.profile.limits.killGraceSeconds, signalFd: signals.raw,
                                      tree: cgroup, cancelFd: request.cancellation?.readFd ?? -1)
            let ending = monitor.watch(
                stdout: OutputSink(relayFd: request.captureOutput ? nil : 1, limit: limit, redactor: request.redactor),
                stderr: OutputSink(relayFd: request.captureOutput ? nil : 2, limit: limit, redactor: request.redactor),
                stdin: request.stdin.map { .bytes($0) } ?? (shouldForwardStdin() ? .forward : .closed))
            // Every process of the step but PID 1 is gone: PID 1 was reaped (its pid namespace
            // with it), or it sent its final report (it reaped them all) and is exiting. Read the
            // group's counters; then, once PID 1 is reaped, kill whatever is left (nothing,
            // normally) and remove the group — off the step's path when there is a retirer (the
            // namespaces' teardown in PID 1's exit took 0.4-2 ms here). Not for a staged step:
            // its overlay stays mounted in PID 1's mount namespace until PID 1 is gone, and its
            // change set is read and applied below.
            let usage = cgroup?.usage()
            let retirement = Retirement(pid: ending.reaped ? nil : monitor.sandboxPid, cgroup: cgroup)
            if retirement.pid != nil, staged == nil, let retirer {
                retirer.retire(retirement)
            } else if !retirement.finish(), let cgroup {
                result.error = "cgroup \(cgroup.path) could not be emptied and removed; the next lanes run retries"
            }
            // Every process of the step is gone (for a staged step PID 1 too, with its mount
            // namespace and so the overlay's mount). Under commit = auto its change set lands now;
            // then what the step planted on the host (directly or through the applied change
            // set) can be looked at safely: the protected-path check comes last.
            if var staged { result.changes = WorkspaceChanges.finish(&staged, request: request) }
            let planted = protection.check()
            result.wallMs = (MonotonicClock.seconds() - start) * 1000
            fill(&result, from: ending, limits: request.profile.limits, argv: request.argv)
            result.denials += planted
            if let usage { classify(&result, usage) }
        } catch {
            result.wallMs = (MonotonicClock.seconds() - start) * 1000
            result.outcome = .failedToStart
            result.exitCode = ExitStatus.failedToStart
            result.error = "\(error.stage): \(error.message)"
        }
        return result
    }

    /// The protection of the step's writable tree (`ProtectedPaths`): its mounts, and what to
    /// check after the step.
    static func protectedPaths(_ request: StepRequest) -> ProtectedPaths {
        ProtectedPaths.prepare(
            workspace: request.workspace, roots: request.profile.filesystem.workspace == .readWrite ? [""] : request.lane.writable,
            protected: request.profile.filesystem.protected, unprotect: request.lane.unprotected)
    }

    /// The sandbox's plan and the trees a root `lanes` hands to PID 1.
    static func layout(_ request: StepRequest, compiled: CompiledProfile, identity: StepIdentity, protection: [MountStep],
                       overlay: (String, String)?) -> (SpawnPlan, [(source: String, readOnly: Bool)]) {
        let plan = SpawnPlan(
            argv: request.argv,
            environment: Self.environment(request),
            workdir: request.workspace,
            mounts: SandboxLayout.mounts(profile: request.profile, lane: request.lane,
                                         workspace: request.workspace, hidden: request.hiddenPaths,
                                         attachTrees: identity.rootful, protected: protection, overlay: overlay)
                + Self.credentialMounts(request.credentials),
            rlimits: compiled.rlimits, seccompFilter: compiled.seccompFilter)
        let trees = identity.rootful ? SandboxLayout.trees(profile: request.profile, lane: request.lane, workspace: request.workspace,
                                                           overlay: overlay) : []
        return (plan, trees)
    }

    /// The profile's environment plus the lane's env credentials; nothing else passes.
    static func environment(_ request: StepRequest) -> [String] {
        var env = request.profile.environment.map { ($0.key, Array($0.value.utf8)) }
        for c in request.credentials where c.delivery == .env {
            env.removeAll { $0.0 == c.name }
            env.append((c.name, c.value))
        }
        if request.profile.network.mode == .proxy {
            for (name, value) in StepEgress.environment(port: Profile.Network.proxyPort) {
                env.removeAll { $0.0 == name }
                env.append((name, Array(value.utf8)))
            }
        }
        return env.sorted { $0.0 < $1.0 }.map { $0.0 + "=" + String(decoding: $0.1, as: UTF8.self) }
    }

    /// File credentials: a private tmpfs at `Lane.Credential.directory` holding one 0400 file per
    /// credential (owned by the sandbox uid, which maps to lane-init's), then made read-only.
    static func credentialMounts(_ credentials: [CredentialValue]) -> [MountStep] {
        let files = credentials.filter { $0.delivery == .file }
        guard !files.isEmpty else { return [] }
        let dir = Lane.Credential.directory
        var steps: [MountStep] = [.tmpfs(target: dir, sizeBytes: 1 << 20, mode: 0o500)]
        for c in files { steps.append(.file(target: dir + "/" + c.name, contents: c.value, mode: 0o400)) }
        steps.append(.remountReadOnly(target: dir))
        return steps
    }

    /// `cannot execute 'NAME': command not found` (127) or `cannot execute 'NAME': Permission
    /// denied` (126): the command first, then why.
    static func execFailure(command: String, status: Int32, errno: Int32) -> String {
        let why = status == 127 && (errno == ENOENT || errno == 0) ? "command not found" : String(cString: strerror(errno))
        return "cannot execute '\(command)': \(why)"
    }

    private func fill(_ result: inout StepResult, from ending: StepMonitor.Ending, limits: Profile.Limits, argv: [String]) {
        var ending = ending
        ending.stdout.finish()
        ending.stderr.finish()
        let u = ending.usage
        result.cpuMs = Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000
            + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1000
        result.maxRssKb = u.ru_maxrss
        result.stdout = ending.stdout.captured
        result.stderr = ending.stderr.captured
        result.stdoutTruncated = ending.stdout.truncated
        result.stderrTruncated = ending.stderr.truncated
        if let sig = ending.stoppedBy {
            result.outcome = .stopped
            result.signal = sig
            return
        }
        if ending.timedOut {
            result.outcome = .timedOut
            result.limit = .wallClock
            result.limitsHit.append(.wallClock)
            return
        }
        guard let report = ending.report else {
            result.outcome = .failedToStart
            result.exitCode = ExitStatus.failedToStart
            result.error = "lane-init: ended without a report"
            return
        }
        result.denials += report.denials.map { d in
            Denial(kind: d.setid ? .setidBit : .seccomp, name: SeccompCompiler.name(of: d.nr), count: Int(d.count),
                   firstPid: d.firstPid, firstProcess: d.firstProcess)
        }
        switch report.kind {
        case .exited:
            result.outcome = .exited
            result.exitCode = report.value
        case .signaled:
            result.outcome = report.value == SIGSYS ? .seccompViolation : .signaled
            result.signal = report.value
            // RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL one second later at the hard one.
            let cpuLimitMs = Double(limits.cpuSeconds) * 1000
            if report.value == SIGXCPU || (report.value == SIGKILL && result.cpuMs >= cpuLimitMs) {
                result.outcome = .cpuTimeExceeded
                result.limit = .cpuTime
                result.limitsHit.append(.cpuTime)
            }
        case .setupFailed:
            result.outcome = .failedToStart
            result.exitCode = ExitStatus.failedToStart
            let stage = report.stage ?? SetupStage(LANE_STAGE_FORK_TOOL)
            result.error = stage.message(detail: report.detail, reason: Errno(rawValue: report.errno).reason)
        case .execFailed:
            result.outcome = .failedToStart
            result.exitCode = report.value
            result.error = Self.execFailure(command: argv.first ?? "", status: report.value, errno: report.errno)
        }
    }

    /// The lane's writable workspace directories exist before they are bound. A path that is a
    /// symlink (or has one inside the workspace) is refused: binds never follow links.
    /// Run as root, a directory made here is given to the workspace's owner (the step's identity
    /// acts as that owner). With `creating` false nothing is made: false when one is missing (a
    /// sandbox started ahead of its step's intent changes nothing on the host).
    @discardableResult
    func prepareWritableDirectories(_ request: StepRequest, identity: StepIdentity, creating: Bool = true) throws(LanesError) -> Bool {
        var owner = stat()
        let haveOwner = identity.rootful && stat(request.workspace, &owner) == 0
        for dir in request.lane.writable + (request.profile.filesystem.commit == .direct ? [] : request.lane.writableDirect) {
            var path = request.workspace
            for part in dir.split(separator: "/") {
                path += "/" + part
                var st = stat()
                if lstat(path, &st) == 0 {
                    guard (st.st_mode & S_IFMT) == S_IFDIR else {
                        throw LanesError(.invalidConfig, stage: SetupStage(LANE_STAGE_WORKSPACE).name, "writable directory \"\(dir)\" is not a directory (or is a symlink) in \(request.workspace)")
                    }
                } else if !creating {
                    return false
                } else if mkdir(path, 0o755) != 0 {
                    throw LanesError(.setupFailed, stage: SetupStage(LANE_STAGE_WORKSPACE).name, errno: errno, "cannot create \(path): \(String(cString: strerror(errno)))")
                } else if haveOwner && lchown(path, owner.st_uid, owner.st_gid) != 0 {
                    throw LanesError(.setupFailed, stage: SetupStage(LANE_STAGE_WORKSPACE).name, errno: errno, "cannot give \(path) to the workspace's owner: \(String(cString: strerror(errno)))")
                }
            }
        }
        return true
    }

    /// Removes the groups dead supervisors left behind (`CgroupDriver.removeStale`). Called
    /// right after a clone, not before the group is made: it lists every step group on the host
    /// (~0.4 ms of a one-shot), and there it overlaps `lane-init`'s start instead of delaying it.
    func sweepStaleGroups() {
        cgroups().removeStale()
    }

    /// The step's cgroup. A cgroup limit the host cannot enforce refuses the step (125) unless
    /// the profile lists it in `limits.optional`; then the result lists it as not applied.
    /// Without any cgroup limit a group is still made when possible (usage, teardown).
    func makeCgroup(_ l: Profile.Limits, _ result: inout StepResult) throws(LanesError) -> (any StepCgroup)? {
        let driver = cgroups()
        let limits = CgroupLimits(memoryBytes: l.memoryBytes, pids: l.pids, cpuFraction: l.cpuFraction)
        let missing = limits.resources.subtracting(driver.enforceable)
        for r in missing.members.sorted() where !l.optional.contains(r.rawValue) {
            throw LanesError(.unsupported, stage: SetupStage(LANE_STAGE_CGROUP).name,
                             "limits.\(r.rawValue) cannot be enforced on this host: \(driver.whyMissing(r)). "
                             + "To run without it, list it in the profile: limits.optional = [\"\(r.rawValue)\"]")
        }
        result.limitsNotApplied = missing.members.map { $0.rawValue }.sorted()
        let effective = limits.removing(missing)
        if driver.backend == .none || (effective.resources.isEmpty && driver.enforceable.isEmpty) { return nil }
        do throws(LanesError) {
            let group = try driver.createStep(limits: effective)
            result.cgroup = driver.backend.rawValue
            result.protections.append("cgroup:\(driver.backend.rawValue)")
            for r in effective.resources.members.sorted() { result.protections.append("cgroup_limit:\(r.rawValue)") }
            return group
        } catch {
            if effective.resources.isEmpty { return nil }  // no limit depends on it
            throw error
        }
    }

    /// Turns cgroup counters into the outcome the agent can act on: an OOM kill, or a fork that
    /// failed at the pids limit, each only when the step did not succeed.
    private func classify(_ result: inout StepResult, _ u: CgroupUsage) {
        result.memoryPeakBytes = u.memoryPeakBytes
        result.cgroupCpuMs = u.cpuMicros.map { Double($0) / 1000 }
        result.pidsPeak = u.pidsPeak
        if u.oomKills > 0 { result.limitsHit.append(.memory) }
        if u.pidsLimitHits > 0 { result.limitsHit.append(.pids) }
        let succeeded = result.outcome == .exited && result.exitCode == 0
        guard !succeeded, result.outcome != .stopped, result.outcome != .failedToStart else { return }
        if u.oomKills > 0 {
            result.outcome = .oomKilled
            result.limit = .memory
        } else if u.pidsLimitHits > 0 {
            result.outcome = .pidsLimited
            result.limit = .pids
        }
    }

    /// SIGINT, SIGTERM and SIGHUP become readable on a signalfd instead of killing `lanes`.
    private func blockStopSignals() throws(LanesError) -> OwnedDescriptor {
        let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]
        let fd = signals.withUnsafeBufferPointer { lane_signalfd_for($0.baseAddress, Int32($0.count)) }
        guard fd >= 0 else { throw Spawner.failure(LANE_STAGE_SIGNALS, errno: errno, "signalfd failed") }
        return OwnedDescriptor(adopting: fd)
    }

    /// A directory fd on stdin would let the step reach the host's filesystem through it; it is
    /// never passed (stdin is always a pipe), and `lanes` refuses to run with one.
    private func checkStdin() throws(LanesError) {
        var st = stat()
        if fstat(0, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            throw LanesError(.invalidArgument, stage: "stdin", "standard input is a directory; refusing to run a step with it")
        }
    }

    /// Forward stdin when it is a pipe or a file; a terminal is never read (the step gets EOF).
    private func shouldForwardStdin() -> Bool {
        var st = stat()
        guard fstat(0, &st) == 0 else { return false }
        return isatty(0) == 0
    }
}
