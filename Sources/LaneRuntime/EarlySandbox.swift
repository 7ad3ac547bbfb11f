import CLaneSys
import LaneModel
import LanePlan
import LaneSupervisor
import LaneSys

/// The one-shot `lanes run`'s sandbox, started before the journal is opened (`StepRunner.startEarly`)
/// so that `lane-init`'s exec and set-up run on the other core while the step's intent is made
/// durable (docs/benchmarks.md, stop 15). Nothing runs in it before its command is sent, which
/// happens only once the intent is durable, exactly as for `lanes mcp`'s prestarted sandboxes.
///
/// The step takes it when it is exactly the sandbox the step would have built (`take(shape:)`),
/// otherwise it is killed and the step starts its own; a step that is replayed or refused never
/// takes it, and `discard()` kills it. Used by the one thread that runs the step.
final class EarlySandbox: SandboxPrestarter, @unchecked Sendable {
    private var sandbox: PreparedSandbox?

    private init(_ sandbox: PreparedSandbox) {
        self.sandbox = sandbox
    }

    /// Starts the sandbox for `request` when the step can use one that waits for its command
    /// (not under `filesystem.commit = auto/review`, whose overlay is built per step, nor with an
    /// egress proxy, which must exist before the clone) and this process may run on two CPUs or
    /// more (on one, nothing overlaps: the early start would only add its wake-ups); nil
    /// otherwise or when it cannot start (`StepRunner.startEarly`: also while a writable
    /// directory of the lane is still to be made).
    static func start(_ request: StepRequest, compiled: CompiledProfile, runner: StepRunner) -> EarlySandbox? {
        guard request.profile.filesystem.commit == .direct, request.profile.network.mode != .proxy else { return nil }
        let cpus = HostProbe.affinity()
        guard HostProbe.cpuCount(cpus) >= 2,
              let sandbox = runner.startEarly(request, compiled: compiled, callerAffinity: cpus) else { return nil }
        let early = EarlySandbox(sandbox)
        early.armStopSignals()
        return early
    }

    /// Until the step takes the sandbox or it is discarded, SIGINT, SIGTERM or SIGHUP (which
    /// end `lanes run` with their default action before its step has a signalfd) first kill
    /// the sandbox and remove its cgroup (`lane_early_stop_arm`): without this, a Ctrl-C
    /// during the journal's work left an empty group for the next `lanes` to sweep. A sandbox
    /// whose PID 1 or groups cannot be named to the handler is not kept.
    private func armStopSignals() {
        guard let waiting = sandbox, let pid = waiting.pid else { return }
        let dirs = CStringArray(waiting.cgroupDirectories)
        let list = UnsafeRawPointer(dirs.pointers).assumingMemoryBound(to: UnsafePointer<CChar>?.self)
        guard lane_early_stop_arm(pid, list, Int32(waiting.cgroupDirectories.count)) == 0 else { return discard() }
    }

    /// The sandbox once its step took it.
    private var taken: PreparedSandbox?

    /// Whether the step ran in it (`lanes run` logs it at level info).
    var used: Bool { taken?.claimed == true }

    func take(shape: [UInt8]) -> PreparedSandbox? {
        // The step's own signalfd has the stop signals by now (StepRunner.run).
        lane_early_stop_disarm()
        guard let waiting = sandbox else { return nil }
        sandbox = nil
        guard waiting.shape == shape else {
            waiting.discard()
            return nil
        }
        taken = waiting
        return waiting
    }

    /// A one-shot starts no sandbox for a next step.
    func refill(shape: [UInt8], _ make: @escaping @Sendable () -> PreparedSandbox?) {}

    /// Kills it unless its step took it. Idempotent.
    func discard() {
        // Before the sandbox is reaped here: the handler must never signal a reused pid.
        if sandbox != nil { lane_early_stop_disarm() }
        sandbox?.discard()
        sandbox = nil
    }

    deinit { discard() }
}
