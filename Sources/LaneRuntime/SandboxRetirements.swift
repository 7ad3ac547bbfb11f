import Foundation
import LaneSupervisor

/// Finishes the sandboxes of ended steps whose PID 1 is still exiting (`Retirement`), one after
/// another on a background queue: a step's result is made durable and returned while the kernel
/// tears its sandbox's namespaces down. `wait()` (from `StepService.close()`) returns once every
/// one was reaped and its cgroup removed, so `lanes run` exits leaving nothing behind.
final class SandboxRetirements: SandboxRetirer, @unchecked Sendable {
    private let queue = DispatchQueue(label: "lanes-retire")
    private let pending = DispatchGroup()
    /// Told the directory of a cgroup that could not be emptied and removed.
    private let leftBehind: @Sendable (String) -> Void

    private let lock = NSLock()
    private var seen: [(pid: pid_t, cgroup: String?)] = []

    init(leftBehind: @escaping @Sendable (String) -> Void) {
        self.leftBehind = leftBehind
    }

    /// The last PID 1s retired (at most 64) and their cgroups' directories (tests look at them).
    var retired: [(pid: pid_t, cgroup: String?)] { lock.withLock { seen } }

    func retire(_ retirement: Retirement) {
        lock.withLock {
            if seen.count == 64 { seen.removeFirst() }
            if let pid = retirement.pid { seen.append((pid, retirement.cgroupPath)) }
        }
        queue.async(group: pending) { [leftBehind] in
            if !retirement.finish() { leftBehind(retirement.cgroupPath ?? "?") }
        }
    }

    /// Blocks until every retirement queued so far is finished.
    func wait() {
        pending.wait()
    }
}
