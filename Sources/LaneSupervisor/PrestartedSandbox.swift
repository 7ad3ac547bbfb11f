import CLaneSys
import Glibc
import LaneModel
import LanePlan
import LaneSys
import LaneSyscall
import SystemPackage

/// Keeps sandboxes started ahead of their steps (`lanes mcp`'s warm path; `SandboxPool` in
/// LaneRuntime). A prestarted sandbox is complete — namespaces, id maps, cgroup, filesystem,
/// limits — but its PID 1 waits for the step's command (`SpawnPlan.awaitsCommand`), so no tool
/// exists before the step's intent is durable. It is used at most once, by a step whose sandbox
/// would be exactly the same (`StepRunner.shape`), and killed unused otherwise.
public protocol SandboxPrestarter: AnyObject, Sendable {
    /// A ready sandbox of this shape, or nil (the step then starts its own).
    func take(shape: [UInt8]) -> PreparedSandbox?
    /// Asks for sandboxes like the one just taken to be started in the background by `make`
    /// (which returns nil when it cannot start one; the next step then starts its own and reports
    /// why). Ready sandboxes of any other shape are no longer wanted.
    func refill(shape: [UInt8], _ make: @escaping @Sendable () -> PreparedSandbox?)
}

/// One prestarted sandbox: its PID 1 (waiting for a command), pipes, cgroup, and what its cgroup
/// adds to a step's result. Killed, reaped and its cgroup removed when it goes away unclaimed.
///
/// The thread that started it must outlive it and the step that claims it: PID 1's parent-death
/// signal follows the thread that cloned it (`SandboxPool` starts them on one long-lived thread).
public final class PreparedSandbox: @unchecked Sendable {
    /// What it was built from (`StepRunner.shape`).
    public let shape: [UInt8]
    /// The step's cgroup, owned by the step once claimed.
    let cgroup: (any StepCgroup)?
    /// PID 1's host pid while it waits (tests look at it).
    public var pid: pid_t? { state == .waiting ? sandbox?.pid : nil }
    /// The cgroup's directory (the first hierarchy's under v1), if it has one.
    public var cgroupPath: String? { cgroup?.path }
    /// Every directory of its cgroup (v1: one per hierarchy); empty without one.
    public var cgroupDirectories: [String] { cgroup?.directories ?? [] }
    private var sandbox: SpawnedSandbox?
    private enum State { case waiting, claimed, discarded }
    private var state = State.waiting
    /// Whether a step claimed it and so ran in it.
    public var claimed: Bool { state == .claimed }
    /// Started by `StepRunner.startEarly`: claimed without awaiting its set-up.
    var startedEarly: Bool { mountTable == nil }
    /// `cgroup`, `cgroup:*` and `cgroup_limit:*` protections and `limits_not_applied`.
    private let cgroupFields: StepResult
    /// PID 1's mount table once its set-up was complete (see `claim`); nil for a sandbox started
    /// early (`StepRunner.startEarly`), whose set-up is awaited when it is claimed.
    private let mountTable: [UInt8]?

    init(shape: [UInt8], sandbox: consuming SpawnedSandbox, cgroup: (any StepCgroup)?, cgroupFields: StepResult,
         mountTable: [UInt8]?) {
        self.shape = shape
        self.sandbox = .some(consume sandbox)
        self.cgroup = cgroup
        self.cgroupFields = cgroupFields
        self.mountTable = mountTable
    }

