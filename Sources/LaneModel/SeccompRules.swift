/// The rules a profile's `[seccomp]` section must follow, as data: the parser (`lanes check`
/// and `lanes run` alike) and the seccomp compiler both read them, so every seccomp error `run`
/// can raise, `check` raises first, with FILE:LINE.
public enum SeccompRules {
    /// Never allowed, whatever a profile's `allow` says: they reach the kernel's namespace,
    /// mount, tracing, keyring, BPF, module and clock machinery (ARCHITECTURE.md §3).
    public static let never: Set<String> = [
        "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "ptrace",
        "process_vm_readv", "process_vm_writev", "keyctl", "add_key", "request_key", "bpf",
        "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
        "open_by_handle_at", "name_to_handle_at", "kexec_load", "kexec_file_load", "init_module",
        "finit_module", "delete_module", "reboot", "swapon", "swapoff", "fsopen", "fsconfig",
        "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "acct", "quotactl",
        "syslog", "vhangup", "iopl", "ioperm", "settimeofday", "clock_settime", "adjtimex",
        "clock_adjtime", "sethostname", "setdomainname", "pidfd_getfd", "kcmp", "clone3",
    ]

    /// Syscalls the compiler allows only with argument conditions (clone without namespace
    /// flags, socket of a few families, socketpair of AF_UNIX, harmless personalities). Listing
    /// one in `allow` would lift the condition; it is refused instead.
    public static let conditional: Set<String> = ["clone", "socket", "socketpair", "personality"]

    /// One problem of a seccomp section: the key (`allow` or `deny`) and what is wrong.
    public struct Problem: Sendable, Equatable {
        public let key: String
        public let message: String
    }

    /// Every problem of `allow` and `deny`; `known` says whether a syscall name exists on this
    /// architecture (libseccomp, injected: this module is pure values).
    public static func problems(allow: [String], deny: [String], known: (String) -> Bool) -> [Problem] {
        var found: [Problem] = []
        for (key, names) in [("allow", allow), ("deny", deny)] {
            for name in names where !known(name) {
                found.append(Problem(key: key, message: "unknown syscall \"\(name)\""))
            }
        }
        for name in allow where known(name) {
            if never.contains(name) {
                found.append(Problem(key: "allow", message: "syscall \"\(name)\" cannot be allowed: it is on the never list (see docs/configuration.md)"))
            } else if conditional.contains(name) {
                found.append(Problem(key: "allow", message: "syscall \"\(name)\" is allowed only with conditions and cannot be allowed outright"))
            }
        }
        return found
    }
}
