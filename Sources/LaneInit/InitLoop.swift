import CLaneSys
import Glibc
import LanePlan
import LaneSyscall

/// PID 1 of the sandbox: starts the tool, forwards signals to it, reaps every process, and when
/// the tool is gone kills whatever it left behind, so nothing outlives the step.
struct InitLoop {
    let plan: SpawnPlan

    func run() -> InitReport {
        // Block everything before fork: the loop takes signals with sigwaitinfo, and a blocked
        // signal is never ignored by PID 1, so `lanes` can deliver SIGTERM to it.
        guard lane_sigmask_all(0) == 0 else { return SetupFailure(LANE_STAGE_SIGNAL_MASK, "init").report }
        var errPipe: PipeEnds
        do { errPipe = try PipeEnds() } catch {
            return SetupFailure(LANE_STAGE_PIPE, "tool error pipe", error.rawValue).report
        }
        let tool = fork()
        if tool < 0 { return SetupFailure(LANE_STAGE_FORK_TOOL).report }
        if tool == 0 {
            errPipe.read.close()
            ToolLauncher(plan: plan, errorFd: errPipe.write.take().rawValue).launch()
        }
        errPipe.write.close()
        let failure = readFailure(errPipe.read.descriptor)
        errPipe.read.close()
        let status = waitForTool(tool)
        killRemaining()
        if let failure { return failure }
        if lane_wifsignaled(status) != 0 { return InitReport(kind: .signaled, value: lane_wtermsig(status)) }
        return InitReport(kind: .exited, value: lane_wexitstatus(status))
    }

    /// The tool's launcher writes {stage, errno} before it gives up; EOF means execve worked.
    private func readFailure(_ fd: FileDescriptor) -> InitReport? {
        var record: (Int32, Int32) = (0, 0)
        let n = withUnsafeMutableBytes(of: &record) { (try? fd.readFully(into: $0)) ?? 0 }
        guard n == 8 else { return nil }
        let (code, err) = record
        let stage = SetupStage(code: code)
        if stage == SetupStage(LANE_STAGE_EXEC) {
            return InitReport(kind: .execFailed, value: (err == ENOENT || err == ENOTDIR) ? 127 : 126, errno: err, stage: stage)
        }
        return InitReport(kind: .setupFailed, errno: err, stage: stage ?? SetupStage(LANE_STAGE_FORK_TOOL),
                          detail: stage == nil ? "unknown stage \(code)" : "")
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
        while retryOnInterrupt({ waitpid(-1, &status, 0) }) >= 0 {}
    }
}