    /// The sandbox, for the step about to run; its cgroup's entries join `result`. Nil if it
    /// was claimed or discarded already, or if its mounts are no longer the ones it was built
    /// with: it is then discarded, and the step starts its own.
    ///
    /// Why the mount table is read again: when a file or directory that is a mount point in
    /// another mount namespace is unlinked or renamed over on the host, the kernel silently
    /// detaches those mounts. A host editor that saves `.git/config` by renaming a new file
    /// over it would so take the read-only bind of a protected path out of a waiting sandbox,
    /// and its step could write the new file. A cold sandbox has that window only while its
    /// step runs; a prestarted one would have it for as long as it waits.
    ///
    /// A sandbox started early has no table: it is claimed as soon as the step's intent is
    /// durable, whether or not its set-up is complete, and its command waits in the socket for
    /// its tool process. Like a cold sandbox, its set-up goes straight on into the step (no time
    /// for a mount to be detached in between), and a set-up that fails is the step's failure,
    /// reported by PID 1 on the status pipe.
    func claim(into result: inout StepResult) -> SpawnedSandbox? {
        guard state == .waiting, let pid = sandbox?.pid else { return nil }
        guard mountTable.map({ Self.mountTable(of: pid) == $0 }) ?? true else {
            discard()
            return nil
        }
        state = .claimed
        result.cgroup = cgroupFields.cgroup
        result.protections += cgroupFields.protections
        result.limitsNotApplied = cgroupFields.limitsNotApplied
        return sandbox.take()
    }

    /// Kills PID 1 (its only child, the waiting tool process, has run nothing of the tool and dies
    /// with it), reaps it and removes its cgroup. Idempotent.
    public func discard() {
        guard state == .waiting else { return }
        state = .discarded
        if let pidfd = sandbox?.pidfd.raw { _ = lane_pidfd_send_signal(pidfd, SIGKILL) }
        _ = Retirement(pid: sandbox?.pid, cgroup: cgroup).finish(timeout: 2)
        sandbox = nil
    }

    deinit { discard() }

    /// `/proc/PID/mountinfo` as bytes (nil when it cannot be read: the sandbox is then not used).
    static func mountTable(of pid: pid_t) -> [UInt8]? {
        guard let fd = try? FileDescriptor.open("/proc/\(pid)/mountinfo", .readOnly, options: .closeOnExec) else { return nil }
        defer { try? fd.close() }
        return try? fd.readAll(limit: 1 << 20)
    }
}

extension StepRunner {
    /// Everything a step's sandbox is built from but its command: the plan without argv,
    /// environment and working directory; the trees; the identity; the cgroup limits; and the
    /// workspace directory's identity (a workspace replaced since is a different sandbox).
    static func shape(_ plan: SpawnPlan, trees: [(source: String, readOnly: Bool)], identity: StepIdentity,
                      request: StepRequest) -> [UInt8] {
        var bytes = PlanCodec.encode(plan.with(StepCommand(argv: [], environment: [], workdir: "")))
        var st = stat()
        let workspace = stat(request.workspace, &st) == 0 ? "\(st.st_dev):\(st.st_ino)" : "-"
        let l = request.profile.limits
        let limits = "\(l.memoryBytes.map(String.init) ?? "-") \(l.pids.map(String.init) ?? "-") "
            + "\(l.cpuFraction.map { String($0) } ?? "-") \(l.optional.sorted().joined(separator: ","))"
        let text = trees.map { "\($0.source.utf8.count):\($0.source) \($0.readOnly)" }.joined(separator: "\n")
            + "\n\(identity.uid):\(identity.gid):\(identity.rootful):\(identity.idmapWorkspace)\n\(workspace)\n\(limits)"
        bytes.append(contentsOf: text.utf8)
        return bytes
    }

    /// Starts a sandbox for a step like `request` that waits for its command; nil when it cannot
    /// (the step that would have used it then starts its own and reports the reason).
    public func prestart(_ request: StepRequest, compiled: CompiledProfile) -> PreparedSandbox? {
        prestart(request, compiled: compiled, early: nil)
    }

