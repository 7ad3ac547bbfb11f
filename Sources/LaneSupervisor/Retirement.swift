import Glibc
import LaneSys
import LaneSyscall

/// Finishes sandboxes whose step is over but whose PID 1 is still exiting, off the step's path
/// (`Retirement.finish`), so the step's result is made durable while the kernel tears the
/// namespaces down; closing the retirer waits for every one.
public protocol SandboxRetirer: AnyObject, Sendable {
    func retire(_ retirement: Retirement)
}

/// The end of a sandbox: PID 1 reaped, then the step's cgroup emptied and removed. For a step
/// that ended on PID 1's final report (`InitReport.ending`) nothing of the step runs any more and
/// PID 1 is exiting, its namespaces being torn down; a retirer finishes it off the step's path.
public struct Retirement: @unchecked Sendable {
    /// PID 1's host pid, not reaped yet; nil when it was.
    public let pid: pid_t?
    let cgroup: (any StepCgroup)?

    /// Reaps PID 1, then removes the cgroup; false when the group could not be emptied and
    /// removed within `timeout` seconds (it stays for the next sweep).
    public func finish(timeout: Double = 5) -> Bool {
        if let pid {
            var status: Int32 = 0
            _ = retryOnInterrupt { waitpid(pid, &status, 0) }
        }
        return cgroup?.destroy(timeout: timeout) ?? true
    }

    /// The cgroup's directory, for a message about a group left behind.
    public var cgroupPath: String? { cgroup?.path }
}
