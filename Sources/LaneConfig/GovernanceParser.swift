import LaneModel

/// The governance parts of a lane file: `[review]`, `[budget]` and `halt_on`, strictly.
enum GovernanceParser {
    /// Outcomes `halt_on` may name (the outcomes of a step that can make a run unsafe).
    static let haltable = ["seccomp_violation", "oom_killed", "pids_limited", "cpu_time_exceeded", "timed_out", "signaled", "failed_to_start",
                           "setid_bit", "protected_path", EgressGovernance.deniedOutcome]

    /// A `halt_on` entry: an outcome, a denial kind, `egress_denied`, or `denied:NAME` (a syscall or a path).
    static func isHaltable(_ name: String) -> Bool {
        haltable.contains(name) || (name.hasPrefix("denied:") && name.count > 7)
    }

    static func parse(_ root: TableReader, into lane: inout Lane) {
        if let t = root.table("review") {
            var r = Lane.Review()
            r.commands = t.strings("commands") ?? []
            r.effects = t.strings("effects") ?? []
            r.credentials = t.strings("credentials") ?? []
            for p in r.commands where p.split(separator: " ").isEmpty {
                t.error("commands", "an empty pattern would match nothing; write the command's words, e.g. \"git push *\"")
            }
            // The same closed list `lanes run --effect` takes: a gate on an effect nobody can
            // declare would never fire.
            for e in r.effects { if let problem = InputSyntax.checkEffect(e) { t.error("effects", problem) } }
            t.markKnown("in_doubt")
            if let v = t.table["in_doubt"] {
                if let b = v.bool { r.inDoubt = b } else { t.error("in_doubt", "expected true or false, found \(describe(v))") }
            }
            if let s = t.quantity("timeout", units: Units.seconds, what: "a duration") {
                if s > 0 { r.timeoutSeconds = s } else { t.error("timeout", "expected a duration > 0") }
            }
            lane.review = r
            root.finish(t)
        }
        if let t = root.table("budget") {
            var limits: [String: Double] = [:]
            let units: [String: ([String: Double], String)] = [
                "max_steps": (Units.count, "a number of steps"), "max_wall": (Units.seconds, "a duration"),
                "max_cpu": (Units.seconds, "a duration"), "max_output": (Units.bytes, "a size"),
                "max_failed_steps": (Units.count, "a number of steps"), "max_run_age": (Units.seconds, "a duration"),
                "loop_failures": (Units.count, "a number of failures"), "loop_repeats": (Units.count, "a number of repeats"),
                EgressGovernance.budgetKey: (Units.bytes, "a size"),
            ]
            for key in Lane.Budget.keys {
                guard let (u, what) = units[key], let v = t.quantity(key, units: u, what: what) else { continue }
                if key.hasPrefix("loop_") && v < 1 { t.error(key, "expected at least 1"); continue }
                limits[key] = v
            }
            lane.budget = Lane.Budget(limits: limits)
            root.finish(t)
        }
        if let halt = root.strings("halt_on") {
            for o in halt where !isHaltable(o) {
                root.error("halt_on", "\"\(o)\" is not an outcome or denial that can halt a run; expected some of: \(haltable.joined(separator: ", ")) or denied:NAME")
            }
            lane.haltOn = halt.filter(isHaltable)
        }
    }
}
