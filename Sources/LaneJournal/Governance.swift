import Foundation
import LaneModel

/// Governance: review gates, budgets, loop detection and stops, decided from the run's journal
/// records inside the same write transaction that appends the step's intent, so the decision
/// holds across crashes and across concurrent `lanes` processes. Every decision is a `decision`
/// record (body: `Decision`): who, when (the record's time) and why.

/// The exit statuses governance adds to `lanes run` (documented in `lanes run --help` and
/// docs/governance.md). They avoid 64, 74–77 (the journal), 124–127 and 128+N.
public enum GovernanceExitStatus {
    /// The step needs a person's approval; nothing was run (`lanes pending`, `lanes approve`).
    public static let awaitingApproval: Int32 = 78
    /// The step's approval was denied or expired; nothing was run.
    public static let denied: Int32 = 79
    /// The run is halted (a budget or loop detection); nothing was run (`lanes resume`).
    public static let halted: Int32 = 80
    /// The run was stopped (`lanes stop` or `halt_on`); nothing was run.
    public static let stopped: Int32 = 81
}

/// The body of a `decision` record.
public struct Decision: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable, Equatable {
        case approvalRequested = "approval_requested", approved, denied, expired, halted, resumed, stopped
    }
    public var action: Action
    /// The step it is about (nil: the whole run). Kept in the body, not the record's step
    /// column, so the journal's per-step state (intent, close) never sees a decision.
    public var step: String?
    /// Who decided: a person's name (`--by`), or `lanes` for what the supervisor decided itself.
    public var by: String
    /// Why: the note, the reason, or what tripped.
    public var reason: String?
    /// approval_requested: the rule that matched; halted: `loop suspected` or the budget.
    public var rule: String?
    /// approval_requested: the effect the caller declared (`--effect`).
    public var effect: String?
    /// approval_requested: the full intent the approval binds to.
    public var intent: StepIntent?
    /// approved/denied/expired: the seq of the request answered.
    public var requestSeq: Int?
    /// approval_requested: when the request expires (seconds since 1970).
    public var expiresAt: Double?
    /// halted: the budget key, its limit and what was used.
    public var budget: String?
    public var limit: Double?
    public var used: Double?
    /// resumed: the raised budget limits.
    public var raises: [String: Double]?
    /// The process that wrote the decision.
    public var supervisor: Supervisor?

    public init(action: Action, step: String? = nil, by: String, reason: String? = nil, rule: String? = nil, effect: String? = nil,
                intent: StepIntent? = nil, requestSeq: Int? = nil, expiresAt: Double? = nil, budget: String? = nil,
                limit: Double? = nil, used: Double? = nil, raises: [String: Double]? = nil, supervisor: Supervisor? = .current) {
        self.action = action
        self.step = step
        self.by = by
        self.reason = reason
        self.rule = rule
        self.effect = effect
        self.intent = intent
        self.requestSeq = requestSeq
        self.expiresAt = expiresAt
        self.budget = budget
        self.limit = limit
        self.used = used
        self.raises = raises
        self.supervisor = supervisor
    }

    enum CodingKeys: String, CodingKey {
        case action, step, by, reason, rule, effect, intent, budget, limit, used, raises, supervisor
        case requestSeq = "request_seq", expiresAt = "expires_at"
    }

    /// One line for `lanes log`.
    public var summary: String {
        var s = (step.map { "step \($0): " } ?? "") + "\(action.rawValue) by \(by)"
        if let rule { s += ", rule \(rule)" }
        if let budget, let limit, let used { s += ", \(budget) \(Self.number(used))/\(Self.number(limit))" }
        if let raises, !raises.isEmpty { s += ", raised " + raises.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.number($0.value))" }.joined(separator: " ") }
        if let intent { s += ": \(intent.argv.joined(separator: " "))" }
        if let reason { s += " — \(reason)" }
        return s
    }

    public static func number(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(format: "%.3f", d) }
}

extension JournalRecord {
    /// The decision, for a decision record.
    public var decision: Decision? { kind == .decision ? try? decode(Decision.self) : nil }
}

