import CLaneSys
import Glibc
import LaneModel
import LanePlan
import LaneSys

/// Watches a started sandbox from one thread with poll(2): relays or captures output as it is
/// written, forwards `lanes`' stdin, turns SIGINT/SIGTERM into a clean stop, enforces the
/// wall-clock deadline (SIGTERM to the tree, a grace period, then SIGKILL to PID 1, which ends
/// the whole pid namespace), and collects the helper's report and rusage.
struct StepMonitor {
    struct Ending {
        var report: InitReport?
        var timedOut = false
        var stoppedBy: Int32?
        var usage = rusage()
        var stdout: OutputSink
        var stderr: OutputSink
    }

    let sandbox: SpawnedSandbox
    let deadlineSeconds: Double
    let graceSeconds: Double
    let signalFd: Int32
    /// The step's cgroup: SIGTERM and SIGKILL also go to every process in it (double-forked,
    /// setsid'd and stopped ones included), not only to PID 1.
    var tree: (any StepCgroup)?
    /// Readable when a front door cancels the step (`StepCancellation`); -1 for none.
    var cancelFd: Int32 = -1

    /// Where the step's stdin comes from.
    enum Stdin {
        /// This process's stdin, copied as it arrives.
        case forward
        /// These bytes, then end of file.
        case bytes([UInt8])
        /// End of file at once.
        case closed
    }

    func watch(stdout: OutputSink, stderr: OutputSink, stdin: Stdin) -> Ending {
        var ending = Ending(stdout: stdout, stderr: stderr)
        let start = monotonicSeconds()
        var killAt: Double?  // when SIGKILL follows the SIGTERM
        var outOpen = true, errOpen = true, exited = false
        var stdinPump: StdinPump?
        switch stdin {
        case .forward: stdinPump = StdinPump(target: sandbox.stdinWrite)
        case let .bytes(b) where !b.isEmpty: stdinPump = StdinPump(target: sandbox.stdinWrite, bytes: b)
        case .bytes, .closed: close(sandbox.stdinWrite)
        }
        var buffer = [UInt8](repeating: 0, count: 65536)

        while outOpen || errOpen || !exited {
            let now = monotonicSeconds()
            if !exited && killAt == nil && now - start >= deadlineSeconds {
                ending.timedOut = true
                killAt = now + graceSeconds
                terminate()
            }
            if !exited, let k = killAt, now >= k {
                _ = lane_pidfd_send_signal(sandbox.pidfd, SIGKILL)
                tree?.signalAll(SIGKILL)
                killAt = .infinity
            }
            var fds = [pollfd(fd: outOpen ? sandbox.stdoutRead : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: errOpen ? sandbox.stderrRead : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: exited ? -1 : sandbox.pidfd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: signalFd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: ending.stoppedBy == nil ? cancelFd : -1, events: Int16(POLLIN), revents: 0)]
            stdinPump?.addPollFds(&fds)
            var timeout: Double = exited ? 1.0 : (killAt ?? (start + deadlineSeconds)) - now
            if timeout.isInfinite { timeout = 1.0 }
            let rc = poll(&fds, nfds_t(fds.count), Int32(max(0, min(timeout, 60)) * 1000) + 1)
            if rc < 0 && errno != EINTR { break }
            if fds[0].revents != 0 { outOpen = drain(sandbox.stdoutRead, into: &ending.stdout, &buffer) }
            if fds[1].revents != 0 { errOpen = drain(sandbox.stderrRead, into: &ending.stderr, &buffer) }
            if fds[2].revents != 0 {
                var status: Int32 = 0
                if wait4(sandbox.pid, &status, WNOHANG, &ending.usage) == sandbox.pid { exited = true }
            }
            if fds[3].revents != 0, let sig = takeSignal(), !exited {
                // First signal: ask the tree to stop; the grace period runs; then SIGKILL.
                if ending.stoppedBy == nil {
                    ending.stoppedBy = sig
                    terminate()
                    killAt = monotonicSeconds() + graceSeconds
                } else {
                    killAt = monotonicSeconds()
                }
            }
            if fds[4].revents != 0, !exited, ending.stoppedBy == nil {
                // A cancellation is a stop by SIGTERM: the same grace period, then SIGKILL.
                ending.stoppedBy = SIGTERM
                terminate()
                killAt = monotonicSeconds() + graceSeconds
            }
            stdinPump?.service(fds)
            // Once PID 1 is gone every process of the step is gone; output already written is
            // still in the pipes and is drained above until EOF.
        }
        stdinPump?.close()
        ending.report = readReport()
        close(sandbox.pidfd)
        close(sandbox.stdoutRead)
        close(sandbox.stderrRead)
        return ending
    }

    /// SIGTERM to PID 1 (which forwards it to the tool's session) and to the whole cgroup, then
    /// SIGCONT so stopped processes can act on it within the grace period.
    private func terminate() {
        _ = lane_pidfd_send_signal(sandbox.pidfd, SIGTERM)
        tree?.signalAll(SIGTERM)
        tree?.signalAll(SIGCONT)
    }

    /// Reads what is there; returns false at EOF.
    private func drain(_ fd: Int32, into sink: inout OutputSink, _ buffer: inout [UInt8]) -> Bool {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { return errno == EINTR || errno == EAGAIN }
        if n == 0 { return false }
        buffer.withUnsafeBytes { sink.accept(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        return true
    }

    private func takeSignal() -> Int32? {
        var info = [UInt8](repeating: 0, count: 128)  // struct signalfd_siginfo
        let n = info.withUnsafeMutableBytes { read(signalFd, $0.baseAddress, 128) }
        guard n == 128 else { return nil }
        return Int32(info[0]) | Int32(info[1]) << 8
    }

    private func readReport() -> InitReport? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(sandbox.statusRead, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        close(sandbox.statusRead)
        return InitReport.decode(bytes)
    }
}

/// Copies `lanes`' stdin into the step's stdin pipe without ever blocking the loop.
struct StdinPump {
    let target: Int32
    private var pending: [UInt8] = []
    private var sourceOpen = true
    private var targetOpen = true
    private var pollIndex = -1

    init(target: Int32) {
        self.target = target
        _ = fcntl(target, F_SETFL, O_NONBLOCK)
    }

    /// Writes `bytes` and then closes; this process's stdin is never read.
    init(target: Int32, bytes: [UInt8]) {
        self.init(target: target)
        pending = bytes
        sourceOpen = false
    }

    mutating func addPollFds(_ fds: inout [pollfd]) {
        guard targetOpen else { return }
        pollIndex = fds.count
        fds.append(pollfd(fd: pending.isEmpty && sourceOpen ? 0 : -1, events: Int16(POLLIN), revents: 0))
        fds.append(pollfd(fd: pending.isEmpty ? -1 : target, events: Int16(POLLOUT), revents: 0))
    }

    mutating func service(_ fds: [pollfd]) {
        guard targetOpen, pollIndex >= 0 else { return }
        if fds[pollIndex].revents != 0 {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n > 0 { pending = Array(chunk[0..<n]) } else if n == 0 || errno != EINTR { sourceOpen = false }
        }
        if fds[pollIndex + 1].revents & Int16(POLLERR | POLLHUP) != 0 { close(); return }
        if !pending.isEmpty {
            let n = pending.withUnsafeBytes { write(target, $0.baseAddress, $0.count) }
            if n > 0 { pending.removeFirst(n) } else if n < 0 && errno != EAGAIN && errno != EINTR { close(); return }
        }
        if pending.isEmpty && !sourceOpen { close() }
    }

    mutating func close() {
        if targetOpen { _ = Glibc.close(target) }
        targetOpen = false
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
