import LaneModel

/// The journal: the supervisor's durable, append-only record of every run and step.
///
/// ## Contract (every implementation must pass `JournalConformance` in Tests/JournalTests)
/// 1. **Durability.** When `begin` returns `.started` the intent record is on stable storage;
///    when `close` returns, the close record is. A caller reports a result only after `close`
///    returned. Group commit is allowed; acknowledging before the data is durable is not.
/// 2. **Append only.** Records are never updated or deleted. Each run's records have `seq`
///    1, 2, 3 … without gaps; record 1 is the `run` record.
/// 3. **Hash chain.** `record.prevHash` is the hash of the run's previous record (`genesis` for
///    seq 1) and `record.hash == record.computedHash`. A store refuses (`.broken`) to append to
///    a run whose last record or head does not check out, and to a run with any bad record when
///    its data may have been changed by something other than the store since the store last
///    verified that run (the SQLite store: `JournalSeal`). Checking every record on every
///    append is allowed but not required: the cost of a step must not grow with its run.
/// 4. **Atomic decisions.** `begin` decides and appends in one serializable step: between
///    concurrent callers (threads or processes) there is exactly one winner per (run, step),
///    every ordinal is handed out once, and no caller ever sees a lock error — contention is
///    waited out, up to a long timeout.
/// 5. **Step states.** For (run, step), with `last` the step's latest record:
///    - none → a new intent is appended → `.started`;
///    - `last` is a close → same intent (`StepIntent.differences` empty) → `.replay`, else
///      `.nondeterministic` with the differing fields; nothing is appended;
///    - `last` is an intent whose supervisor `isAlive` → `.inFlight`; nothing is appended;
///    - `last` is an intent whose supervisor is gone → `.nondeterministic` if the intent differs;
///      else when `retryAllowed` a new intent is appended (`.started` with `retried == true`),
///      otherwise `.inDoubt`; nothing is appended.
/// 6. **Ordinals.** Without a step id, `begin` takes the run's next unused ordinal ("1", "2", …).
/// 7. **Close.** `close` appends one close record for the intent `begin` returned; closing a step
///    whose latest record is not that intent fails with `.conflict`.
/// 8. **Reading.** `records(run:)` returns the run's rows as stored, in seq order, without
///    checking them (so `verify` can report damage); `chain(run:)` returns them with the head
///    from one consistent snapshot, even while other writers append; `runs()` lists runs,
///    newest first.
public protocol JournalStore: Sendable {
    /// Decides what to do with a step and, when it is to run, durably appends its intent.
    func begin(_ request: BeginRequest) throws(JournalError) -> BeginDecision
    /// Durably appends the close record of the intent at `intentSeq`.
    @discardableResult
    func close(run: String, step: String, intentSeq: Int, result: StepResult) throws(JournalError) -> JournalRecord
    /// Every run, newest first.
    func runs() throws(JournalError) -> [RunSummary]
    /// One run's records in seq order, as stored.
    func records(run: String) throws(JournalError) -> [JournalRecord]
    /// The run's head as the store keeps it: the last seq and its hash (nil: no such run).
    func head(run: String) throws(JournalError) -> (seq: Int, hash: String)?
    /// The run's records and head read from one consistent snapshot (what `verify` checks:
    /// reading them separately would race with concurrent appends).
    func chain(run: String) throws(JournalError) -> (records: [JournalRecord], head: (seq: Int, hash: String)?)
}

/// What `begin` is asked.
public struct BeginRequest: Sendable {
    /// The run; created (with a `run` record) when it does not exist.
    public var run: String
    /// The step id; nil → the run's next ordinal.
    public var step: String?
    public var intent: StepIntent { didSet { encoded = nil } }
    /// The intent's record body and comparison key, computed by the caller's thread before the
    /// request reaches a (group-commit) transaction; recomputed when missing.
    var encoded: (body: String, key: String)?
    /// Whether a step left in doubt may run again (`retry = "safe"` or `--idempotent`).
    public var retryAllowed: Bool
    /// Whether the supervisor that wrote an intent still runs.
    public var isAlive: @Sendable (Supervisor) -> Bool

    public init(run: String, step: String?, intent: StepIntent, retryAllowed: Bool,
                isAlive: @escaping @Sendable (Supervisor) -> Bool) {
        self.run = run
        self.step = step
        self.intent = intent
        self.retryAllowed = retryAllowed
        self.isAlive = isAlive
    }

    /// The request with its intent encoded now (outside the writers' critical section).
    func encodingIntent() throws -> BeginRequest {
        var r = self
        r.encoded = (try CanonicalBody.intent(intent), intent.comparisonKey)
        return r
    }
}

/// What `begin` decided.
public enum BeginDecision: Sendable, Equatable {
    /// The intent is durable: run the step, then `close` it.
    case started(step: String, intentSeq: Int, retried: Bool)
    /// The step already completed with the same intent: report the recorded result.
    /// `json` is the result exactly as the live step reported it (`JournalRecord.closeJSON`).
    case replay(step: String, result: StepResult, json: String)
    /// The step exists with a different intent; the names of the differing fields.
    case nondeterministic(step: String, differences: [String])
    /// An intent without a close whose supervisor is gone, and retrying is not allowed.
    case inDoubt(step: String, intent: StepIntent)
    /// An intent without a close whose supervisor still runs.
    case inFlight(step: String, supervisor: Supervisor)
}

