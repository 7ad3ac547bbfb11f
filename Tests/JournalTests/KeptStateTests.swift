@testable import LaneJournal
import Foundation
import GRDB
import LaneGovernance
import LaneTestSupport
import Testing

/// The run state kept beside each head, the seal that tells writers whether someone else
/// touched the files, and schema upgrades (docs/journal.md, "Cost per step").
@Suite("Kept run state, seal and schema")
struct KeptStateTests {
    typealias C = JournalConformance

    func epoch(_ j: SQLiteJournal, _ run: String) throws -> String? {
        try j.databaseQueue().read { try String.fetchOne($0, sql: "SELECT verified_epoch FROM runs WHERE id = ?", arguments: [run]) }
    }

    func sealedEpoch(_ j: SQLiteJournal) throws -> String {
        let text = try String(contentsOfFile: j.path + ".lock", encoding: .utf8)
        return String(text.split(separator: "\n")[1])
    }

    func step(_ j: SQLiteJournal, _ run: String, _ argv: [String] = ["true"], status: Int32 = 0) throws {
        let s = try C.started(j.begin(C.request(run, nil, C.intent(argv))))
        try j.close(run: run, step: s.step, intentSeq: s.seq, result: C.closeValue(status))
    }

    @Test("lanes writers keep the verified epoch; a write from outside starts a new one and the run is checked again")
    func seal() throws {
        let dir = try LanesCLI.temporaryDirectory("journal-seal")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/j.sqlite"
        let first = try SQLiteJournal(path: path)
        try step(first, "r")
        let e1 = try #require(try epoch(first, "r"))
        #expect(try sealedEpoch(first) == e1)
        // Another writer (a new process opens its own journal): same epoch, no re-verification.
        let second = try SQLiteJournal(path: path)
        try step(second, "r")
        #expect(try epoch(second, "r") == e1)
        // A write that does not go through the journal's writers: a new epoch, the run is
        // verified in full before the next append (and it is sound, so the append happens).
        try first.databaseQueue().write { try $0.execute(sql: "CREATE TABLE notes (x)") }
        try step(second, "r")
        let e2 = try #require(try epoch(second, "r"))
        #expect(e2 != e1)
        #expect(try sealedEpoch(second) == e2)
        // A changed record in the middle is found by the next append, which is refused.
        try first.databaseQueue().write { db in
            try db.execute(sql: "DROP TRIGGER records_append_only_update")
            try db.execute(sql: "UPDATE records SET body = replace(body, 'true', 'false') WHERE run = 'r' AND seq = 2")
        }
        let before = try second.records(run: "r").count
        #expect(throws: JournalError(.broken, "")) { try second.begin(C.request("r", nil, C.intent())) }
        #expect(try second.records(run: "r").count == before)
        do { _ = try second.begin(C.request("r", nil, C.intent())) } catch {
            #expect(error.description.contains("record 2"), "\(error.description)")
        }
    }

    @Test("the kept state equals a fold of the records, also when a piece of a shared commit fails")
    func keptStateUnderGroupCommit() throws {
        let dir = try LanesCLI.temporaryDirectory("journal-kept")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try SQLiteJournal(path: dir + "/j.sqlite")
        let errors = Counter()
        onThreads(6) { w in
            for i in 0..<30 {
                do {
                    let s = try C.started(journal.begin(C.request("k", nil, C.intent(["w\(w)", "\(i % 4)"]))))
                    let close = C.closeValue(i % 3 == 0 ? 1 : 0)
                    // Every fifth step, a piece that changes the run (a decision appended, an
                    // ordinal taken) and then fails: inside a shared commit it must leave nothing
                    // behind, in the database or in the run state the commit's pieces share.
                    if i % 5 == 0 {
                        _ = try? journal.transact(run: "k") { tx -> Int in
                            try tx.append(Decision(action: .halted, by: "test", reason: "rolled back"), step: nil)
                            _ = try tx.reserveOrdinal()
                            throw GovernanceError("fails after changing the run")
                        }
                    }
                    try journal.close(run: "k", step: s.step, intentSeq: s.seq, result: close)
                } catch { errors.add("\(error)") }
            }
        }
        #expect(errors.values.isEmpty)
        let records = try journal.records(run: "k")
        #expect(try journal.verify(run: "k") == nil)
        let kept = try #require(try journal.keptState(run: "k"))
        #expect(kept == RunState(records))
        #expect(kept.usage.steps == 180 && kept.usage.failedSteps == 60)
        #expect(kept.governance.halted == nil && !records.contains { $0.kind == .decision })
        #expect(records.filter { $0.kind == .intent }.compactMap(\.step).sorted { Int($0)! < Int($1)! } == (1...180).map(String.init))
        #expect(try journal.checkKeptState(run: "k", records: records) == nil)
    }

    @Test("a kept state changed outside lanes is reported by verify and rebuilt by the next append")
    func keptStateTampered() throws {
        let dir = try LanesCLI.temporaryDirectory("journal-kept-tamper")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try SQLiteJournal(path: dir + "/j.sqlite")
        for i in 0..<3 { try step(journal, "t", ["x", "\(i)"], status: 1) }
        var forged = try #require(try journal.keptState(run: "t"))
        forged.usage.steps = 0
        forged.usage.failedSteps = 0
        let body = forged.storageText
        try journal.databaseQueue().write { try $0.execute(sql: "UPDATE runs SET state = ? WHERE id = 't'", arguments: [body]) }
        let problem = try journal.checkKeptState(run: "t", records: journal.records(run: "t"))
        #expect(problem?.message.contains("kept beside the head") == true)
        try step(journal, "t", ["x", "3"])
        #expect(try journal.checkKeptState(run: "t", records: journal.records(run: "t")) == nil)
        #expect(try journal.keptState(run: "t")?.usage.steps == 4)
    }

    @Test("a journal of schema v1 is upgraded and its runs' state rebuilt; a newer schema is refused")
    func upgrade() throws {
        let dir = try LanesCLI.temporaryDirectory("journal-upgrade")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/j.sqlite"
        do {
            let j = try SQLiteJournal(path: path)
            for i in 0..<3 { try step(j, "old", ["y", "\(i)"], status: 1) }
            // Back to what the first schema left on disk.
            try j.databaseQueue().writeWithoutTransaction { db in
                try db.execute(sql: """
                    DROP TABLE intent_keys;
                    ALTER TABLE runs DROP COLUMN state;
                    ALTER TABLE runs DROP COLUMN state_seq;
                    ALTER TABLE runs DROP COLUMN verified_epoch;
                    DELETE FROM grdb_migrations WHERE identifier LIKE 'v2%';
                    PRAGMA user_version = 0;
                    """)
            }
        }
        let j = try SQLiteJournal(path: path)
        #expect(try j.databaseQueue().read { try Int.fetchOne($0, sql: "PRAGMA user_version") } == SQLiteJournal.schemaVersion)
        #expect(try j.keptState(run: "old") == nil)
        try step(j, "old", ["y", "3"], status: 1)
        let kept = try #require(try j.keptState(run: "old"))
        #expect(kept == RunState(try j.records(run: "old")))
        #expect(kept.usage.steps == 4 && kept.usage.failedSteps == 4)
        #expect(try j.verify(run: "old") == nil)
        try j.databaseQueue().writeWithoutTransaction { try $0.execute(sql: "PRAGMA user_version = 99") }
        #expect {
            _ = try SQLiteJournal(path: path)
        } throws: { error in
            (error as? JournalError)?.description.contains("schema version 99") == true
        }
    }
}
