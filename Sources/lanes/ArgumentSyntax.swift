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

/// The host side of `HostWorkspace`: the homes of this host's accounts, the caller's HOME and
/// Lanes' own directories.
enum WorkspaceGuard {
    /// nil when `workspace` (resolved) may be used; else the one-line refusal.
    static func refusal(_ workspace: String, state: String, allowHost: Bool) -> String? {
        guard !allowHost else { return nil }
        var configs = ["/etc/lanes"]
        if let xdg = Paths.environment("XDG_CONFIG_HOME"), xdg.hasPrefix("/") { configs.append(xdg + "/lanes") }
        let context = HostWorkspace.Context(homes: homes(), stateDirectory: Paths.resolve(state) ?? state,
                                            configDirectories: configs.map { Paths.resolve($0) ?? $0 })
        guard let why = HostWorkspace.exposure(workspace, context: context) else { return nil }
        return "\(why); refusing to expose the host to the step (see docs/security.md; --allow-host-workspace overrides)"
    }

    /// Every account's home directory (field 6 of /etc/passwd) and HOME, symlinks resolved
    /// where they exist. /etc/passwd is read directly, not through getpwent(3): in the static
    /// release binary NSS would dlopen the host's libnss modules (glibc warns at link time).
    static func homes() -> [String] {
        var out: [String] = []
        if let home = Paths.environment("HOME"), home.hasPrefix("/") { out.append(home) }
        if let passwd = readTextFile("/etc/passwd") {
            for line in passwd.split(separator: "\n") {
                let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                if fields.count >= 6, fields[5].hasPrefix("/") { out.append(String(fields[5])) }
            }
        }
        return out.flatMap { [$0, Paths.resolve($0)].compactMap { $0 } }
    }
}
