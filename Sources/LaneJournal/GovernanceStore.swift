import Foundation
import GRDB

/// `GovernedJournal` for the SQLite store: one `BEGIN IMMEDIATE` transaction per decision, so
/// a governance check and the append it leads to are one step for every process.
extension SQLiteJournal: GovernedJournal {
    public func transact<T>(run: String, _ body: @escaping (RunTransaction) throws -> T) throws(JournalError) -> T {
        do {
            var result: T?
            try pool.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    let tx = try SQLiteRunTransaction(db: db, run: run)
                    result = try body(tx)
                    return .commit
                }
            }
            guard let result else { throw JournalError(.unavailable, "transaction without a result") }
            return result
        } catch let error as JournalError {
            throw error
        } catch let error as GovernanceError {
            throw JournalError(.conflict, error.message)
        } catch {
            throw JournalError(.unavailable, "cannot write \(path): \(Self.describe(error))")
        }
    }

    /// Runs `body` and lets a `GovernanceError` it throws through unchanged (for the CLI's messages).
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

final class SQLiteRunTransaction: RunTransaction {
    let db: Database
    let run: String
    private(set) var records: [JournalRecord]

    init(db: Database, run: String) throws {
        self.db = db
        self.run = run
        records = try Row.fetchAll(db, sql: "SELECT * FROM records WHERE run = ? ORDER BY seq", arguments: [run]).map(SQLiteJournal.record)
        if !records.isEmpty { try SQLiteJournal.checkTail(db, run: run) }
    }

    func open(lane: String, supervisor: Supervisor) throws {
        guard try Row.fetchOne(db, sql: "SELECT 1 FROM runs WHERE id = ?", arguments: [run]) == nil else { return }
        try db.execute(sql: "INSERT INTO runs (id, lane, created_at, head_seq, head_hash, next_ordinal) VALUES (?, ?, ?, 0, ?, 1)",
                       arguments: [run, lane, Date().timeIntervalSince1970, JournalRecord.genesis])
        records.append(try SQLiteJournal.append(db, run: run, kind: .run, step: nil, body: Canonical.encode(RunOpened(lane: lane, supervisor: supervisor))))
    }

    func reserveOrdinal() throws -> String {
        var ordinal: Int = try Int.fetchOne(db, sql: "SELECT next_ordinal FROM runs WHERE id = ?", arguments: [run]) ?? 1
        while try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM records WHERE run = ? AND step = ?)", arguments: [run, String(ordinal)]) == true {
            ordinal += 1
        }
        try db.execute(sql: "UPDATE runs SET next_ordinal = ? WHERE id = ?", arguments: [ordinal + 1, run])
        return String(ordinal)
    }

    @discardableResult
    func append(_ decision: Decision, step: String?) throws -> JournalRecord {
        var d = decision
        d.step = step ?? decision.step
        let r = try SQLiteJournal.append(db, run: run, kind: .decision, step: nil, body: Canonical.encode(d))
        records.append(r)
        return r
    }

    @discardableResult
    func close(step: String, intentSeq: Int, result: StepClose) throws -> JournalRecord {
        guard let last = try SQLiteJournal.lastRecord(db, run: run, step: step), last.seq == intentSeq, last.kind == .intent else {
            throw JournalError(.conflict, "step \(step) of run \(run) is not waiting for a close of intent \(intentSeq)")
        }
        let r = try SQLiteJournal.append(db, run: run, kind: .close, step: step, body: Canonical.closeBody(result, intentSeq: intentSeq))
        records.append(r)
        return r
    }

    func begin(_ request: BeginRequest) throws -> BeginDecision {
        let d = try SQLiteJournal.begin(db, request)
        records = try Row.fetchAll(db, sql: "SELECT * FROM records WHERE run = ? ORDER BY seq", arguments: [run]).map(SQLiteJournal.record)
        return d
    }
}
