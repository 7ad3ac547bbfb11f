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

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Takes a slot if one is free and no call is waiting for one.
    func tryAcquire() -> Bool {
        lock.withLock {
            guard !closed, used < limit, waiting.isEmpty else { return false }
            used += 1
            return true
        }
    }

    /// Takes a slot, waiting for one when all are taken. Throws `CancellationError` when the task
    /// is cancelled while it waits or the slots are closed; then it holds no slot. A grant that
    /// crosses a cancellation is kept: the caller gives it back (`StepThreads.run` checks for
    /// cancellation once it has its slot).
    func acquire() async throws {
        if tryAcquire() { return }
        let ticket = lock.withLock { () -> UInt64 in
            nextTicket += 1
            return nextTicket
        }
        let granted = await withTaskCancellationHandler {
            await withCheckedContinuation { (resume: CheckedContinuation<Bool, Never>) in
                // Decided again under the lock that queues it: a slot given back since
                // `tryAcquire` (with no one waiting, `release` only counts it free) is taken
                // here; queued, this call would wait for a release that may never come. The
                // task's cancelled flag is set before `onCancel` runs and takes the lock: a
                // cancellation that comes before the append is seen here, one after it there.
                let now = lock.withLock { () -> Bool? in
                    if closed || Task.isCancelled { return false }
                    if used < limit && waiting.isEmpty {
                        used += 1
                        return true
                    }
                    waiting.append((ticket, resume))
                    return nil
                }
                if let now { resume.resume(returning: now) }
            }
        } onCancel: {
            let removed = lock.withLock { () -> CheckedContinuation<Bool, Never>? in
                waiting.firstIndex { $0.ticket == ticket }.map { waiting.remove(at: $0).resume }
            }
            removed?.resume(returning: false)
        }
        guard granted else { throw CancellationError() }
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
