import Foundation
import LaneModel

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
    private let sql: SQLiteStatements
    let run: String
    private let epoch: String
    /// The supervisor whose decisions this transaction writes (`SQLiteJournal.writer`).
    private let writer: Supervisor?
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

    init(statements: SQLiteStatements, run: String, epoch: String, writer: Supervisor?) throws {
        self.writer = writer
        sql = statements
        self.run = run
        self.epoch = epoch
        row = try sql.first(.runRow, [.text(run)]) { r in
            RunRow(headSeq: r.int(0), headHash: r.text(1) ?? "", nextOrdinal: r.int(2), verifiedEpoch: r.text(3) ?? "",
                   stateSeq: r.isNull(4) ? nil : r.int(4), stateBody: r.text(5))
        }
        if row != nil { try prepare() }
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
        let records = try fetchAll()
        if let p = SQLiteJournal.check(run: run, records: records, head: (r.headSeq, r.headHash)) {
            throw broken("record \(p.seq): \(p.message)")
        }
        state = RunState(records)
        try sql.run(.deleteKeys, [.text(run)])
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
        try sql.run(.updateRun, [.int(r.headSeq), .text(r.headHash), .int(r.nextOrdinal), .text(r.verifiedEpoch), .int(state.seq), .text(body), .text(run)])
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
        let records = try fetchAll()
        loaded = records
        return records
    }

    func open(lane: String, supervisor: Supervisor) throws {
        guard row == nil else { return }
        try sql.run(.insertRun, [.text(run), .text(lane), .double(Date().timeIntervalSince1970), .text(JournalRecord.genesis), .text(epoch)])
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
        if d.supervisor == nil { d.supervisor = writer }
        return try append(.decision, step: nil, body: Canonical.encode(d), facts: RunState.Facts(decision: d))
    }

    @discardableResult
    func close(step: String, intentSeq: Int, result: StepResult) throws -> JournalRecord {
        try close(step: step, intentSeq: intentSeq, result: result, body: CanonicalBody.close(result, intentSeq: intentSeq))
    }

    /// `close` with the body already encoded.
    @discardableResult
    func close(step: String, intentSeq: Int, result: StepResult, body: String) throws -> JournalRecord {
        guard let last = try lastStepRecord(step), last.seq == intentSeq, last.kind == .intent else {
            throw JournalError(.conflict, "step \(step) of run \(run) is not waiting for a close of intent \(intentSeq)")
        }
        // Loop detection compares a failed step's intent with the previous failure's.
        let closed = result.exitStatus != 0 ? try last.decode(StepIntent.self) : nil
        return try append(.close, step: step, body: body, facts: RunState.Facts(closedIntent: closed, close: result.asReported))
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
            guard let result = last.close, let json = last.closeJSON else { throw broken("close record \(last.seq) cannot be read") }
            return .replay(step: id, result: result, json: json)
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
        try sql.first(.lastStepRecord, [.text(run), .text(step)]) { try $0.record() }
    }

    func hasIntent(step: String, after seq: Int) throws -> Bool {
        try sql.first(.intentAfter, [.text(run), .text(step), .int(seq)]) { $0.int(0) != 0 } ?? false
    }

    func repeats(of intent: StepIntent, after seq: Int) throws -> Int {
        try sql.first(.repeats, [.text(run), .text(intent.comparisonKey), .int(seq)]) { $0.int(0) } ?? 0
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
        try sql.run(.insertRecord, [.text(rec.run), .int(rec.seq), .text(rec.kind.rawValue), rec.step.map { .text($0) } ?? .null,
                                    .double(rec.at), .text(rec.body), .text(rec.prevHash), .text(rec.hash)])
        state.apply(rec, facts)
        r.headSeq = rec.seq
        r.headHash = rec.hash
        row = r
        dirty = true
        loaded?.append(rec)
        return rec
    }

    private func insertKey(seq: Int, step: String, key: String) throws {
        try sql.run(.insertKey, [.text(run), .int(seq), .text(key), .text(step)])
    }

    private func stepExists(_ step: String) throws -> Bool {
        try sql.first(.stepExists, [.text(run), .text(step)]) { $0.int(0) != 0 } ?? false
    }

    private func stepHasIntent(_ step: String) throws -> Bool {
        try sql.first(.stepHasIntent, [.text(run), .text(step)]) { $0.int(0) != 0 } ?? false
    }

    private func record(seq: Int) throws -> JournalRecord? {
        try sql.first(.recordBySeq, [.text(run), .int(seq)]) { try $0.record() }
    }

    private func fetchAll() throws -> [JournalRecord] {
        var records: [JournalRecord] = []
        try sql.query(.recordsOfRun, [.text(run)]) { records.append(try $0.record()) }
        return records
    }
}
