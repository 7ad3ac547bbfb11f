import CLaneSys
import Glibc
import LanePlan

/// PID 1 of the sandbox: starts the tool, forwards signals to it, reaps every process, and when
/// the tool is gone kills whatever it left behind, so nothing outlives the step.
struct InitLoop {
    let plan: SpawnPlan

    func run() -> InitReport {
        // Block everything before fork: the loop takes signals with sigwaitinfo, and a blocked
        // signal is never ignored by PID 1, so `lanes` can deliver SIGTERM to it.
        _ = lane_sigmask_all(0)
        var errPipe: [Int32] = [-1, -1]
        guard lane_pipe2(&errPipe, O_CLOEXEC) == 0 else {
            return InitReport(kind: .setupFailed, errno: errno, stage: "pipe")
        }
        // The tool hands its seccomp listener back over this pair before it execs.
        var notify: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &notify) == 0 else {
            return InitReport(kind: .setupFailed, errno: errno, stage: "socketpair")
        }
        let signals = lane_signalfd_all()
        guard signals >= 0 else { return InitReport(kind: .setupFailed, errno: errno, stage: "signalfd") }
        let tool = fork()
        if tool < 0 { return InitReport(kind: .setupFailed, errno: errno, stage: "fork tool") }
        if tool == 0 {
            close(errPipe[0])
            close(notify[0])
            close(signals)
            ToolLauncher(plan: plan, errorFd: errPipe[1], notifyFd: notify[1]).launch()
        }
        close(errPipe[1])
        close(notify[1])
        let failure = readFailure(errPipe[0])
        close(errPipe[0])
        // EOF on the error pipe: the tool exec'd, so it sent its listener first (or it had no
        // filter). A tool that failed before sends nothing; the read then sees EOF.
        var listener: Int32 = -1
        if failure == nil {
            var fds: [Int32] = [-1]
            if lane_recv_fds(notify[0], &fds, 1) == 1 { listener = fds[0] }
        }
        close(notify[0])
        var recorder = DenialRecorder()
        let status = waitForTool(tool, signals: signals, listener: listener, recorder: &recorder)
        killRemaining()
        if listener >= 0 { close(listener) }
        if let failure { return failure }
        if lane_wifsignaled(status) != 0 {
            return InitReport(kind: .signaled, value: lane_wtermsig(status), denials: recorder.denials)
        }
        return InitReport(kind: .exited, value: lane_wexitstatus(status), denials: recorder.denials)
    }

    /// The tool's launcher writes {stage, errno} before it gives up; EOF means execve worked.
    private func readFailure(_ fd: Int32) -> InitReport? {
        var record: (Int32, Int32) = (0, 0)
        let n = withUnsafeMutableBytes(of: &record) { buf in
            var got = 0
            while got < buf.count {
                let r = read(fd, buf.baseAddress! + got, buf.count - got)
                if r < 0 && errno == EINTR { continue }
                if r <= 0 { break }
                got += r
            }
            return got
        }
        guard n == 8 else { return nil }
        let (stage, err) = record
        if stage == ToolLauncher.Stage.exec.rawValue {
            return InitReport(kind: .execFailed, value: (err == ENOENT || err == ENOTDIR) ? 127 : 126, errno: err, stage: "exec")
        }
        return InitReport(kind: .setupFailed, errno: err, stage: ToolLauncher.Stage(rawValue: stage)?.name ?? "tool set-up")
    }

    /// Reaps until the tool itself is reaped; forwards every other signal to the tool's session;
    /// answers and records the seccomp refusals of the tool's processes.
    private func waitForTool(_ tool: pid_t, signals: Int32, listener: Int32, recorder: inout DenialRecorder) -> Int32 {
        var listening = listener >= 0
        while true {
            var fds = [pollfd(fd: signals, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: listening ? listener : -1, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 { continue }
            if fds[1].revents & Int16(POLLIN) != 0 {
                if !recorder.answer(listener) { listening = false }
            } else if fds[1].revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
                listening = false  // no filtered process is left
            }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            // struct signalfd_siginfo is 128 bytes; ssi_signo is its first u32.
            var info = [UInt8](repeating: 0, count: 128)
            while info.withUnsafeMutableBytes({ read(signals, $0.baseAddress, 128) }) == 128 {
                let sig = info.withUnsafeBytes { Int32(bitPattern: $0.load(as: UInt32.self)) }
                if sig == SIGCHLD {
                    var status: Int32 = 0
                    while true {
                        let pid = waitpid(-1, &status, WNOHANG)
                        if pid <= 0 { break }
                        if pid == tool { return status }
                    }
                } else {
                    // The tool called setsid, so its pid is its process group.
                    _ = kill(-tool, sig)
                }
            }
        }
    }

    /// Kills every other process of the pid namespace (kill(-1) from PID 1 spares only itself)
    /// and reaps them. SIGKILL also ends stopped tasks.
    private func killRemaining() {
        _ = kill(-1, SIGKILL)
        var status: Int32 = 0
        while true {
            let pid = waitpid(-1, &status, 0)
            if pid < 0 && errno == EINTR { continue }
            if pid < 0 { break }
        }
    }
}
