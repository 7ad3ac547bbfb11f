@testable import LaneJournal
import Foundation
import GRDB
import LaneState
import LaneTestSupport
import Testing

@Suite("SQLite journal store")
struct StoreTests {
    @Test("passes the JournalStore conformance suite")
    func conformance() throws {
        let dir = try LanesCLI.temporaryDirectory("journal-conformance")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try JournalConformance.all { name in try SQLiteJournal(path: dir + "/" + name + ".sqlite") }
    }

    @Test("state directory: resolution order, created 0700, tightened when too open")
    func stateDirectory() throws {
        #expect(StateDirectory.resolve(explicit: "/x", environment: ["LANES_STATE": "/y"], uid: 1000) == "/x")
        #expect(StateDirectory.resolve(explicit: nil, environment: ["LANES_STATE": "/y", "XDG_STATE_HOME": "/z"], uid: 1000) == "/y")
        #expect(StateDirectory.resolve(explicit: nil, environment: ["XDG_STATE_HOME": "/z"], uid: 0) == "/z/lanes")
        #expect(StateDirectory.resolve(explicit: nil, environment: [:], uid: 0) == "/var/lib/lanes")
        #expect(StateDirectory.resolve(explicit: nil, environment: ["HOME": "/home/a"], uid: 1000) == "/home/a/.local/state/lanes")
        let base = try LanesCLI.temporaryDirectory("state")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let state = try StateDirectory(path: base + "/new/state")
        #expect(mode(state.path) == 0o700)
        #expect(chmod(state.path, 0o755) == 0)
        _ = try StateDirectory(path: state.path)
        #expect(mode(state.path) == 0o700)
        #expect(mode(base + "/new") == 0o700)  // every directory it makes is private
        // A file in the way: refused, naming the state directory and the path that failed.
        #expect(FileManager.default.createFile(atPath: base + "/file", contents: Data("x".utf8)))
        do {
            _ = try StateDirectory(path: base + "/file/state")
            Issue.record("a state directory under a regular file was accepted")
        } catch {
            #expect(error.message.contains("cannot create the state directory \(base)/file/state: Not a directory"),
                    "\(error.message)")
        }
        #expect(throws: JournalError.self) { try StateDirectory(path: base + "/file") }
    }

    @Test("WAL, synchronous=FULL, append-only triggers")
    func pragmas() throws {
        let dir = try LanesCLI.temporaryDirectory("journal-pragmas")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try SQLiteJournal(path: dir + "/j.sqlite")
        _ = try journal.begin(JournalConformance.request("r", nil, JournalConformance.intent()))
        let (mode, sync) = try journal.databaseQueue().read { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode"), try Int.fetchOne(db, sql: "PRAGMA synchronous"))
        }
        #expect(mode == "wal")
        #expect(sync == 2)  // FULL
        #expect(throws: (any Error).self) { try journal.databaseQueue().write { try $0.execute(sql: "UPDATE records SET body = 'x'") } }
        #expect(throws: (any Error).self) { try journal.databaseQueue().write { try $0.execute(sql: "DELETE FROM records") } }
    }

    @Test("a run's step ids in order of their intents, and the records of chosen steps only")
    func recentSteps() throws {
        let dir = try LanesCLI.temporaryDirectory("journal-steps")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try SQLiteJournal(path: dir + "/j.sqlite")
        #expect(try journal.stepIDs(run: "r") == [])
        for argv in [["a"], ["b"], ["c"]] {
            _ = try JournalConformance.started(journal.begin(JournalConformance.request("r", nil, JournalConformance.intent(argv))))
        }
        _ = try JournalConformance.started(journal.begin(JournalConformance.request("r", "z", JournalConformance.intent(["d"]))))
        _ = try JournalConformance.started(journal.begin(JournalConformance.request("other", nil, JournalConformance.intent())))
        #expect(try journal.stepIDs(run: "r") == ["1", "2", "3", "z"])
        let chosen = try journal.records(run: "r", steps: ["2", "z"])
        #expect(chosen.map(\.step) == ["2", "z"] && chosen.map(\.kind) == [.intent, .intent])
        #expect(try journal.records(run: "r", steps: []) == [])
    }

    @Test("verify names a changed record, a deleted record and a dropped tail; appends are refused")
    func tampering() throws {
        let dir = try LanesCLI.temporaryDirectory("journal-tamper")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func fresh(_ name: String) throws -> SQLiteJournal {
            let j = try SQLiteJournal(path: dir + "/\(name).sqlite")
            for _ in 0..<4 {
                let s = try JournalConformance.started(j.begin(JournalConformance.request("r", nil, JournalConformance.intent())))
                try j.close(run: "r", step: s.step, intentSeq: s.seq, result: JournalConformance.closeValue())
            }
            #expect(try j.verify(run: "r") == nil)
            return j
        }
        func tamper(_ j: SQLiteJournal, _ sql: String) throws {
            try j.databaseQueue().write { db in
                try db.execute(sql: "DROP TRIGGER records_append_only_update; DROP TRIGGER records_append_only_delete")
                try db.execute(sql: sql)
            }
        }
        // A flipped byte inside record 4's body.
        let flipped = try fresh("flip")
        try tamper(flipped, "UPDATE records SET body = replace(body, '\"hi', '\"hI') WHERE run = 'r' AND seq = 4")
        #expect(try flipped.verify(run: "r")?.seq == 4)
        #expect(try flipped.verify(run: "r")?.message.contains("hash mismatch") == true)
        // A deleted record in the middle.
        let deleted = try fresh("delete")
        try tamper(deleted, "DELETE FROM records WHERE run = 'r' AND seq = 5")
        #expect(try deleted.verify(run: "r")?.seq == 5)
        // The last record dropped: the head remembers.
        let dropped = try fresh("tail")
        try tamper(dropped, "DELETE FROM records WHERE run = 'r' AND seq = 9")
        #expect(try dropped.verify(run: "r")?.seq == 9)
        #expect(throws: JournalError(.broken, "")) {
            try dropped.begin(JournalConformance.request("r", nil, JournalConformance.intent()))
        }
        #expect(try dropped.records(run: "r").count == 8)
    }

    @Test("8 in-process writers share commits (group commit) and every append is in the chain")
    func groupCommit() throws {
        let dir = try LanesCLI.temporaryDirectory("journal-group")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try SQLiteJournal(path: dir + "/j.sqlite")
        let errors = Counter()
        onThreads(8) { w in
            for i in 0..<40 {
                do {
                    let s = try JournalConformance.started(journal.begin(JournalConformance.request("g", nil, JournalConformance.intent(["w\(w)", "\(i)"]))))
                    try journal.close(run: "g", step: s.step, intentSeq: s.seq, result: JournalConformance.closeValue())
                } catch { errors.add("\(error)") }
            }
        }
        #expect(errors.values.isEmpty)
        let stats = journal.commitStatistics
        #expect(stats.work == 8 * 40 * 2)
        #expect(stats.transactions < stats.work, "no commit carried more than one append")
        #expect(try journal.records(run: "g").count == 1 + 8 * 40 * 2)
        #expect(try journal.verify(run: "g") == nil)
    }

    @Test("concurrent first opens migrate once")
    func concurrentOpen() throws {
        let dir = try LanesCLI.temporaryDirectory("journal-open")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let errors = Counter()
        onThreads(6) { _ in
            do { _ = try SQLiteJournal(path: dir + "/j.sqlite") } catch { errors.add("\(error)") }
        }
        #expect(errors.values.isEmpty)
    }

    @Test("the secret store keeps 0600 files in a 0700 directory and lists names only")
    func secrets() throws {
        let dir = try LanesCLI.temporaryDirectory("secrets")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = SecretStore(state: try StateDirectory(path: dir + "/state"))
        try store.set("tok", value: Array("s3cr3t".utf8))
        try store.set("tok", value: Array("s3cr3t-2".utf8))
        #expect(try store.get("tok") == Array("s3cr3t-2".utf8))
        #expect(try store.list().map(\.name) == ["tok"])
        #expect(mode(store.directory) == 0o700)
        #expect(mode(store.directory + "/tok") == 0o600)
        #expect(throws: JournalError.self) { try store.set("../evil", value: [1]) }
        #expect(try store.remove("tok"))
        #expect(try store.get("tok") == nil)
        #expect(try !store.remove("tok"))
    }
}

func mode(_ path: String) -> mode_t {
    var st = stat()
    return stat(path, &st) == 0 ? st.st_mode & 0o7777 : 0
}
