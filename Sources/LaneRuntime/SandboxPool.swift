import Foundation
import LaneSupervisor

/// `lanes mcp`'s prestarted sandboxes: up to `capacity` of the shape the last step asked for,
/// started on one long-lived thread while the current step runs, so the next call's sandbox set-up
/// (clone with seven namespaces, `lane-init`'s exec and its filesystem) is already done when it
/// arrives. A sandbox of another shape, a failure to start one, `drain()` and `close()` all end in
/// the sandbox being killed unused; nothing ever ran in it.
///
/// One thread starts them all, and lives until `close()`: the kernel sends PID 1 its
/// parent-death signal when the *thread* that cloned it ends, so a short-lived thread would kill
/// its sandboxes, and a step running in one, under its claimer.
final class SandboxPool: SandboxPrestarter, @unchecked Sendable {
    private let capacity: Int
    private let condition = NSCondition()
    private var ready: [PreparedSandbox] = []
    private var wanted: (shape: [UInt8], make: @Sendable () -> PreparedSandbox?)?
    /// The shape being started right now, and whether a `take` already waits for it.
    private var starting: [UInt8]?
    private var awaited = false
    /// Bumped by `drain()`: a sandbox started before is not kept.
    private var generation = 0
    private var thread: Thread?
    private var closed = false
    /// Asked about once a second while sandboxes wait: false (the run was stopped or halted from
    /// outside, say by `lanes stop` while no call was running) drains the pool.
    private var stillWanted: (@Sendable () -> Bool)?

    /// The ready sandboxes' PID 1s and cgroups (tests look at them).
    var readySandboxes: [(pid: pid_t, cgroup: String?)] {
        condition.withLock { ready.compactMap { s in s.pid.map { ($0, s.cgroupPath) } } }
    }

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    func take(shape: [UInt8]) -> PreparedSandbox? {
        condition.lock()
        defer { condition.unlock() }
        if let i = ready.firstIndex(where: { $0.shape == shape }) { return ready.remove(at: i) }
        // One being started for this shape: waiting for the rest of its start is faster than a
        // start of our own. One waiter per start; the others start their own.
        guard starting == shape, !awaited else { return nil }
        awaited = true
        defer { awaited = false }
        let deadline = Date(timeIntervalSinceNow: 2)
        while starting != nil, condition.wait(until: deadline) {}
        guard let i = ready.firstIndex(where: { $0.shape == shape }) else { return nil }
        return ready.remove(at: i)
    }

    func refill(shape: [UInt8], _ make: @escaping @Sendable () -> PreparedSandbox?) {
        condition.lock()
        guard !closed else {
            condition.unlock()
            return
        }
        wanted = (shape, make)
        let unwanted = ready.filter { $0.shape != shape }
        ready.removeAll { $0.shape != shape }
        if thread == nil {
            let thread = Thread { [self] in loop() }
            thread.name = "lanes-prestart"
            self.thread = thread
            thread.start()
        }
        condition.broadcast()
        condition.unlock()
        for sandbox in unwanted { sandbox.discard() }
    }

    /// Kills every ready sandbox and forgets the wanted shape (the run was refused a step: halted,
    /// stopped, awaiting approval; the next step that runs asks again).
    func drain() {
        condition.lock()
        wanted = nil
        generation += 1
        let all = ready
        ready = []
        condition.unlock()
        for sandbox in all { sandbox.discard() }
    }

    /// Sets what is asked, while sandboxes wait, whether they are still wanted.
    func watch(_ stillWanted: @escaping @Sendable () -> Bool) {
        condition.withLock {
            self.stillWanted = stillWanted
            condition.broadcast()  // a loop waiting without a timeout now needs one
        }
    }

    /// Drains and ends the thread, once no step runs any more (see the type's note).
    func close() {
        drain()
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        condition.lock()
        while !closed {
            guard let want = wanted, ready.count < capacity else {
                if ready.isEmpty || stillWanted == nil {
                    condition.wait()
                } else if !condition.wait(until: Date(timeIntervalSinceNow: 1)), let stillWanted {
                    let started = generation
                    condition.unlock()
                    let keep = stillWanted()
                    if !keep, started == generation { drain() }
                    condition.lock()
                }
                continue
            }
            starting = want.shape
            let started = generation
            condition.unlock()
            let made = want.make()
            condition.lock()
            starting = nil
            var unused: PreparedSandbox?
            if let made, started == generation, !closed, made.shape == wanted?.shape {
                ready.append(made)
            } else {
                unused = made
            }
            // A start that failed (or built a different sandbox: the workspace or configuration
            // changed) is not retried until a step asks again.
            if made == nil || unused != nil, started == generation { wanted = nil }
            condition.broadcast()
            if let unused {
                condition.unlock()
                unused.discard()
                condition.lock()
            }
        }
        condition.unlock()
    }
}
