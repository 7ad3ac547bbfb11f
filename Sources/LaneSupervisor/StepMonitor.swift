import CLaneSys
import Glibc
import LaneModel
import LanePlan
import LaneSys
import LaneSyscall

/// Watches a started sandbox from one thread with poll(2): relays or captures output as it is
/// written, forwards `lanes`' stdin, turns SIGINT/SIGTERM into a clean stop, enforces the
/// wall-clock deadline (SIGTERM to the tree, a grace period, then SIGKILL to PID 1, which ends
/// the whole pid namespace), and collects the helper's report and rusage.
struct StepMonitor: ~Copyable {
    struct Ending {
        var report: InitReport?
        var timedOut = false
        var stoppedBy: Int32?
        var usage = rusage()
        /// Whether PID 1 was reaped. False when the step ended on PID 1's final report
        /// (`InitReport.ending`: every other process of the sandbox gone, the output at EOF), PID 1
        /// still exiting; whoever ends the step then reaps it (`sandboxPid`) before removing the cgroup.
        var reaped = false
        var stdout: OutputSink
        var stderr: OutputSink
    }

    var sandbox: SpawnedSandbox
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

    /// PID 1's host pid.
    var sandboxPid: pid_t { sandbox.pid }

    /// Runs until both output pipes are at EOF and PID 1 is reaped or has sent its final report
    /// (`Ending.reaped`). The sandbox's descriptors close when this monitor goes away.
    mutating func watch(stdout: OutputSink, stderr: OutputSink, stdin: Stdin) -> Ending {
        var ending = Ending(stdout: stdout, stderr: stderr)
        let start = MonotonicClock.seconds()
        var killAt: Double?  // when SIGKILL follows the SIGTERM
        var outOpen = true, errOpen = true, exited = false, reported = false
        // Not forwarded: the pump starts closed (its descriptor closes now), so the step reads EOF at once.
        var stdinPump: StdinPump
        switch stdin {
        case .forward: stdinPump = StdinPump(target: sandbox.stdinWrite.take())
        case let .bytes(b) where !b.isEmpty: stdinPump = StdinPump(target: sandbox.stdinWrite.take(), bytes: b)
        case .bytes, .closed: stdinPump = StdinPump(target: nil)
        }
        sandbox.stdinWrite = nil
        var buffer = [UInt8](repeating: 0, count: 65536)

        while outOpen || errOpen || !(exited || ending.report?.ending != nil) {
            let now = MonotonicClock.seconds()
            if !exited && killAt == nil && now - start >= deadlineSeconds {
                ending.timedOut = true
                killAt = now + graceSeconds
                terminate()
            }
            if !exited, let k = killAt, now >= k {
                _ = lane_pidfd_send_signal(sandbox.pidfd.raw, SIGKILL)
                tree?.signalAll(SIGKILL)
                killAt = .infinity
            }
            var fds = [pollfd(fd: outOpen ? sandbox.stdoutRead.raw : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: errOpen ? sandbox.stderrRead.raw : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: exited ? -1 : sandbox.pidfd.raw, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: signalFd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: ending.stoppedBy == nil ? cancelFd : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: reported ? -1 : sandbox.statusRead.raw, events: Int16(POLLIN), revents: 0)]
            stdinPump.addPollFds(&fds)
            var timeout: Double = exited ? 1.0 : (killAt ?? (start + deadlineSeconds)) - now
            if timeout.isInfinite { timeout = 1.0 }
            // EINTR is not retried here: the loop goes round and recomputes the deadline.
            let rc = poll(&fds, nfds_t(fds.count), Int32(max(0, min(timeout, 60)) * 1000) + 1)
            if rc < 0 && errno != EINTR { break }
            if fds[0].revents != 0 { outOpen = drain(sandbox.stdoutRead.raw, into: &ending.stdout, &buffer) }
            if fds[1].revents != 0 { errOpen = drain(sandbox.stderrRead.raw, into: &ending.stderr, &buffer) }
            if fds[2].revents != 0 {
                var status: Int32 = 0
                if wait4(sandbox.pid, &status, WNOHANG, &ending.usage) == sandbox.pid { exited = true }
            }
            if fds[3].revents != 0, let sig = takeSignal(), !exited {
                // First signal: ask the tree to stop; the grace period runs; then SIGKILL.
                if ending.stoppedBy == nil {
                    ending.stoppedBy = sig
                    terminate()
                    killAt = MonotonicClock.seconds() + graceSeconds
                } else {
                    killAt = MonotonicClock.seconds()
                }
            }
            if fds[4].revents != 0, !exited, ending.stoppedBy == nil {
                // A cancellation is a stop by SIGTERM: the same grace period, then SIGKILL.
                ending.stoppedBy = SIGTERM
                terminate()
                killAt = MonotonicClock.seconds() + graceSeconds
            }
            if fds[5].revents != 0 {
                // PID 1 writes its report and closes the pipe at once (lane-init's last act), or
                // the pipe closes as PID 1 dies: read to EOF either way.
                reported = true
                ending.report = readReport()
            }
            stdinPump.service(fds)
            // Once PID 1 is gone every process of the step is gone; output already written is
            // still in the pipes and is drained above until EOF.
        }
        stdinPump.close()
        if !reported { ending.report = readReport() }
        ending.reaped = exited
        if !exited, let used = ending.report?.ending {
            ending.usage.ru_utime = timeval(tv_sec: Int(used.cpuMicros / 1_000_000), tv_usec: Int(used.cpuMicros % 1_000_000))
            ending.usage.ru_stime = timeval()
            ending.usage.ru_maxrss = Int(clamping: used.maxRssKb)
        }
        return ending
    }

