import Glibc
import LaneModel
import LaneRuntime

/// `lanes run` parsed by hand on the hot path (once per tool call): argument-parser's parse of
/// `RunCommand` alone was measured with perf at about a third of the one-shot's protocol
/// conformance lookups (≈ 8% of its CPU). Only the plain, valid forms are taken here: anything
/// else (an unknown or repeated option, a missing value, a bad number, no command, help) returns
/// nil and goes through argument-parser, which gives the usual messages and exit status 64.
enum FastRun {
    static func parse(_ arguments: [String]) -> RunInvocation? {
        var config: String?, workspace: String?, timeout: Double?, state: String?, runID: String?, step: String?, effect: String?
        var json = false, idempotent = false, allowHostWorkspace = false
        var lane: String?
        var seen = Set<String>()
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            if arg == "--" {
                let command = Array(arguments[(i + 1)...])
                // Anything argument-parser would refuse (with its message and 64) goes there.
                guard let lane, let first = command.first, !first.isEmpty else { return nil }
                return RunInvocation(config: config, lane: lane, workspace: workspace, timeout: timeout, json: json,
                                     state: StateResolution.resolve(explicit: state),
                                     runID: runID, step: step, idempotent: idempotent, effect: effect,
                                     allowHostWorkspace: allowHostWorkspace, command: command)
            }
            if !arg.hasPrefix("-") {
                guard lane == nil, !arg.isEmpty else { return nil }
                lane = arg
                i += 1
                continue
            }
            var name = arg, value: String?
            if let eq = arg.firstIndex(of: "=") {
                name = String(arg[..<eq])
                value = String(arg[arg.index(after: eq)...])
            }
            guard !seen.contains(name) else { return nil }
            seen.insert(name)
            switch name {
            case "--json", "--idempotent", "--allow-host-workspace":
                guard value == nil else { return nil }
                switch name {
                case "--json": json = true
                case "--idempotent": idempotent = true
                default: allowHostWorkspace = true
                }
                i += 1
                continue
            case "--config", "--workspace", "--timeout", "--state", "--run", "--step", "--effect":
                if value == nil {
                    guard i + 1 < arguments.count, !arguments[i + 1].hasPrefix("-") else { return nil }
                    value = arguments[i + 1]
                    i += 1
                }
                i += 1
            default:
                return nil
            }
            guard let v = value else { return nil }
            switch name {
            case "--config": config = v
            case "--workspace": workspace = v
            case "--timeout":
                guard case let .success(t) = InputSyntax.parseDuration(v), t > 0, t.isFinite else { return nil }
                timeout = t
            case "--state": state = v
            case "--run":
                guard InputSyntax.checkID(v, what: "run id") == nil else { return nil }
                runID = v
            case "--step":
                guard InputSyntax.checkID(v, what: "step id") == nil else { return nil }
                step = v
            default:
                guard InputSyntax.checkEffect(v) == nil else { return nil }
                effect = v
            }
        }
        return nil
    }
}