    /// The one-shot `lanes run`'s sandbox, started as soon as its lane is known: PID 1 builds it
    /// (its exec and set-up, about 3 ms here) on the other core while this thread opens the
    /// journal and makes the step's intent durable; the command is sent once the intent is
    /// durable, without waiting for the set-up (`claim`). Returns once `lane-init` is exec'd.
    /// Nil when it cannot be started (the step then starts its own and reports why). The
    /// calling thread must outlive the step, as for `prestart`. `callerAffinity`: this thread's
    /// CPUs; `lane-init` starts on one of them but this thread's own and gives the tool all of
    /// them back (`Spawner.spawn(toolAffinity:)`).
    public func startEarly(_ request: StepRequest, compiled: CompiledProfile, callerAffinity: [UInt8]) -> PreparedSandbox? {
        prestart(Self.waitingTemplate(request), compiled: compiled, early: callerAffinity)
    }

    /// `request` without what only its own step has: command, stdin, cancellation, timeout.
    static func waitingTemplate(_ request: StepRequest) -> StepRequest {
        var template = request
        template.argv = []
        template.stdin = nil
        template.cancellation = nil
        template.timeoutSeconds = nil
        return template
    }

    /// `early`: nil for a prestarted sandbox (its set-up is awaited), the caller's affinity for
    /// an early one.
    private func prestart(_ request: StepRequest, compiled: CompiledProfile, early: [UInt8]?) -> PreparedSandbox? {
        do throws(LanesError) {
            try HostLimits.require(request.profile)
            let identity = StepIdentity.forStep(workspace: request.workspace, root: geteuid() == 0 && Spawner.setgroupsAllowed())
            // Started before its step's intent is durable (and so maybe for a step that is then
            // refused), it makes nothing on the host: a missing writable directory is made by the
            // step that runs cold.
            guard try prepareWritableDirectories(request, identity: identity, creating: false) else { return nil }
            // Only its mounts: the step that claims the sandbox takes its own snapshot to check.
            let protection = Self.protectedPaths(request).mounts
            let (layout, trees) = Self.layout(request, compiled: compiled, identity: identity, protection: protection, overlay: nil)
            let shape = Self.shape(layout, trees: trees, identity: identity, request: request)
            // No command and no credential value in the plan of a sandbox that waits.
            var plan = layout.with(StepCommand(argv: [], environment: [], workdir: request.workspace))
            plan.awaitsCommand = true
            var fields = StepResult(lane: "", profile: "", profileFingerprint: "", outcome: .failedToStart, protections: [])
            let cgroup = try makeCgroup(request.profile.limits, &fields)
            do throws(LanesError) {
                // An early sandbox starts beside this thread (a prestarted one is started off the
                // call's path already: moving it competed with the running step, +0.7 ms a call).
                let sandbox = try Spawner(initPath: initPath).spawn(plan, cgroup: cgroup, identity: identity, trees: trees,
                                                                    toolAffinity: early ?? [])
                sweepStaleGroups()
                guard early == nil else {
                    return PreparedSandbox(shape: shape, sandbox: sandbox, cgroup: cgroup, cgroupFields: fields, mountTable: nil)
                }
                // Its mount table is recorded only once PID 1 has built all of it.
                let table = sandbox.awaitReady(timeoutMilliseconds: 10_000) ? PreparedSandbox.mountTable(of: sandbox.pid) : nil
                let prepared = PreparedSandbox(shape: shape, sandbox: sandbox, cgroup: cgroup, cgroupFields: fields,
                                               mountTable: table ?? [])
                guard table != nil else {
                    prepared.discard()  // its set-up failed or its mounts cannot be read: not used
                    return nil
                }
                return prepared
            } catch {
                _ = cgroup?.destroy(timeout: 2)
                throw error
            }
        } catch {
            return nil
        }
    }

    /// Asks `source` for the next sandbox of this shape (the template request carries no
    /// command, stdin or cancellation of the step that asked).
    func refill(_ source: any SandboxPrestarter, shape: [UInt8], request: StepRequest, compiled: CompiledProfile) {
        let template = Self.waitingTemplate(request), runner = self
        source.refill(shape: shape) { runner.prestart(template, compiled: compiled) }
    }
}
