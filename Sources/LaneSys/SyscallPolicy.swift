import LaneModel

/// The base seccomp allow-list of every profile (x86_64 names) and the syscalls that are never
/// allowed whatever a profile says. Conditional rules (clone, socket, ioctl, personality) live in
/// `SeccompCompiler`; clone3 always fails with ENOSYS so libc falls back to clone, whose
/// namespace flags are refused.
public enum SyscallPolicy {
    /// Allowed without conditions.
    public static let baseAllow: [String] = [
        // files and descriptors
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
        "pwritev2", "close", "close_range", "lseek", "stat",
        "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat",
        "faccessat2", "readlink", "readlinkat", "getdents", "getdents64",
        "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat",
        "symlink", "symlinkat", "chown", "fchown",
        "lchown", "fchownat", "truncate", "ftruncate", "fallocate", "fsync", "fdatasync", "sync",
        "syncfs", "sync_file_range", "utime", "utimes", "utimensat", "futimesat", "umask", "chdir",
        "fchdir", "getcwd", "dup", "dup2", "dup3", "fcntl", "flock", "pipe", "pipe2", "select",
        "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
        "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4",
        "timerfd_create", "timerfd_settime", "timerfd_gettime", "inotify_init", "inotify_init1",
        "inotify_add_watch", "inotify_rm_watch", "sendfile", "copy_file_range", "splice", "tee",
        "readahead", "fadvise64", "memfd_create", "getxattr", "lgetxattr",
        "fgetxattr", "listxattr", "llistxattr", "flistxattr", "setxattr", "lsetxattr", "fsetxattr",
        "removexattr", "lremovexattr", "fremovexattr", "cachestat",
        // memory
        "mmap", "munmap", "mprotect", "mremap", "brk", "msync", "madvise", "mincore", "mlock",
        "mlock2", "munlock", "mlockall", "munlockall", "pkey_alloc", "pkey_free", "pkey_mprotect",
        "membarrier", "get_mempolicy", "set_mempolicy", "mbind", "rseq", "map_shadow_stack",
        // processes, threads, signals, time
        "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "kill",
        "tgkill", "tkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
        "rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack",
        "pause", "nanosleep", "clock_nanosleep", "alarm", "getitimer", "setitimer", "getpid",
        "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
        "getgroups", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
        "setgroups", "setfsuid", "setfsgid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
        "prctl", "arch_prctl", "set_tid_address", "set_robust_list", "get_robust_list", "futex",
        "futex_waitv", "futex_wake", "futex_wait", "futex_requeue", "sched_yield",
        "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
        "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
        "sched_get_priority_min", "sched_rr_get_interval", "sched_getattr", "sched_setattr",
        "getpriority", "setpriority", "getrlimit", "setrlimit", "prlimit64", "getrusage", "times",
        "sysinfo", "uname", "capget", "capset", "pidfd_open", "pidfd_send_signal", "ioprio_get",
        "restart_syscall", "clock_gettime", "clock_getres", "gettimeofday", "time", "getrandom",
        "getcpu", "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
        // IPC inside the step's own ipc namespace
        "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
        "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget",
        "msgsnd", "msgrcv", "msgctl",
        // sockets (the families are limited by the socket rule)
        "connect", "accept", "accept4", "bind", "listen", "getsockname", "getpeername", "sendto",
        "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "setsockopt",
        "getsockopt",
    ]

    /// Never allowed, whatever a profile's `allow` says (the list is data of `LaneModel`, so
    /// `lanes check` refuses such a profile with FILE:LINE, exactly as `lanes run` would).
    public static var never: Set<String> { SeccompRules.never }

    /// Calls that set a file mode, with the index of their mode argument. Allowed only when the
    /// mode has neither S_ISUID nor S_ISGID (`SeccompCompiler`); otherwise they fail with EPERM
    /// and are recorded as a `setid_bit` denial. openat2 carries its mode behind a pointer that a
    /// filter cannot read: it fails with ENOSYS, so libc and runtimes fall back to openat.
    public static let modeArguments: [(name: String, index: UInt32)] = [
        ("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2), ("open", 2), ("openat", 3),
        ("creat", 1), ("mkdir", 1), ("mkdirat", 2), ("mknod", 1), ("mknodat", 2),
    ]
    /// S_ISUID | S_ISGID.
    public static let setidBits: UInt64 = 0o6000

    /// Namespace flags refused in clone's first argument.
    public static let cloneNamespaceMask: UInt64 = 0x7E02_0000
    /// Socket families a step may create.
    public static let socketFamilies: [UInt64] = [1, 2, 10]  // AF_UNIX, AF_INET, AF_INET6
    /// personality() values that only ask or set harmless flags.
    public static let safePersonalities: [UInt64] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff]
    /// TIOCSTI and TIOCLINUX: typing into, or reading, the controlling terminal.
    public static let deniedIoctls: [UInt64] = [0x5412, 0x541C]
}
