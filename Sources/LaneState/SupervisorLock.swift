import Foundation
import LaneJournal

/// How a supervisor shows that it still runs, to every process sharing its state directory.
///
/// A `lanes run` creates `STATE/supervisors/NAME` and holds an exclusive `flock` on it until it
/// exits; the name goes into its intent (`Supervisor.lock`). Whether an intent's supervisor is
/// alive is then "is that lock held?": the kernel drops the lock when the process dies, however
/// it dies, so the answer is right across pid namespaces (a `lanes` in a container sharing the
/// state directory with the host sees a different pid for the same process) and never fooled by
/// a reused pid. The pid + start-time check stays for records without a lock.
public enum SupervisorLock {
    /// The directory of lock files.
    static func directory(_ state: String) -> String { state + "/supervisors" }

    /// Creates and locks this process's file; returns its name, or nil when it cannot (the
    /// supervisor then falls back to being judged by pid). The descriptor stays open, and so
    /// locked, until the process exits; it is close-on-exec, so no step inherits it.
    public static func hold(stateDirectory: String) -> String? {
        let dir = directory(stateDirectory)
        if mkdir(dir, 0o700) != 0 && errno != EEXIST { return nil }
        var g = SystemRandomNumberGenerator()
        let name = "\(getpid())-\(String(g.next() as UInt64, radix: 16))"
        let fd = open(dir + "/" + name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return name
    }

    /// Removes this process's file at a normal end (its lock goes with the process anyway).
    public static func release(stateDirectory: String, name: String) {
        unlink(directory(stateDirectory) + "/" + name)
    }

    /// Whether the supervisor that took `name` still holds it. A file nobody holds is removed.
    public static func isHeld(stateDirectory: String, name: String) -> Bool {
        guard !name.contains("/") else { return false }
        let path = directory(stateDirectory) + "/" + name
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }  // released at a normal end, or removed as stale
        defer { close(fd) }
        guard flock(fd, LOCK_SH | LOCK_NB) == 0 else { return true }  // held (or cannot tell: say alive)
        unlink(path)
        return false
    }
}
