import Crypto
import Foundation
import LaneModel

/// A run's state folded from its records: governance (stops, halts, raises, approval requests),
/// usage for budgets, the outcomes seen (halt_on) and the current failure streak (loops).
///
/// The store keeps it beside the run's head and updates it in the same transaction as every
/// append (`apply`), so a step's checks read one small row instead of every record of the run.
/// It is derived data: `RunState(records)` rebuilds it from the records, and the store does so
/// whenever it re-verifies a run's chain (`lanes verify` compares the two).
public struct RunState: Codable, Sendable, Equatable {
    /// How many records are folded in (the head seq it belongs to).
    public var seq = 0
    public var governance = RunGovernance()
    public var usage = RunUsage()
    /// Each close outcome seen, with the first record that had it (for `halt_on`).
    public var outcomes: [String: FirstSeen] = [:]
    /// Failed closes in a row with one intent, since the last resume (loop detection).
    public var loop = LoopStreak()

    public struct FirstSeen: Codable, Sendable, Equatable {
        public var seq: Int
        public var step: String
    }

    public struct LoopStreak: Codable, Sendable, Equatable {
        public var failures = 0
        public var intent: StepIntent?
    }

    /// What the store knows about a record when it appends it (a fold from scratch works it
    /// out from the records before).
    public struct Facts: Sendable {
        /// An intent: its step had no intent before (it counts as a new step).
        public var firstIntentOfStep = false
        /// A failed close: the intent it closes.
        public var closedIntent: StepIntent?
        /// The body of a close or decision being appended (saves decoding it again).
        public var close: StepResult?
        public var decision: Decision?
        public init(firstIntentOfStep: Bool = false, closedIntent: StepIntent? = nil, close: StepResult? = nil, decision: Decision? = nil) {
            self.firstIntentOfStep = firstIntentOfStep
            self.closedIntent = closedIntent
            self.close = close
            self.decision = decision
        }
    }

    public init() {}

    /// Folds a run's records from the first.
    public init(_ records: [JournalRecord]) {
        var stepsWithIntent = Set<String>()
        for r in records {
            var facts = Facts()
            if r.kind == .intent, let step = r.step { facts.firstIntentOfStep = stepsWithIntent.insert(step).inserted }
            if r.kind == .close, let c = r.close, c.exitStatus != 0, let s = r.closesSeq, s >= 1, s <= records.count, records[s - 1].seq == s {
                facts.closedIntent = records[s - 1].intent
            }
            apply(r, facts)
        }
    }

    /// Folds in one more record. The body is decoded here only for closes and decisions.
    public mutating func apply(_ r: JournalRecord, _ facts: Facts) {
        seq = r.seq
        switch r.kind {
        case .run:
            governance.openedAt = r.at
            governance.lane = RunOpened.lane(ofCanonical: r.body) ?? (try? r.decode(RunOpened.self))?.lane ?? ""
        case .intent:
            if facts.firstIntentOfStep { usage.steps += 1 }
        case .close:
            guard let c = facts.close ?? r.close else { return }
            usage.wallSeconds += c.wallMs / 1000
            usage.cpuSeconds += c.cpuMs / 1000
            usage.outputBytes += Double(c.stdout.count + c.stderr.count)
            if c.exitStatus != 0 { usage.failedSteps += 1 }
            // The outcome and every denial name (`StepResult.haltNames`: seccomp, set-id, protected
            // paths, egress_denied) count for halt_on; proxy bytes count against max_egress_bytes.
            for o in c.haltNames where outcomes[o] == nil { outcomes[o] = FirstSeen(seq: r.seq, step: r.step ?? "?") }
            usage.egressBytes += EgressGovernance.usage(bytes: c.network?.egressBytes)
            if c.exitStatus == 0 {
                loop = LoopStreak()
            } else if let i = facts.closedIntent {
                let same = loop.intent.map { $0.differences(from: i).isEmpty } ?? false
                loop = LoopStreak(failures: same ? loop.failures + 1 : 1, intent: i)
            } else {
                loop = LoopStreak()
            }
        case .decision:
            guard let d = facts.decision ?? r.decision else { return }
            governance.apply(d, seq: r.seq, at: r.at)
            if d.action == .resumed { loop = LoopStreak() }
        }
    }
}

