/// What a lane puts in front of a step before it runs (`[review]`), what a run may spend
/// (`[budget]`), and which step outcomes stop the whole run (`halt_on`). Evaluated by the
/// journal (`LaneJournal/Governance.swift`) so every decision is a record.
extension Lane {
    /// `[review]`: steps that wait for a person's decision before they run.
    public struct Review: Sendable, Equatable {
        /// Argv patterns (`git push *`): words matched in order against the argv's first words;
        /// `*` and `?` are globs within a word; a trailing lone `*` matches any remaining
        /// arguments, including none. `sh -c "…"`/`bash -c "…"` scripts are matched word by word too.
        public var commands: [String]
        /// Declared effects (`lanes run --effect irreversible`) that need approval.
        public var effects: [String]
        /// Credential names (globs) whose presence in a step needs approval.
        public var credentials: [String]
        /// A step left in doubt by a dead supervisor waits for approval (instead of exit 76).
        public var inDoubt: Bool
        /// How long a request waits for a decision before it expires (seconds).
        public var timeoutSeconds: Double

        public init(commands: [String] = [], effects: [String] = [], credentials: [String] = [],
                    inDoubt: Bool = false, timeoutSeconds: Double = 86_400) {
            self.commands = commands
            self.effects = effects
            self.credentials = credentials
            self.inDoubt = inDoubt
            self.timeoutSeconds = timeoutSeconds
        }

        /// The rule that gates this step, or nil. `effect` is what `--effect` declared.
        public func gate(argv: [String], credentials granted: [String], effect: String?) -> String? {
            if let effect, effects.contains(effect) { return "effect \(effect)" }
            for pattern in commands {
                let words = pattern.split(separator: " ").map(String.init)
                if Self.matches(words, argv) { return "command \"\(pattern)\"" }
                if let script = Self.shellScript(argv) {
                    // Each simple command of the script (split at ; & | and newlines), word by word.
                    let commands = script.split(whereSeparator: { ";&|\n".contains($0) })
                        .map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init) }
                    for c in commands where Self.matches(words, c) { return "command \"\(pattern)\" (in a shell script)" }
                }
            }
            for pattern in self.credentials {
                if let c = granted.first(where: { Self.glob(pattern, $0) }) { return "credential \(c)" }
            }
            return nil
        }

        static func shellScript(_ argv: [String]) -> String? {
            guard argv.count >= 3, ["sh", "bash", "dash", "zsh"].contains(basename(argv[0])), argv[1] == "-c" || argv[1] == "-lc" else { return nil }
            return argv[2]
        }

        /// Pattern words against argv words (see `commands`).
        public static func matches(_ pattern: [String], _ argv: [String]) -> Bool {
            guard !pattern.isEmpty else { return false }
            for (i, p) in pattern.enumerated() {
                if p == "*" && i == pattern.count - 1 { return true }
                guard i < argv.count else { return false }
                let word = i == 0 && !p.contains("/") ? basename(argv[0]) : argv[i]
                if !glob(p, word) { return false }
            }
            return true
        }

        static func basename(_ path: String) -> String {
            path.split(separator: "/").last.map(String.init) ?? path
        }

        /// `*` (any run of characters) and `?` (one character).
        public static func glob(_ pattern: String, _ text: String) -> Bool {
            let p = Array(pattern.unicodeScalars), t = Array(text.unicodeScalars)
            var pi = 0, ti = 0, star = -1, mark = 0
            while ti < t.count {
                if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) { pi += 1; ti += 1 }
                else if pi < p.count && p[pi] == "*" { star = pi; mark = ti; pi += 1 }
                else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
                else { return false }
            }
            while pi < p.count && p[pi] == "*" { pi += 1 }
            return pi == p.count
        }
    }

    /// `[budget]`: what one run of the lane may spend. Counted from the journal.
    public struct Budget: Sendable, Equatable {
        /// The keys of `[budget]` and of `lanes resume --raise KEY=VALUE`.
        public static let keys = ["max_steps", "max_wall", "max_cpu", "max_output", "max_failed_steps", "max_run_age",
                                  "loop_failures", "loop_repeats", "max_egress_bytes"]
        /// Limits by key; absent → unlimited. `loop_failures` defaults to 3.
        public var limits: [String: Double]

        public init(limits: [String: Double] = [:]) {
            self.limits = limits
        }

        /// The same intent failing this many times in a row halts the run (default 3).
        public var loopFailures: Double { limits["loop_failures"] ?? 3 }
    }
}