/// One run, as `lanes runs` lists it.
public struct RunSummary: Sendable, Equatable {
    public var id: String
    public var lane: String
    public var createdAt: Double
    public var records: Int
    public init(id: String, lane: String, createdAt: Double, records: Int) {
        self.id = id
        self.lane = lane
        self.createdAt = createdAt
        self.records = records
    }
}

/// A journal error. Never carries a credential value.
public struct JournalError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }
        /// The run's chain does not verify; nothing is appended to it.
        public static let broken = Code("broken chain")
        /// The store cannot be opened, read or written.
        public static let unavailable = Code("unavailable")
        /// A close that does not match the step's state.
        public static let conflict = Code("conflict")
        /// No such run or step.
        public static let notFound = Code("not found")
    }

    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "journal \(code): \(message)" }
    public static func == (a: JournalError, b: JournalError) -> Bool { a.code == b.code }
}

/// A problem `verify` found: the first bad record of a run, named.
public struct ChainProblem: Sendable, Equatable, CustomStringConvertible {
    public var run: String
    /// The seq of the first bad record (or where one is missing).
    public var seq: Int
    public var message: String
    public var description: String { "run \(run): record \(seq): \(message)" }
}

extension JournalStore {
    /// Checks one run's chain: seq without gaps from 1, every prev_hash links, every hash
    /// recomputes, record 1 is the run record, the head matches the last record. Returns the
    /// first problem, or nil.
    public func verify(run: String) throws(JournalError) -> ChainProblem? {
        let (records, head) = try chain(run: run)
        return Self.check(run: run, records: records, head: head)
    }

    /// The chain check itself, on rows already read.
    public static func check(run: String, records: [JournalRecord], head: (seq: Int, hash: String)?) -> ChainProblem? {
        var prev = JournalRecord.genesis
        for (i, r) in records.enumerated() {
            let expected = i + 1
            if r.seq != expected {
                return ChainProblem(run: run, seq: expected, message: r.seq > expected
                    ? "missing (the next stored record is \(r.seq)): a record was deleted"
                    : "duplicate or out-of-order seq \(r.seq)")
            }
            if i == 0 && r.kind != .run { return ChainProblem(run: run, seq: 1, message: "the first record is not the run record") }
            if r.prevHash != prev { return ChainProblem(run: run, seq: r.seq, message: "prev_hash does not match the hash of record \(r.seq - 1): a record was changed or deleted") }
            if r.computedHash != r.hash { return ChainProblem(run: run, seq: r.seq, message: "hash mismatch: the record's contents were changed") }
            prev = r.hash
        }
        guard let head else {
            return records.isEmpty ? ChainProblem(run: run, seq: 1, message: "no such run") : ChainProblem(run: run, seq: records.count, message: "the run has records but no head")
        }
        if head.seq != records.count {
            return ChainProblem(run: run, seq: records.count + 1, message: head.seq > records.count
                ? "missing: the head says the run has \(head.seq) records, \(records.count) are stored (records were deleted or the journal was truncated)"
                : "the head says \(head.seq) records but \(records.count) are stored")
        }
        if head.hash != prev { return ChainProblem(run: run, seq: head.seq, message: "the head's hash does not match the last record") }
        return nil
    }
}

/// The exit statuses `lanes run` adds for the journal (documented in `lanes run --help` and
/// docs/journal.md). They avoid 64, 124–127 and 128+N.
public enum JournalExitStatus {
    /// The journal cannot be opened or written, or the run's chain is broken.
    public static let journalError: Int32 = 74
    /// The (run, step) exists with a different intent.
    public static let nondeterministic: Int32 = 75
    /// The step's supervisor died before its close record: in doubt, needs review.
    public static let inDoubt: Int32 = 76
    /// The step's supervisor is still running it.
    public static let inFlight: Int32 = 77
}

/// One step of a run, folded from its records.
public struct StepSummary: Sendable, Equatable {
    public var step: String
    /// How many intents it has (more than one: re-run after being in doubt).
    public var attempts: Int
    public var intent: StepIntent?
    /// The close of the latest intent, if it has one.
    public var close: StepResult?
    /// Seq of its first record (steps are listed in this order).
    public var firstSeq: Int

    /// Folds a run's records into its steps, in the order they started.
    public static func fold(_ records: [JournalRecord]) -> [StepSummary] {
        var order: [String] = []
        var byStep: [String: StepSummary] = [:]
        for r in records {
            guard let step = r.step else { continue }
            var s = byStep[step] ?? StepSummary(step: step, attempts: 0, intent: nil, close: nil, firstSeq: r.seq)
            if byStep[step] == nil { order.append(step) }
            switch r.kind {
            case .intent:
                s.attempts += 1
                s.intent = r.intent
                s.close = nil
            case .close:
                s.close = r.close
            case .run, .decision:
                break
            }
            byStep[step] = s
        }
        return order.compactMap { byStep[$0] }
    }
}
