import CLaneSys
import Glibc
import LanePlan
import LaneSyscall

/// PID 1 of the sandbox: starts the tool, forwards signals to it and reaps every process until
/// the tool is gone; `killRemaining` then ends whatever it left behind, so nothing outlives the step.
struct InitLoop {
    let plan: SpawnPlan
    /// A prestarted sandbox's command socket (fd 5), handed to the tool process, which waits
    /// there for its command; -1 when the command is in the plan.
    var commandFd: Int32 = -1

    func run() -> InitReport {
        // Block everything before fork: the loop takes signals with sigwaitinfo, and a blocked
        // signal is never ignored by PID 1, so `lanes` can deliver SIGTERM to it.
        guard lane_sigmask_all(0) == 0 else { return SetupFailure(LANE_STAGE_SIGNAL_MASK, "init").report }
        var errPipe: PipeEnds
        do { errPipe = try PipeEnds() } catch {
            return SetupFailure(LANE_STAGE_PIPE, "tool error pipe", error.rawValue).report
        }
        // The tool hands its seccomp listener back over this pair before it execs.
        var notify: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &notify) == 0 else {
            return SetupFailure(LANE_STAGE_SECCOMP_LISTENER, "socketpair").report
        }
        let signals = lane_signalfd_all()
        guard signals >= 0 else { return SetupFailure(LANE_STAGE_SIGNALS, "signalfd").report }
        // An early sandbox's PID 1 started away from `lanes`' CPU (lane_spawn_args
        // .avoid_caller_cpu); the tool, forked now, runs on the CPUs `lanes` itself may use.
        if !plan.toolAffinity.isEmpty {
            let set = plan.toolAffinity.withUnsafeBytes { lane_affinity_set($0.baseAddress, Int32($0.count)) }
            guard set == 0 else { return SetupFailure(LANE_STAGE_TOOL_AFFINITY, "sched_setaffinity", errno).report }
        }
        let tool = fork()
        if tool < 0 { return SetupFailure(LANE_STAGE_FORK_TOOL).report }
        if tool == 0 {
            errPipe.read.close()
            close(notify[0])
            close(signals)
            ToolLauncher(plan: plan, errorFd: errPipe.write.take().rawValue, notifyFd: notify[1], commandFd: commandFd).launch()
        }
        if commandFd >= 0 { close(commandFd) }  // the tool process's alone
        errPipe.write.close()
        close(notify[1])
        let failure = readFailure(errPipe.read.descriptor)
        errPipe.read.close()
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
        // What the tool left is killed by the caller (`killRemaining`, PID 1's last act). The
        // listener stays open until PID 1 exits: a process left behind that makes a refused call
        // meanwhile waits for an answer instead of getting ENOSYS and running on.
        if let failure { return failure }
        if lane_wifsignaled(status) != 0 {
            return InitReport(kind: .signaled, value: lane_wtermsig(status), denials: recorder.denials)
        }
        return InitReport(kind: .exited, value: lane_wexitstatus(status), denials: recorder.denials)
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
    /// and reaps them. SIGKILL also ends stopped tasks. When it returns PID 1 has no child left,
    /// and every process of a pid namespace other than its PID 1 descends from it (orphans are
    /// reparented to it), so PID 1 is alone.
    static func killRemaining() {
        _ = kill(-1, SIGKILL)
        var status: Int32 = 0
        while retryOnInterrupt({ waitpid(-1, &status, 0) }) >= 0 {}
    }
}
