import LaneModel
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
        guard request.profile.filesystem.commit == .direct, request.profile.network.mode != .proxy,
              HostProbe.usableCPUs() >= 2 else { return nil }
        return runner.startEarly(request, compiled: compiled).map(EarlySandbox.init)
    }

    /// The sandbox once its step took it.
    private var taken: PreparedSandbox?

    /// Whether the step ran in it (`lanes run` logs it at level info).
    var used: Bool { taken?.claimed == true }

    func take(shape: [UInt8]) -> PreparedSandbox? {
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
        sandbox?.discard()
        sandbox = nil
    }

    deinit { discard() }
}
