import Foundation
import GRDB

/// One run inside one write transaction of `SQLiteJournal`: the step decisions of the journal
/// (`begin`, `close`) and what governance reads and appends.
///
/// Each operation costs a few indexed lookups, whatever the run's length: the run's row holds
/// its head, next ordinal, the epoch its chain was last verified in (`JournalSeal`) and its
/// folded `RunState`. Opening a run checks that the last record recomputes to the head, and
/// verifies the whole chain (rebuilding the state) only when the journal files were changed
/// outside `lanes` since it was last verified. Changes are written back by `finish()`, once per
/// transaction.
final class SQLiteRunTransaction: RunTransaction {
    let db: Database
    let run: String
    private let epoch: String
    private var row: RunRow?
    private(set) var state = RunState()
    private var loaded: [JournalRecord]?
    private var dirty = false

    struct RunRow {
        var headSeq: Int
        var headHash: String
        var nextOrdinal: Int
        var verifiedEpoch: String
        var stateSeq: Int?
        var stateBody: String?
    }

    init(db: Database, run: String, epoch: String) throws {
        self.db = db
        self.run = run
        self.epoch = epoch
        let stmt = try db.cachedStatement(sql: "SELECT head_seq, head_hash, next_ordinal, verified_epoch, state_seq, state FROM runs WHERE id = ?")
        if let r = try Row.fetchOne(stmt, arguments: [run]) {
            row = RunRow(headSeq: r[0], headHash: r[1], nextOrdinal: r[2], verifiedEpoch: r[3], stateSeq: r[4], stateBody: r[5])
            try prepare()
        }
    }

    var exists: Bool { row != nil }

    /// Checks the run before anything is read or appended: the tail always; the whole chain
    /// when it was not verified in this epoch or its kept state is missing or stale.
    private func prepare() throws {
        guard var r = row else { return }
        if r.verifiedEpoch == epoch, r.stateSeq == r.headSeq, let body = r.stateBody, let kept = RunState(storageText: body) {
            guard let last = try record(seq: r.headSeq) else {
                throw broken("the head says \(r.headSeq) records but record \(r.headSeq) is not stored")
            }
            if last.hash != r.headHash || last.computedHash != last.hash {
                throw broken("record \(last.seq) does not match the run's head (seq \(r.headSeq))")
            }
            state = kept
            return
        }
        let records = try Row.fetchAll(db.cachedStatement(sql: "\(Self.select) WHERE run = ? ORDER BY seq"), arguments: [run]).map(Self.record)
        if let p = SQLiteJournal.check(run: run, records: records, head: (r.headSeq, r.headHash)) {
            throw broken("record \(p.seq): \(p.message)")
        }
        state = RunState(records)
        try db.execute(sql: "DELETE FROM intent_keys WHERE run = ?", arguments: [run])
        for rec in records where rec.kind == .intent {
            if let i = rec.intent { try insertKey(seq: rec.seq, step: rec.step ?? "", key: i.comparisonKey) }
        }
        loaded = records
        r.verifiedEpoch = epoch
        row = r
        dirty = true
    }

    private func broken(_ what: String) -> JournalError {
        JournalError(.broken, "the journal of run \(run) is broken: \(what); refusing to append (see `lanes verify \(run)`)")
    }

    /// Writes the run's row (head, ordinal, epoch, state) when something changed.
    func finish() throws {
        guard dirty, let r = row else { return }
        let body = state.storageText
        try db.cachedStatement(sql: "UPDATE runs SET head_seq = ?, head_hash = ?, next_ordinal = ?, verified_epoch = ?, state_seq = ?, state = ? WHERE id = ?")
            .execute(arguments: [r.headSeq, r.headHash, r.nextOrdinal, r.verifiedEpoch, state.seq, body, run])
        dirty = false
    }

    /// What a piece of work may change in memory, to undo it with the piece's savepoint.
    struct Snapshot {
        fileprivate let row: RunRow?
        fileprivate let state: RunState
        fileprivate let loadedCount: Int?
        fileprivate let dirty: Bool
    }

    func snapshot() -> Snapshot { Snapshot(row: row, state: state, loadedCount: loaded?.count, dirty: dirty) }