/// One run inside one write transaction: what governance reads, decides and appends. Every
/// read is cheap whatever the run's length (the run's folded `state` plus indexed lookups);
/// `allRecords()` is for commands that need the whole run.
public protocol RunTransaction: AnyObject {
    var run: String { get }
    /// Whether the run exists (has its `run` record).
    var exists: Bool { get }
    /// The run's records folded, including what this transaction appended.
    var state: RunState { get }
    /// Every record of the run, in seq order (reads the whole run).
    func allRecords() throws -> [JournalRecord]
    /// Creates the run (its `run` record) when it does not exist.
    func open(lane: String, supervisor: Supervisor) throws
    /// Takes the run's next unused ordinal (as `begin` does without a step id).
    func reserveOrdinal() throws -> String
    /// The step's latest intent or close.
    func lastStepRecord(_ step: String) throws -> JournalRecord?
    /// Whether the step has an intent after `seq`.
    func hasIntent(step: String, after seq: Int) throws -> Bool
    /// How many distinct steps after `seq` had an intent that does not differ from `intent`.
    func repeats(of intent: StepIntent, after seq: Int) throws -> Int
    /// Appends a decision record about `step` (nil: the run).
    @discardableResult func append(_ decision: Decision, step: String?) throws -> JournalRecord
    /// Appends a close record for the intent at `intentSeq` (e.g. `lanes stop` for a killed supervisor).
    @discardableResult func close(step: String, intentSeq: Int, result: StepClose) throws -> JournalRecord
    /// `JournalStore.begin` inside this transaction.
    func begin(_ request: BeginRequest) throws -> BeginDecision
}

/// A store that can run governance decisions atomically with its appends.
public protocol GovernedJournal: JournalStore {
    /// Runs `body` in one serializable write transaction on `run`; what it appends commits with it
    /// (or not at all when it throws).
    func transact<T>(run: String, _ body: @escaping (RunTransaction) throws -> T) throws(JournalError) -> T
}

/// What `lanes run` is told by governance.
public enum GovernedDecision: Sendable, Equatable {
    /// Governance let the journal decide.
    case journal(BeginDecision)
    /// Refused by governance: the status, the step and an actionable message.
    case refused(step: String, status: Int32, message: String)
}

/// The governance rules, applied to a run's records.
public enum Governance {
    /// Why a run must not go on.
    public enum Verdict: Sendable, Equatable {
        case halt(Decision)
        case stop(Decision)
    }

    /// Checks budgets, loops and `halt_on` against the run's state. `next` is the intent about
    /// to be appended (nil: checking after a step closed); `newStep` says whether it is a new step.
    public static func evaluate(_ tx: RunTransaction, lane: Lane, now: Double, next: StepIntent?, newStep: Bool) throws -> Verdict? {
        let state = tx.state, g = state.governance
        if g.stopped != nil { return nil }
        // halt_on: an outcome that makes the run unsafe stops it (the first such step is named).
        if let bad = lane.haltOn.compactMap({ o in state.outcomes[o].map { (o, $0) } }).min(by: { $0.1.seq < $1.1.seq }) {
            return .stop(Decision(action: .stopped, by: "lanes", reason: "step \(bad.1.step) ended with \(bad.0) (halt_on)", rule: "halt_on"))
        }
        if g.halted != nil { return nil }
        for key in ["max_steps", "max_wall", "max_cpu", "max_output", "max_failed_steps", "max_run_age",
                    EgressGovernance.budgetKey] {  // MERGE(issue 12): max_egress_bytes
            guard let limit = g.limit(key, lane: lane.budget), let used = state.usage.used(key, openedAt: g.openedAt, now: now) else { continue }
            if key == "max_steps" && next != nil && !newStep { continue }  // a retry is not a new step
            if used >= limit {
                return .halt(Decision(action: .halted, by: "lanes", reason: "budget \(key) exhausted: used \(Decision.number(used)) of \(Decision.number(limit))",
                                      rule: "budget", budget: key, limit: limit, used: used))
            }
        }
        // Loops: only what happened since the last resume (the state's streak restarts there).
        let failures = g.limit("loop_failures", lane: lane.budget) ?? lane.budget.loopFailures
        if let repeated = state.loop.intent, Double(state.loop.failures) >= failures {
            return .halt(Decision(action: .halted, by: "lanes", reason: "loop suspected: `\(repeated.argv.joined(separator: " "))` failed \(state.loop.failures) times in a row",
                                  rule: "loop suspected", budget: "loop_failures", limit: failures, used: Double(state.loop.failures)))
        }
        if let next, newStep, let repeats = g.limit("loop_repeats", lane: lane.budget) {
            let count = try tx.repeats(of: next, after: g.lastResumeSeq)
            if Double(count) >= repeats {
                return .halt(Decision(action: .halted, by: "lanes", reason: "loop suspected: `\(next.argv.joined(separator: " "))` repeated \(count) times in this run",
                                      rule: "loop suspected", budget: "loop_repeats", limit: repeats, used: Double(count)))
            }
        }
        return nil
    }

