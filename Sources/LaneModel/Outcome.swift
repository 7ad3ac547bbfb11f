/// How a step ended, as the agent can act on it.
public enum Outcome: String, Sendable, Equatable, CaseIterable {
    case exited
    case signaled
    case timedOut = "timed_out"
    case seccompViolation = "seccomp_violation"
    case failedToStart = "failed_to_start"
    /// `lanes` itself got SIGINT/SIGTERM and stopped the step.
    case stopped
}

/// The exit statuses of `lanes run`, documented in `lanes run --help` and the README.
public enum ExitStatus {
    /// The wall-clock deadline fired; the whole tree is dead.
    public static let timedOut: Int32 = 124
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