    func restore(_ s: Snapshot) {
        row = s.row
        state = s.state
        if let n = s.loadedCount, let l = loaded, l.count > n { loaded = Array(l.prefix(n)) } else if s.loadedCount == nil { loaded = nil }
        dirty = s.dirty
    }

    // MARK: RunTransaction

    func allRecords() throws -> [JournalRecord] {
        if let loaded { return loaded }
        let records = try Row.fetchAll(db.cachedStatement(sql: "\(Self.select) WHERE run = ? ORDER BY seq"), arguments: [run]).map(Self.record)
        loaded = records
        return records
    }

    func open(lane: String, supervisor: Supervisor) throws {
        guard row == nil else { return }
        try db.execute(sql: "INSERT INTO runs (id, lane, created_at, head_seq, head_hash, next_ordinal, verified_epoch) VALUES (?, ?, ?, 0, ?, 1, ?)",
                       arguments: [run, lane, Date().timeIntervalSince1970, JournalRecord.genesis, epoch])
        row = RunRow(headSeq: 0, headHash: JournalRecord.genesis, nextOrdinal: 1, verifiedEpoch: epoch, stateSeq: 0, stateBody: nil)
        loaded = []
        try append(.run, step: nil, body: CanonicalBody.runOpened(RunOpened(lane: lane, supervisor: supervisor)), facts: RunState.Facts())
    }

    func reserveOrdinal() throws -> String {
        guard var r = row else { throw JournalError(.notFound, "no run \(run)") }
        var ordinal = r.nextOrdinal
        while try stepExists(String(ordinal)) { ordinal += 1 }
        r.nextOrdinal = ordinal + 1
        row = r
        dirty = true
        return String(ordinal)
    }

    @discardableResult
    func append(_ decision: Decision, step: String?) throws -> JournalRecord {
        var d = decision
        d.step = step ?? decision.step
        return try append(.decision, step: nil, body: Canonical.encode(d), facts: RunState.Facts(decision: d))
    }

    @discardableResult
    func close(step: String, intentSeq: Int, result: StepClose) throws -> JournalRecord {
        try close(step: step, intentSeq: intentSeq, result: result, body: CanonicalBody.close(result, intentSeq: intentSeq))
    }

    /// `close` with the body already encoded.
    @discardableResult
    func close(step: String, intentSeq: Int, result: StepClose, body: String) throws -> JournalRecord {
        guard let last = try lastStepRecord(step), last.seq == intentSeq, last.kind == .intent else {
            throw JournalError(.conflict, "step \(step) of run \(run) is not waiting for a close of intent \(intentSeq)")
        }
        // Loop detection compares a failed step's intent with the previous failure's.
        let closed = result.exitStatus != 0 ? try last.decode(StepIntent.self) : nil
        return try append(.close, step: step, body: body, facts: RunState.Facts(closedIntent: closed, close: result))
    }

    func begin(_ request: BeginRequest) throws -> BeginDecision {
        if row == nil { try open(lane: request.intent.lane, supervisor: request.intent.supervisor) }
        let id = try request.step ?? reserveOrdinal()
        guard let last = try lastStepRecord(id) else {
            let r = try appendIntent(request, step: id)
            return .started(step: id, intentSeq: r.seq, retried: false)
        }
        if last.kind == .close {
            guard let intent = try intent(seq: last.closesSeq ?? 0) else {
                throw broken("the intent record \(last.closesSeq ?? 0) a close refers to is missing")
            }
            let diff = request.intent.differences(from: intent)
            if !diff.isEmpty { return .nondeterministic(step: id, differences: diff) }
            return .replay(step: id, close: try last.decode(StepClose.self))
        }
        let previous = try last.decode(StepIntent.self)
        let diff = request.intent.differences(from: previous)
        if request.isAlive(previous.supervisor) { return .inFlight(step: id, supervisor: previous.supervisor) }
        if !diff.isEmpty { return .nondeterministic(step: id, differences: diff) }
        guard request.retryAllowed else { return .inDoubt(step: id, intent: previous) }
        let r = try appendIntent(request, step: id)
        return .started(step: id, intentSeq: r.seq, retried: true)
    }

