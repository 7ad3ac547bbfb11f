import CCap
import CLaneSys
import Glibc
import LanePlan
import LaneSyscall

/// The forked child that becomes the tool. Order matters and every step fails closed:
/// new session → own user namespace with the unprivileged sandbox uid → drop every capability
/// (bounding, ambient, inheritable, permitted, effective) → default signals → [the command] →
/// working directory (entered without any capability) → close the stray fds → C
/// `lane_seal_and_exec`: no_new_privs → seccomp → execve. A failure writes {stage, errno}
/// (stage from `lane_stages.h`) to the error pipe and exits.
///
/// Everything before the command needs nothing of it: in a prestarted sandbox (`commandFd` ≥ 0)
/// it is done before the call arrives; the process then says on the command socket that the
/// sandbox is ready and waits there for the command (docs/mcp.md). Cold or prestarted, the
/// order is the same.
struct ToolLauncher {
    let plan: SpawnPlan
    let errorFd: Int32
    /// The unix socket the seccomp listener goes to PID 1 over.
    let notifyFd: Int32
    /// A prestarted sandbox's command socket; -1 when the command is in the plan.
    var commandFd: Int32 = -1

    func launch() -> Never {
        guard setsid() >= 0 else { fail(LANE_STAGE_SETSID) }
        enterUserNamespace()
        dropCapabilities()
        lane_reset_signals()
        guard lane_sigmask_all(1) == 0 else { fail(LANE_STAGE_SIGNAL_MASK) }
        let plan = commandFd >= 0 ? self.plan.with(awaitCommand()) : self.plan
        guard chdir(plan.workdir) == 0 else { fail(LANE_STAGE_WORKDIR) }
        let path = resolveCommand(plan)
        // Every fd but stdio and the error pipe is CLOEXEC already; make sure of it (the
        // `fds_closed` protection: a failure refuses the step like any other).
        if errorFd > 3 {
            guard lane_close_range(3, UInt32(errorFd) - 1, UInt32(LANE_CLOSE_RANGE_CLOEXEC)) == 0 else { fail(LANE_STAGE_CLOSE_FDS) }
        }
        guard lane_close_range(UInt32(errorFd) + 1, ~0, UInt32(LANE_CLOSE_RANGE_CLOEXEC)) == 0 else { fail(LANE_STAGE_CLOSE_FDS) }
        let argv = CStringArray(plan.argv)
        let envp = CStringArray(plan.environment)
        plan.seccompFilter.withUnsafeBytes { filter in
            _ = lane_seal_and_exec(filter.baseAddress, filter.count, path, argv.pointers, envp.pointers, errorFd, notifyFd)
        }
        exit(126)  // lane_seal_and_exec reported the stage already
    }

    /// The step's command, from the prestarted sandbox's socket (after the ready byte). End of
    /// file (the sandbox is not needed) ends this process quietly: no tool ever ran.
    private func awaitCommand() -> StepCommand {
        do throws(SetupFailure) {
            let command = try receiveCommand(fd: commandFd)
            close(commandFd)
            return command
        } catch {
            errno = error.errno
            fail(code: error.stage.code)
        }
    }

    /// A user namespace of its own, where it is `sandboxUid` (mapped to PID 1's uid, which is
    /// the only id this process may map). Its capabilities there are dropped next; the mount
    /// namespace belongs to the parent user namespace, so it could not mount even with them.
    private func enterUserNamespace() {
        guard lane_unshare(LANE_CLONE_NEWUSER) == 0 else { fail(LANE_STAGE_TOOL_USERNS) }
        guard writeFile("/proc/self/setgroups", "deny"),
              writeFile("/proc/self/uid_map", "\(plan.sandboxUid) 0 1"),
              writeFile("/proc/self/gid_map", "\(plan.sandboxGid) 0 1") else { fail(LANE_STAGE_TOOL_ID_MAP) }
    }

    private func dropCapabilities() {
        let last = cap_max_bits()
        for cap in 0..<last {
            if cap_drop_bound(cap_value_t(cap)) != 0 && errno != EINVAL { fail(LANE_STAGE_CAPABILITIES) }
        }
        guard cap_reset_ambient() == 0 else { fail(LANE_STAGE_CAPABILITIES) }
        guard let empty = cap_init() else { fail(LANE_STAGE_CAPABILITIES) }
        defer { cap_free(UnsafeMutableRawPointer(empty)) }
        guard cap_set_proc(empty) == 0 else { fail(LANE_STAGE_CAPABILITIES) }
    }

    /// The command as given if it has a slash; otherwise the first PATH entry (of the step's
    /// environment, not this process's) where it exists. execve then tells 126 from 127.
    private func resolveCommand(_ plan: SpawnPlan) -> String {
        guard let command = plan.argv.first, !command.isEmpty else { errno = ENOENT; fail(LANE_STAGE_EXEC) }
        if command.contains("/") { return command }
        let pathValue = plan.environment.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? "/usr/bin:/bin"
        var firstDenied: String?
        for dir in pathValue.split(separator: ":") {
            let candidate = dir + "/" + command
            if access(candidate, X_OK) == 0 { return candidate }
            if errno == EACCES && firstDenied == nil { firstDenied = candidate }
        }
        if let firstDenied { return firstDenied }
        errno = ENOENT
        fail(LANE_STAGE_EXEC)
    }

    private func writeFile(_ path: String, _ text: String) -> Bool {
        let err = writeExistingFile(path, text)
        if err != 0 { errno = err }
        return err == 0
    }

    private func fail(_ stage: lane_stage) -> Never { fail(code: Int32(bitPattern: stage.rawValue)) }

    private func fail(code: Int32) -> Never {
        var record: (Int32, Int32) = (code, errno)
        _ = withUnsafeBytes(of: &record) { try? FileDescriptor(rawValue: errorFd).writeAll($0) }
        exit(125)
    }
}