    /// Decides whether the step may start: stop, halt, budgets, loops, approvals; then the
    /// journal's own `begin`. Runs inside `tx` (one write transaction).
    public static func begin(_ tx: RunTransaction, request original: BeginRequest, lane: Lane, effect: String?,
                             now: Double = Date().timeIntervalSince1970) throws -> GovernedDecision {
        var request = original
        let run = tx.run
        if !tx.exists { try tx.open(lane: request.intent.lane, supervisor: request.intent.supervisor) }
        let step = try request.step ?? tx.reserveOrdinal()
        request.step = step
        let last = try tx.lastStepRecord(step)
        if let last {
            // Replay, nondeterminism and in-flight are the journal's answers.
            if last.kind == .close { return .journal(try tx.begin(request)) }
            if let i = last.intent, request.isAlive(i.supervisor) { return .journal(try tx.begin(request)) }
            if let i = last.intent, !i.differences(from: request.intent).isEmpty { return .journal(try tx.begin(request)) }
        }
        let state = tx.state.governance
        if let s = state.stopped {
            return .refused(step: step, status: GovernanceExitStatus.stopped,
                            message: "run \(run) was stopped by \(s.decision.by): \(s.decision.reason ?? "no reason given"); no further steps run (start a new run)")
        }
        if let h = state.halted {
            return .refused(step: step, status: GovernanceExitStatus.halted, message: haltMessage(run, h.decision))
        }
        switch try evaluate(tx, lane: lane, now: now, next: request.intent, newStep: last == nil) {
        case let .stop(d)?:
            try tx.append(d, step: nil)
            return .refused(step: step, status: GovernanceExitStatus.stopped,
                            message: "run \(run) was stopped by lanes: \(d.reason ?? ""); no further steps run")
        case let .halt(d)?:
            try tx.append(d, step: step)
            return .refused(step: step, status: GovernanceExitStatus.halted, message: haltMessage(run, d))
        case nil: break
        }
        // Review gates.
        let inDoubt = last != nil
        if let r = state.request(step: step), try !tx.hasIntent(step: step, after: r.seq) {
            let asked = r.decision.intent
            if let asked, !asked.differences(from: request.intent).isEmpty {
                return .refused(step: step, status: JournalExitStatus.nondeterministic,
                                message: "step \(step) of run \(run) waits on an approval for a different intent (differs in: \(asked.differences(from: request.intent).joined(separator: ", "))); an approval binds to the exact command: nothing was run (use a new step id)")
            }
            if let answer = r.answer?.decision {
                switch answer.action {
                case .approved:
                    request.retryAllowed = true
                    return .journal(try tx.begin(request))
                case .expired:
                    return .refused(step: step, status: GovernanceExitStatus.denied,
                                    message: "the approval request for step \(step) of run \(run) expired (\(answer.reason ?? "no decision in time")); nothing was run")
                default:
                    return .refused(step: step, status: GovernanceExitStatus.denied,
                                    message: "step \(step) of run \(run) was denied by \(answer.by): \(answer.reason ?? "no reason given"); nothing was run")
                }
            }
            if let expires = r.decision.expiresAt, now >= expires {
                try tx.append(Decision(action: .expired, by: "lanes", reason: "no decision within \(Decision.number(expires - r.at)) s", requestSeq: r.seq), step: step)
                return .refused(step: step, status: GovernanceExitStatus.denied,
                                message: "the approval request for step \(step) of run \(run) expired without a decision; nothing was run")
            }
            return .refused(step: step, status: GovernanceExitStatus.awaitingApproval, message: approvalMessage(run, step, r.decision))
        }
        var rule = lane.review.gate(argv: request.intent.argv, credentials: request.intent.credentials, effect: effect)
        if rule == nil && inDoubt && lane.review.inDoubt && !request.retryAllowed { rule = "in_doubt" }
        guard let rule else { return .journal(try tx.begin(request)) }
        let d = Decision(action: .approvalRequested, by: "lanes", reason: "lane \(lane.name) gates this step (\(rule))", rule: rule,
                         effect: effect, intent: request.intent, expiresAt: now + lane.review.timeoutSeconds)
        try tx.append(d, step: step)
        return .refused(step: step, status: GovernanceExitStatus.awaitingApproval, message: approvalMessage(run, step, d))
    }

