import Foundation
import GRDB
@testable import LaneJournal
import LaneTestSupport
import Testing

@Suite("A damaged journal", .serialized)
struct CorruptionTests {
    func fixtureWithRun(_ name: String) throws -> Fixture {
        let f = try Fixture(name)
        for i in 1...3 { #expect(try f.run("plain", ["--run", "r"], ["echo", "\(i)"]).status == 0) }
        #expect(try f.lanes(["verify", "r"]).status == 0)
        return f
    }

    func tamper(_ f: Fixture, _ sql: String) throws {
        let j = try SQLiteJournal(path: f.state + "/journal.sqlite")
        try j.databaseQueue().write { db in
            try db.execute(sql: "DROP TRIGGER records_append_only_update; DROP TRIGGER records_append_only_delete")
            try db.execute(sql: sql)
        }
    }

    @Test("a flipped byte: verify names the record; run refuses to append")
    func flippedByte() throws {
        let f = try fixtureWithRun("flip")
        defer { f.cleanup() }
        try tamper(f, "UPDATE records SET body = replace(body, '\"echo\",\"2\"', '\"echo\",\"3\"') WHERE run = 'r' AND seq = 4")
        let v = try f.lanes(["verify"])
        #expect(v.status == 1)
        #expect(v.stderr.contains("run r: record 4"))
        let before = try f.log("r").count
        let run = try f.run("plain", ["--run", "r"], ["echo", "4"])
        #expect(run.status == 74)
        #expect(run.stderr.contains("broken"))
        #expect(try f.log("r").count == before)
        let json = try f.lanes(["verify", "r", "--json"])
        #expect(Fixture.json(json.stdout)["ok"] as? Bool == false)
    }

    @Test("a deleted record: verify names where it is missing")
    func deletedRecord() throws {
        let f = try fixtureWithRun("delete")
        defer { f.cleanup() }
        try tamper(f, "DELETE FROM records WHERE run = 'r' AND seq = 3")
        let v = try f.lanes(["verify", "r"])
        #expect(v.status == 1)
        #expect(v.stderr.contains("record 3") && v.stderr.contains("missing"))
        #expect(try f.run("plain", ["--run", "r"], ["echo", "4"]).status == 74)
    }

    @Test("a truncated journal file: verify and run fail loudly")
    func truncated() throws {
        let f = try fixtureWithRun("truncate")
        defer { f.cleanup() }
        // Fold the WAL into the main file, then cut it.
        try SQLiteJournal(path: f.state + "/journal.sqlite").checkpoint()
        let path = f.state + "/journal.sqlite"
        let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(truncate(path, off_t(size / 2)) == 0)
        let v = try f.lanes(["verify"])
        #expect(v.status != 0)
        #expect(!v.stderr.isEmpty)
        let run = try f.run("plain", ["--run", "r"], ["echo", "4"])
        #expect(run.status == 74, "\(run.stderr)")
    }
}