    /// SIGTERM to PID 1 (which forwards it to the tool's session) and to the whole cgroup, then
    /// SIGCONT so stopped processes can act on it within the grace period.
    private func terminate() {
        _ = lane_pidfd_send_signal(sandbox.pidfd.raw, SIGTERM)
        tree?.signalAll(SIGTERM)
        tree?.signalAll(SIGCONT)
    }

    /// Reads what is there; returns false at EOF.
    private func drain(_ fd: Int32, into sink: inout OutputSink, _ buffer: inout [UInt8]) -> Bool {
        let n: Int
        do throws(Errno) {
            n = try buffer.withUnsafeMutableBytes { b in Result { () throws(Errno) in try FileDescriptor(rawValue: fd).readSome(into: b) } }.get()
        } catch {
            return error == .wouldBlock
        }
        if n == 0 { return false }
        buffer.withUnsafeBytes { sink.accept(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        return true
    }

    private func takeSignal() -> Int32? {
        var info = [UInt8](repeating: 0, count: 128)  // struct signalfd_siginfo
        let n = info.withUnsafeMutableBytes { try? FileDescriptor(rawValue: signalFd).readSome(into: $0) }
        guard n == 128 else { return nil }
        return Int32(info[0]) | Int32(info[1]) << 8
    }

    private func readReport() -> InitReport? {
        guard let bytes = try? sandbox.statusRead.descriptor.readAll(limit: 1 << 20) else { return nil }
        return InitReport.decode(bytes)
    }
}

/// Copies `lanes`' stdin into the step's stdin pipe without ever blocking the loop.
/// Owns the step's stdin pipe and closes it (EOF for the step) when `lanes`' stdin ends.
struct StdinPump: ~Copyable {
    private var owner: OwnedDescriptor?
    private let target: Int32
    private var pending: [UInt8] = []
    private var sourceOpen = true
    private var targetOpen: Bool
    private var pollIndex = -1

    /// `target` nil: nothing is forwarded.
    init(target: consuming OwnedDescriptor?) {
        var raw: Int32 = -1
        if let fd = target?.raw { raw = fd }
        self.target = raw
        owner = target
        targetOpen = raw >= 0
        if raw >= 0 { _ = fcntl(raw, F_SETFL, O_NONBLOCK) }
    }

    /// Writes `bytes` and then closes; this process's stdin is never read.
    init(target: consuming OwnedDescriptor?, bytes: [UInt8]) {
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
            let n = chunk.withUnsafeMutableBytes { try? FileDescriptor.standardInput.readSome(into: $0) }
            if let n, n > 0 { pending = Array(chunk[0..<n]) } else { sourceOpen = false }
        }
        if fds[pollIndex + 1].revents & Int16(POLLERR | POLLHUP) != 0 { close(); return }
        if !pending.isEmpty {
            do throws(Errno) {
                let n = try pending.withUnsafeBytes { b in Result { () throws(Errno) in try FileDescriptor(rawValue: target).writeSome(b) } }.get()
                pending.removeFirst(n)
            } catch where error == .wouldBlock {
            } catch {
                close(); return
            }
        }
        if pending.isEmpty && !sourceOpen { close() }
    }

    mutating func close() {
        owner = nil
        targetOpen = false
    }
}
