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
        let tool = fork()
        if tool < 0 { return InitReport(kind: .setupFailed, errno: errno, stage: "fork tool") }
        if tool == 0 {
            close(errPipe[0])
            ToolLauncher(plan: plan, errorFd: errPipe[1]).launch()
        }
        close(errPipe[1])
        let failure = readFailure(errPipe[0])
        close(errPipe[0])
        let status = waitForTool(tool)
        killRemaining()
        if let failure { return failure }
        if lane_wifsignaled(status) != 0 { return InitReport(kind: .signaled, value: lane_wtermsig(status)) }
        return InitReport(kind: .exited, value: lane_wexitstatus(status))
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

    /// Reaps until the tool itself is reaped; forwards every other signal to the tool's session.
    private func waitForTool(_ tool: pid_t) -> Int32 {
        var all = sigset_t()
        sigfillset(&all)
        while true {
            var info = siginfo_t()
            let sig = sigwaitinfo(&all, &info)
            if sig < 0 { continue }
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
