import Foundation
import LaneModel

/// The body of a `decision` record.
public struct Decision: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable, Equatable {
        case approvalRequested = "approval_requested", approved, denied, expired, halted, resumed, stopped
        /// A step's workspace change set applied, discarded or reverted (lanes apply/discard/revert).
        case changesApplied = "changes_applied", changesDiscarded = "changes_discarded", changesReverted = "changes_reverted"
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
    /// The process that wrote the decision (filled in by the store with its writer when nil).
    public var supervisor: Supervisor?

    public init(action: Action, step: String? = nil, by: String, reason: String? = nil, rule: String? = nil, effect: String? = nil,
                intent: StepIntent? = nil, requestSeq: Int? = nil, expiresAt: Double? = nil, budget: String? = nil,
                limit: Double? = nil, used: Double? = nil, raises: [String: Double]? = nil, supervisor: Supervisor? = nil) {
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
    @discardableResult func close(step: String, intentSeq: Int, result: StepResult) throws -> JournalRecord
    /// `JournalStore.begin` inside this transaction.
    func begin(_ request: BeginRequest) throws -> BeginDecision
}

/// A store that can run governance decisions atomically with its appends.
public protocol GovernedJournal: JournalStore {
    /// Runs `body` in one serializable write transaction on `run`; what it appends commits with it
    /// (or not at all when it throws).
    func transact<T>(run: String, _ body: @escaping (RunTransaction) throws -> T) throws(JournalError) -> T
}
