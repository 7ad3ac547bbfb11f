/// How a step ended, as the agent can act on it.
public enum Outcome: String, Sendable, Equatable, CaseIterable {
    case exited
    case signaled
    case timedOut = "timed_out"
    case seccompViolation = "seccomp_violation"
    case failedToStart = "failed_to_start"
    /// `lanes` itself got SIGINT/SIGTERM and stopped the step.
    case stopped
    /// The step's cgroup ran out of memory and the kernel's OOM killer killed a process of it.
    case oomKilled = "oom_killed"
    /// A fork or clone failed at the step's pids limit, and the step failed.
    case pidsLimited = "pids_limited"
    /// A process used up its CPU time (RLIMIT_CPU: SIGXCPU, then SIGKILL).
    case cpuTimeExceeded = "cpu_time_exceeded"
    /// Nothing ran: the journal or governance refused the step (replay conflict, in doubt, in
    /// flight, awaiting approval, denied, halted, stopped, journal error); `reason` says which.
    case refused
}

/// Why a step was refused (`reason` in the JSON result, with `outcome: "refused"`).
public enum RefusalReason: String, Sendable, Equatable, CaseIterable {
    case usage
    case journalError = "journal_error"
    case nondeterministic
    case inDoubt = "in_doubt"
    case inFlight = "in_flight"
    case awaitingApproval = "awaiting_approval"
    case denied
    case halted
    case stopped

    /// The exit status `lanes run` returns for it (README, `lanes run --help`).
    public var exitStatus: Int32 {
        switch self {
        case .usage: return 64
        case .journalError: return 74
        case .nondeterministic: return 75
        case .inDoubt: return 76
        case .inFlight: return 77
        case .awaitingApproval: return 78
        case .denied: return 79
        case .halted: return 80
        case .stopped: return 81
        }
    }
}

/// Which limit ended (or failed) a step: the `limit` field of the JSON result.
public enum LimitName: String, Sendable, Equatable {
    case memory
    case pids
    case cpuTime = "cpu_time"
    case wallClock = "wall_clock"
}

/// The exit statuses of `lanes run`, documented in `lanes run --help` and the README.
public enum ExitStatus {
    /// The wall-clock deadline fired; the whole tree is dead.
    public static let timedOut: Int32 = 124
    /// The step was OOM-killed in its cgroup (128 + SIGKILL, as a shell reports it).
    public static let oomKilled: Int32 = 137
    /// A process of the step exceeded its CPU time (128 + SIGXCPU).
    public static let cpuTimeExceeded: Int32 = 152
    /// `lanes` failed before the step started (the message names the stage and the reason).
    public static let failedToStart: Int32 = 125
    /// The command exists but cannot be executed.
    public static let cannotExecute: Int32 = 126
    /// The command was not found.
    public static let notFound: Int32 = 127
    /// Killed by signal N → 128 + N.
    public static func signaled(_ signal: Int32) -> Int32 { 128 + signal }
    /// Usage or configuration error in the command line or the files (`lanes check` too).
    public static let usage: Int32 = 64
}