    func lastStepRecord(_ step: String) throws -> JournalRecord? {
        try Row.fetchOne(db.cachedStatement(sql: "\(Self.select) INDEXED BY records_by_step WHERE run = ? AND step = ? ORDER BY seq DESC LIMIT 1"), arguments: [run, step]).map(Self.record)
    }

    func hasIntent(step: String, after seq: Int) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM records INDEXED BY records_by_step WHERE run = ? AND step = ? AND seq > ? AND kind = 'intent')"),
                          arguments: [run, step, seq]) ?? false
    }

    func repeats(of intent: StepIntent, after seq: Int) throws -> Int {
        try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(DISTINCT step) FROM intent_keys INDEXED BY intent_keys_by_key WHERE run = ? AND key = ? AND seq > ?"),
                         arguments: [run, intent.comparisonKey, seq]) ?? 0
    }

    func intent(seq: Int) throws -> StepIntent? {
        guard let r = try record(seq: seq), r.kind == .intent else { return nil }
        return try r.decode(StepIntent.self)
    }

    // MARK: appending

    private func appendIntent(_ request: BeginRequest, step: String) throws -> JournalRecord {
        let (body, key) = try request.encoded ?? (CanonicalBody.intent(request.intent), request.intent.comparisonKey)
        let first = try !stepHasIntent(step)
        let r = try append(.intent, step: step, body: body, facts: RunState.Facts(firstIntentOfStep: first))
        try insertKey(seq: r.seq, step: step, key: key)
        return r
    }

    /// Appends one record onto the head and folds it into the state (written by `finish`).
    @discardableResult
    private func append(_ kind: JournalRecord.Kind, step: String?, body: String, facts: RunState.Facts) throws -> JournalRecord {
        guard var r = row else { throw JournalError(.notFound, "no run \(run)") }
        let rec = JournalRecord.make(run: run, seq: r.headSeq + 1, kind: kind, step: step, at: Date().timeIntervalSince1970, body: body, prevHash: r.headHash)
        try db.cachedStatement(sql: "INSERT INTO records (run, seq, kind, step, at, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .execute(arguments: [rec.run, rec.seq, rec.kind.rawValue, rec.step, rec.at, rec.body, rec.prevHash, rec.hash])
        state.apply(rec, facts)
        r.headSeq = rec.seq
        r.headHash = rec.hash
        row = r
        dirty = true
        loaded?.append(rec)
        return rec
    }

    private func insertKey(seq: Int, step: String, key: String) throws {
        try db.cachedStatement(sql: "INSERT INTO intent_keys (run, seq, key, step) VALUES (?, ?, ?, ?)").execute(arguments: [run, seq, key, step])
    }

    private func stepExists(_ step: String) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM records INDEXED BY records_by_step WHERE run = ? AND step = ?)"), arguments: [run, step]) ?? false
    }

    private func stepHasIntent(_ step: String) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM records INDEXED BY records_by_step WHERE run = ? AND step = ? AND kind = 'intent')"), arguments: [run, step]) ?? false
    }

    private func record(seq: Int) throws -> JournalRecord? {
        try Row.fetchOne(db.cachedStatement(sql: "\(Self.select) WHERE run = ? AND seq = ?"), arguments: [run, seq]).map(Self.record)
    }

    // MARK: rows
    //
    // Queries by step name their index (`INDEXED BY`): without statistics SQLite may otherwise
    // walk the run's primary key and read every record of the run (seen: 440 page reads per
    // step at 1,000 steps), which made each step's cost grow with the run.

    static let select = "SELECT run, seq, kind, step, at, body, prev_hash, hash FROM records"

    /// A record from a row of `select` (columns by position).
    static func record(_ row: Row) throws -> JournalRecord {
        let kindText: String = row[2]
        guard let kind = JournalRecord.Kind(rawValue: kindText) else {
            throw JournalError(.broken, "record of unknown kind \"\(kindText)\"")
        }
        return JournalRecord(run: row[0], seq: row[1], kind: kind, step: row[3], at: row[4], body: row[5], prevHash: row[6], hash: row[7])
    }
}