/// A run's governance state, folded from its decision records.
public struct RunGovernance: Codable, Sendable, Equatable {
    /// A decision and the seq of its record.
    public struct Marked: Codable, Sendable, Equatable {
        public var seq: Int
        public var decision: Decision
    }

    public struct Request: Codable, Sendable, Equatable {
        public var seq: Int
        public var at: Double
        public var step: String
        public var decision: Decision
        /// The decision that answered it (approved, denied, expired) and its seq.
        public var answer: Marked?
    }

    public var lane: String = ""
    public var openedAt: Double = 0
    public var stopped: Marked?
    /// The current halt (not followed by a resume).
    public var halted: Marked?
    /// The latest raise of each budget key.
    public var raises: [String: Double] = [:]
    /// Loop detection counts only what happened after this seq (the last resume).
    public var lastResumeSeq = 0
    /// Every approval request, in order.
    public var requests: [Request] = []

    public init() {}

    /// Folds a run's records from the first.
    public init(_ records: [JournalRecord]) { self = RunState(records).governance }

    mutating func apply(_ d: Decision, seq: Int, at: Double) {
        switch d.action {
        case .stopped: if stopped == nil { stopped = Marked(seq: seq, decision: d) }
        case .halted: halted = Marked(seq: seq, decision: d)
        case .resumed:
            halted = nil
            lastResumeSeq = seq
            for (k, v) in d.raises ?? [:] { raises[k] = v }
        case .approvalRequested:
            requests.append(Request(seq: seq, at: at, step: d.step ?? "", decision: d))
        case .approved, .denied, .expired:
            if let i = requests.lastIndex(where: { $0.seq == d.requestSeq }), requests[i].answer == nil {
                requests[i].answer = Marked(seq: seq, decision: d)
            }
        case .changesApplied, .changesDiscarded, .changesReverted: break  // decisions about change sets: no governance effect
        }
    }

    /// The latest request of a step.
    public func request(step: String) -> Request? { requests.last { $0.step == step } }

    /// Requests without an answer (`lanes pending`).
    public var pending: [Request] { requests.filter { $0.answer == nil } }

    /// The effective limit of a budget key.
    public func limit(_ key: String, lane: Lane.Budget) -> Double? { raises[key] ?? lane.limits[key] }
}

/// What a run has used, for its budgets.
public struct RunUsage: Codable, Sendable, Equatable {
    /// Distinct steps that had an intent.
    public var steps = 0
    public var wallSeconds = 0.0
    public var cpuSeconds = 0.0
    public var outputBytes = 0.0
    public var failedSteps = 0
    /// Bytes through steps' egress proxies, both ways.
    public var egressBytes = 0.0

    public init() {}

    /// Counted from a run's records.
    public init(_ records: [JournalRecord]) { self = RunState(records).usage }

    /// The value counted against a budget key; `openedAt` and `now` give the run's age.
    public func used(_ key: String, openedAt: Double, now: Double) -> Double? {
        switch key {
        case "max_steps": return Double(steps)
        case "max_wall": return wallSeconds
        case "max_cpu": return cpuSeconds
        case "max_output": return outputBytes
        case "max_failed_steps": return Double(failedSteps)
        case "max_run_age": return now - openedAt
        case EgressGovernance.budgetKey: return egressBytes
        default: return nil
        }
    }
}

extension StepIntent {
    /// A digest of the fields `differences(from:)` compares: two intents have the same key
    /// exactly when they do not differ (used to count repeats without decoding intents).
    public var comparisonKey: String {
        var text = ""
        for part in [lane, cwd, profile, profileFingerprint] { text += part.count.description + ":" + part }
        for list in [argv, environment, credentials] {
            text += "[" + list.count.description
            for a in list { text += "," + a.utf8.count.description + ":" + a }
        }
        for (k, v) in limits.sorted(by: { $0.key < $1.key }) { text += ";" + k.utf8.count.description + ":" + k + "=" + v.description }
        return hexString(SHA256.hash(data: Array(text.utf8)))
    }
}
