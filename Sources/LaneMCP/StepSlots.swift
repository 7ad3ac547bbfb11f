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
        let ticket: UInt64? = try lock.withLock {
            if closed { throw CancellationError() }
            if used < limit && waiting.isEmpty {
                used += 1
                return nil
            }
            nextTicket += 1
            return nextTicket
        }
        guard let ticket else { return }
        let granted = await withTaskCancellationHandler {
            await withCheckedContinuation { (resume: CheckedContinuation<Bool, Never>) in
                // The task's cancelled flag is set before `onCancel` runs and takes the lock: a
                // cancellation that comes before this append is seen here, one after it there.
                let refused = lock.withLock { () -> Bool in
                    if closed || Task.isCancelled { return true }
                    waiting.append((ticket, resume))
                    return false
                }
                if refused { resume.resume(returning: false) }
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
