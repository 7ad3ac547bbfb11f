import CCap
import CLaneSys
import Glibc
import LanePlan

/// The forked child that becomes the tool. Order matters and every step fails closed:
/// new session → own user namespace with the unprivileged sandbox uid → working directory →
/// drop every capability (bounding, ambient, inheritable, permitted, effective) → close the
/// stray fds → C `lane_seal_and_exec`: no_new_privs → seccomp → execve.
struct ToolLauncher {
    enum Stage: Int32 {
        case session = 10, userns, idmap, workdir, capabilities, signals, lookup
        case noNewPrivs = 1, seccomp = 2, exec = 3, listener = 4
        var name: String {
            switch self {
            case .session: "setsid"
            case .userns: "tool user namespace"
            case .idmap: "tool id map"
            case .workdir: "chdir workspace"
            case .capabilities: "drop capabilities"
            case .signals: "signal mask"
            case .lookup: "command lookup"
            case .noNewPrivs: "no_new_privs"
            case .seccomp: "seccomp"
            case .exec: "exec"
            case .listener: "seccomp listener"
            }
        }
    }

    let plan: SpawnPlan
    let errorFd: Int32
    /// The unix socket the seccomp listener goes to PID 1 over.
    let notifyFd: Int32

    func launch() -> Never {
        guard setsid() >= 0 else { fail(.session) }
        enterUserNamespace()
        guard chdir(plan.workdir) == 0 else { fail(.workdir) }
        dropCapabilities()
        lane_reset_signals()
        guard lane_sigmask_all(1) == 0 else { fail(.signals) }
        let path = resolveCommand()
        // Every fd but stdio and the error pipe is CLOEXEC already; make sure of it.
        _ = lane_close_range(3, UInt32(errorFd) - 1, UInt32(LANE_CLOSE_RANGE_CLOEXEC))
        _ = lane_close_range(UInt32(errorFd) + 1, ~0, UInt32(LANE_CLOSE_RANGE_CLOEXEC))
        let argv = CStringArray(plan.argv)
        let envp = CStringArray(plan.environment)
        plan.seccompFilter.withUnsafeBytes { filter in
            _ = lane_seal_and_exec(filter.baseAddress, filter.count, path, argv.pointers, envp.pointers, errorFd, notifyFd)
        }
        exit(126)  // lane_seal_and_exec reported the stage already
    }

    /// A user namespace of its own, where it is `sandboxUid` (mapped to PID 1's uid, which is
    /// the only id this process may map). Its capabilities there are dropped next; the mount
    /// namespace belongs to the parent user namespace, so it could not mount even with them.
    private func enterUserNamespace() {
        guard lane_unshare(LANE_CLONE_NEWUSER) == 0 else { fail(.userns) }
        guard writeFile("/proc/self/setgroups", "deny"),
              writeFile("/proc/self/uid_map", "\(plan.sandboxUid) 0 1"),
              writeFile("/proc/self/gid_map", "\(plan.sandboxGid) 0 1") else { fail(.idmap) }
    }

    private func dropCapabilities() {
        let last = cap_max_bits()
        for cap in 0..<last {
            if cap_drop_bound(cap_value_t(cap)) != 0 && errno != EINVAL { fail(.capabilities) }
        }
        guard cap_reset_ambient() == 0 else { fail(.capabilities) }
        guard let empty = cap_init() else { fail(.capabilities) }
        defer { cap_free(UnsafeMutableRawPointer(empty)) }
        guard cap_set_proc(empty) == 0 else { fail(.capabilities) }
    }

    /// The command as given if it has a slash; otherwise the first PATH entry (of the step's
    /// environment, not this process's) where it exists. execve then tells 126 from 127.
    private func resolveCommand() -> String {
        guard let command = plan.argv.first, !command.isEmpty else { errno = ENOENT; fail(.exec) }
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
        fail(.exec)
    }

    private func writeFile(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return text.withCString { write(fd, $0, strlen($0)) } == text.utf8.count
    }

    private func fail(_ stage: Stage) -> Never {
        var record: (Int32, Int32) = (stage.rawValue, errno)
        _ = withUnsafeBytes(of: &record) { write(errorFd, $0.baseAddress, 8) }
        exit(125)
    }
}

