import Foundation
import LaneJournal
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
        for key in ["max_steps", "max_wall", "max_cpu", "max_output", "max_failed_steps", "max_run_age"] {
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
        // A run belongs to one lane: its budgets, gates and halt_on are that lane's.
        let runLane = tx.state.governance.lane
        if !runLane.isEmpty && runLane != request.intent.lane {
            return .refused(step: request.step ?? "", status: ExitStatus.usage,
                            message: "run \(run) belongs to lane \(runLane), not \(request.intent.lane): a run's steps share one lane (start a new run for lane \(request.intent.lane)); nothing was run")
        }
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
public struct GovernanceError: TransactionRefusal, CustomStringConvertible {
    public let message: String
    /// The request had expired (recorded).
    public let expired: Bool
    public init(_ message: String, expired: Bool = false) {
        self.message = message
        self.expired = expired
    }
    public var description: String { message }
}

extension GovernedJournal {
    /// Runs `body` in `transact(run:)` and lets a `GovernanceError` it throws through unchanged (for the CLI's messages).
    public func decide<T>(run: String, _ body: @escaping (RunTransaction) throws -> T) throws -> T {
        var failure: GovernanceError?
        let out: T? = try transact(run: run) { tx -> T? in
            do { return try body(tx) } catch let e as GovernanceError where e.expired {
                failure = e  // the expiry record commits; the caller still hears about it
                return nil
            }
        }
        if let failure { throw failure }
        guard let out else { throw GovernanceError("no result") }
        return out
    }
}
