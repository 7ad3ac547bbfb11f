import Foundation

/// How `RunState` is stored in `runs.state`: a few lines of text, read and written on every
/// step. The counters every step changes are plain numbers; only what is rare (governance
/// decisions, a failure streak's intent) is JSON, and only when present. `JSONDecoder` and
/// `JSONEncoder` are slow to start in a fresh process (see `CanonicalBody`), and most steps
/// never need them.
///
///     lanes-run-state 1
///     seq 12
///     usage STEPS WALL_S CPU_S OUTPUT_BYTES FAILED [EGRESS_BYTES]   (the last only when not 0)
///     lane LANE
///     opened SECONDS_SINCE_1970
///     outcome NAME SEQ STEP          (one line per outcome seen; NAME and STEP escaped)
///     loop FAILURES INTENT_JSON      (only while a failure streak runs)
///     governance JSON                (only once the run has a decision)
extension RunState {
    static let textHeader = "lanes-run-state 1"

    var storageText: String {
        var lines = [Self.textHeader, "seq \(seq.description)",
                     "usage \(usage.steps.description) \(usage.wallSeconds.description) \(usage.cpuSeconds.description) \(usage.outputBytes.description) \(usage.failedSteps.description)"
                        + (usage.egressBytes == 0 ? "" : " \(usage.egressBytes.description)")]
        lines.append("lane \(Self.escape(governance.lane))")
        lines.append("opened \(governance.openedAt.description)")
        for name in outcomes.keys.sorted() {
            guard let first = outcomes[name] else { continue }
            lines.append("outcome \(Self.escape(name)) \(first.seq.description) \(Self.escape(first.step))")
        }
        if loop.failures > 0, let intent = loop.intent, let json = try? String(decoding: JSONEncoder().encode(intent), as: UTF8.self) {
            lines.append("loop \(loop.failures.description) \(json)")
        }
        var decisions = governance
        (decisions.lane, decisions.openedAt) = ("", 0)
        if decisions != RunGovernance(), let json = try? String(decoding: JSONEncoder().encode(governance), as: UTF8.self) {
            lines.append("governance \(json)")
        }
        return lines.joined(separator: "\n")
    }

    /// Parses `storageText`; nil when it is not that (the store then rebuilds the state).
    init?(storageText text: String) {
        // Split on bytes, not Characters: "\r\n" or a space before a combining mark is one
        // Character, which would hide a separator.
        func fields(_ line: ArraySlice<UInt8>, _ count: Int) -> [String] {
            line.split(separator: 0x20, maxSplits: count - 1, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        }
        var lines = Array(text.utf8).split(separator: 0x0A, omittingEmptySubsequences: false)[...]
        guard let first = lines.popFirst(), String(decoding: first, as: UTF8.self) == Self.textHeader else { return nil }
        self.init()
        var sawSeq = false, sawUsage = false
        for line in lines {
            let parts = fields(line, 2)
            guard parts.count == 2 else { return nil }
            let rest = parts[1]
            switch parts[0] {
            case "seq":
                guard let n = Int(rest) else { return nil }
                seq = n
                sawSeq = true
            case "usage":
                let f = fields(line, 8)
                guard f.count == 6 || f.count == 7, let steps = Int(f[1]), let wall = Double(f[2]), let cpu = Double(f[3]),
                      let output = Double(f[4]), let failed = Int(f[5]) else { return nil }
                usage = RunUsage()
                if f.count == 7 {
                    guard let egress = Double(f[6]) else { return nil }
                    usage.egressBytes = egress
                }
                usage.steps = steps
                usage.wallSeconds = wall
                usage.cpuSeconds = cpu
                usage.outputBytes = output
                usage.failedSteps = failed
                sawUsage = true
            case "lane":
                guard let lane = Self.unescape(rest) else { return nil }
                governance.lane = lane
            case "opened":
                guard let at = Double(rest) else { return nil }
                governance.openedAt = at
            case "outcome":
                let f = fields(line, 5)
                guard f.count == 4, let name = Self.unescape(f[1]), let s = Int(f[2]), let step = Self.unescape(f[3]) else { return nil }
                outcomes[name] = FirstSeen(seq: s, step: step)
            case "loop":
                let f = fields(line, 3)
                guard f.count == 3, let n = Int(f[1]),
                      let intent = try? JSONDecoder().decode(StepIntent.self, from: Data(f[2].utf8)) else { return nil }
                loop = LoopStreak(failures: n, intent: intent)
            case "governance":
                guard let g = try? JSONDecoder().decode(RunGovernance.self, from: Data(rest.utf8)) else { return nil }
                governance = g
            default:
                return nil
            }
        }
        guard sawSeq, sawUsage else { return nil }
    }

    /// Spaces, line ends and backslashes escaped, so a value is one token without separators.
    static func escape(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x5C }) || s.isEmpty else { return s }
        var out = "\\e"  // marks an escaped (possibly empty) token
        for ch in s.unicodeScalars {
            switch ch {
            case " ": out += "\\s"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\\": out += "\\\\"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    static func unescape(_ token: String) -> String? {
        guard token.utf8.starts(with: [0x5C, 0x65]) else { return token }  // "\\e", byte-wise
        var out = ""
        var it = token.unicodeScalars.dropFirst(2).makeIterator()
        while let ch = it.next() {
            guard ch == "\\" else { out.unicodeScalars.append(ch); continue }
            switch it.next() {
            case "s": out += " "
            case "n": out += "\n"
            case "r": out += "\r"
            case "\\": out += "\\"
            default: return nil
            }
        }
        return out
    }
}
