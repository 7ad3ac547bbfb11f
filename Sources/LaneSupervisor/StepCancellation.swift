import Glibc

/// A way to stop one running step from another thread (a front door's cancellation, a client
/// that went away). `cancel()` makes a pipe readable; the step's monitor polls it next to its
/// stop signals and ends the step exactly as a SIGTERM to `lanes run` would: SIGTERM to the tree,
/// the grace period, then SIGKILL. The step is recorded `stopped`. Cancelling before the step
/// starts stops it as soon as it is spawned; cancelling twice is harmless.
public final class StepCancellation: @unchecked Sendable {
    /// The read end the monitor polls (-1 when the pipe could not be made: cancel then does nothing
    /// but set the flag, which the front door reads).
    let readFd: Int32
    private let writeFd: Int32
    private let lock = NSLockish()
    private var cancelled = false

    public init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, O_NONBLOCK)
            }
        }
        readFd = fds[0]
        writeFd = fds[1]
    }

    deinit {
        if readFd >= 0 { close(readFd) }
        if writeFd >= 0 { close(writeFd) }
    }

    /// Asks the step to stop (once).
    public func cancel() {
        let first = lock.withLock { () -> Bool in
            defer { cancelled = true }
            return !cancelled
        }
        guard first, writeFd >= 0 else { return }
        var byte: UInt8 = 1
        _ = write(writeFd, &byte, 1)
    }

    /// Whether `cancel()` was called.
    public var isCancelled: Bool { lock.withLock { cancelled } }
}

/// A pthread mutex (LaneSupervisor does not import Foundation for NSLock).
final class NSLockish: @unchecked Sendable {
    /// Allocated, not stored inline: a pthread mutex must not move.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { pthread_mutex_init(mutex, nil) }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }
}
