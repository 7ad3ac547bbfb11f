import ArgumentParser
import Glibc
import LaneConfig
import LaneModel

/// Option parsers for values the CLI takes, over the pure `InputSyntax` rules: a bad value is a
/// usage error (exit 64) before anything is journaled.
enum ArgumentSyntax {
    /// `--run ID`, and every other place a run id is typed.
    static func runID(_ text: String) throws -> String {
        if let problem = InputSyntax.checkID(text, what: "run id") { throw ValidationError(problem) }
        return text
    }

    /// `--step ID`.
    static func stepID(_ text: String) throws -> String {
        if let problem = InputSyntax.checkID(text, what: "step id") { throw ValidationError(problem) }
        return text
    }

    /// `--effect EFFECT`: one of the documented effects.
    static func effect(_ text: String) throws -> String {
        if let problem = InputSyntax.checkEffect(text) { throw ValidationError(problem) }
        return text
    }

    /// `--timeout DURATION`: the profiles' duration syntax (`90`, `500ms`, `5m`, `1h`).
    static func duration(_ text: String) throws -> Double {
        switch InputSyntax.parseDuration(text) {
        case let .success(seconds): return seconds
        case let .failure(error): throw ValidationError(error.message)
        }
    }

    /// The command after `--`: present, and its name not empty.
    static func checkCommand(_ command: [String]) throws {
        if command.isEmpty { throw ValidationError("missing the command: lanes run LANE -- CMD [ARG…]") }
        if command[0].isEmpty { throw ValidationError("the command is an empty string: lanes run LANE -- CMD [ARG…]") }
    }
}