    static func approvalMessage(_ run: String, _ step: String, _ d: Decision) -> String {
        "step \(step) of run \(run) needs approval (rule \(d.rule ?? "?")); nothing was run. "
            + "A reviewer runs `lanes approve \(run) \(step) --by NAME` (or `lanes deny \(run) \(step) --by NAME --reason TEXT`); "
            + "then invoke the same command again with --run \(run) --step \(step)"
    }

    static func haltMessage(_ run: String, _ d: Decision) -> String {
        "run \(run) is halted: \(d.reason ?? d.rule ?? "halted"); nothing was run (`lanes resume \(run) --by NAME [--raise KEY=VALUE]`)"
    }

    /// After a step closed: records a halt or a stop the step caused (loops, budgets, halt_on).
    public static func afterStep(_ tx: RunTransaction, lane: Lane, now: Double = Date().timeIntervalSince1970) throws -> Verdict? {
        guard let verdict = try evaluate(tx, lane: lane, now: now, next: nil, newStep: false) else { return nil }
        switch verdict {
        case let .halt(d): try tx.append(d, step: nil)
        case let .stop(d): try tx.append(d, step: nil)
        }
        return verdict
    }

    /// Answers a pending request: approve, deny (or record that it expired). Throws a message.
    public static func answer(_ tx: RunTransaction, step: String, action: Decision.Action, by: String, reason: String?,
                              now: Double = Date().timeIntervalSince1970) throws -> Decision {
        guard let r = tx.state.governance.request(step: step) else { throw GovernanceError("step \(step) of run \(tx.run) has no approval request") }
        if let a = r.answer { throw GovernanceError("step \(step) of run \(tx.run) was already answered: \(a.decision.action.rawValue) by \(a.decision.by)") }
        if let expires = r.decision.expiresAt, now >= expires {
            try tx.append(Decision(action: .expired, by: "lanes", reason: "no decision within \(Decision.number(expires - r.at)) s", requestSeq: r.seq), step: step)
            throw GovernanceError("the approval request for step \(step) of run \(tx.run) expired; nothing was approved", expired: true)
        }
        let d = Decision(action: action, by: by, reason: reason, rule: r.decision.rule, requestSeq: r.seq)
        try tx.append(d, step: step)
        return d
    }
}

/// A governance command that cannot be done, with a message a person can act on.
public struct GovernanceError: Error, CustomStringConvertible {
    public let message: String
    /// The request had expired (recorded).
    public let expired: Bool
    public init(_ message: String, expired: Bool = false) {
        self.message = message
        self.expired = expired
    }
    public var description: String { message }
}
