import Foundation

/// At most `limit` steps of a server run at once (`lanes mcp --max-steps`): each is a
/// sandbox with its own processes and cgroup, and a client that fires calls without bound would
/// otherwise start as many as it sends. Calls beyond the limit wait, first come first served,
/// before anything of their step is recorded; one cancelled while it waits (or whose client
/// went away: `close()`) leaves without running anything.
final class StepSlots: @unchecked Sendable {
    let limit: Int
    private let lock = NSLock()
    private var used = 0
    private var closed = false
    private var nextTicket: UInt64 = 0
    /// Waiting calls in arrival order, each resumed with true (it has the slot) or false.
    private var waiting: [(ticket: UInt64, resume: CheckedContinuation<Bool, Never>)] = []
    /// Tickets cancelled before their call began to wait.
    private var cancelledEarly: Set<UInt64> = []

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Calls waiting for a slot (tests and logs).
    var queued: Int { lock.withLock { waiting.count } }

    /// Takes a slot, waiting for one when all are taken. Throws `CancellationError` when the task
    /// is cancelled while it waits or the slots are closed; then it holds no slot.
    func acquire() async throws {
        let ticket: UInt64? = lock.withLock {
            if closed { return 0 }
            if used < limit && waiting.isEmpty {
                used += 1
                return nil
            }
            nextTicket += 1
            return nextTicket
        }
        guard let ticket else { return }
        guard ticket != 0 else { throw CancellationError() }
        let granted = await withTaskCancellationHandler {
            await withCheckedContinuation { (resume: CheckedContinuation<Bool, Never>) in
                let refused = lock.withLock { () -> Bool in
                    if closed || cancelledEarly.remove(ticket) != nil { return true }
                    waiting.append((ticket, resume))
                    return false
                }
                if refused { resume.resume(returning: false) }
            }
        } onCancel: {
            let removed = lock.withLock { () -> CheckedContinuation<Bool, Never>? in
                guard let i = waiting.firstIndex(where: { $0.ticket == ticket }) else {
                    cancelledEarly.insert(ticket)  // not waiting yet (or already granted: then unused)
                    return nil
                }
                return waiting.remove(at: i).resume
            }
            removed?.resume(returning: false)
        }
        guard granted else { throw CancellationError() }
        // A grant and a cancellation can cross: the slot was handed over, so it is kept and the
        // call runs (its step sees the cancellation and stops at once).
        lock.withLock { _ = cancelledEarly.remove(ticket) }
    }

    /// Gives a slot back: to the first waiting call, else to the pool.
    func release() {
        let next = lock.withLock { () -> CheckedContinuation<Bool, Never>? in
            if !waiting.isEmpty { return waiting.removeFirst().resume }
            used -= 1
            return nil
        }
        next?.resume(returning: true)
    }

    /// Refuses every waiting call and every later one (the client went away).
    func close() {
        let all = lock.withLock { () -> [CheckedContinuation<Bool, Never>] in
            closed = true
            defer { waiting.removeAll() }
            return waiting.map(\.resume)
        }
        for resume in all { resume.resume(returning: false) }
    }
}
