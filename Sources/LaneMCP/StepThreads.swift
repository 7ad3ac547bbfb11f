import Crypto
import Foundation
import LaneModel
import LaneRuntime
import LaneSupervisor
import MCP

/// The steps this server is running: each on a dedicated thread (a step blocks its thread for
/// its whole duration; the cooperative pool must never be), with its cancellation registered so
/// a `notifications/cancelled` for its call, or the client going away, stops it cleanly.
final class StepThreads: @unchecked Sendable {
    private let lock = NSLock()
    private var running: [ObjectIdentifier: StepCancellation] = [:]
    /// How many run at once; the others wait for a slot.
    let slots: StepSlots

    init(maxSteps: Int) {
        slots = StepSlots(limit: maxSteps)
    }

    var count: Int { lock.withLock { running.count } }

    /// Runs one call once a slot is free (a call cancelled while it waits runs nothing and
    /// records nothing); a cancelled task stops the step (SIGTERM, grace, SIGKILL) and still
    /// waits for its result to be recorded. `progress` reports the wait for a slot and the
    /// running step.
    func run(_ call: StepCall, service: StepService, progress: CallProgress) async throws -> StepReport {
        if !slots.tryAcquire() {
            let limit = slots.limit
            try await progress.during(immediately: true, {
                "waiting \($0) s for a free step slot (at most \(limit) steps run at once)"
            }) { try await slots.acquire() }
        }
        defer { slots.release() }
        // Cancelled as its slot came: nothing was recorded yet, so nothing runs.
        try Task.checkCancellation()
        let cancellation = StepCancellation()
        var call = call
        call.cancellation = cancellation
        let key = ObjectIdentifier(cancellation)
        lock.withLock { running[key] = cancellation }
        defer { lock.withLock { _ = running.removeValue(forKey: key) } }
        let frozen = call
        let report = try await progress.during(immediately: false, { "step running for \($0) s" }) {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (done: CheckedContinuation<StepReport, Never>) in
                    let thread = Thread { done.resume(returning: service.run(frozen)) }
                    thread.name = "lanes-step"
                    thread.start()
                }
            } onCancel: {
                cancellation.cancel()
            }
        }
        // The SDK sends no response for a cancelled request; the step is recorded all the same.
        try Task.checkCancellation()
        return report
    }

    /// Stops every running step and refuses the calls still waiting for a slot (the client went
    /// away).
    func cancelAll() {
        slots.close()
        for c in lock.withLock({ Array(running.values) }) { c.cancel() }
    }

    /// Returns when no step is running any more (their results are recorded by then). Its pause
    /// ignores cancellation: a cancelled task's `Task.sleep` returns at once, and the loop would
    /// spin for the stopping steps' grace period.
    func drain() async {
        while count > 0 {
            await withCheckedContinuation { (resume: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(20)) { resume.resume() }
            }
        }
    }
}

/// SHA-256 as lowercase hex.
enum Digest {
    static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
