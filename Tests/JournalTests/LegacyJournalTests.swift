import Foundation
import LaneJournal
import LaneModel
import LaneTestSupport
import Testing

/// A journal written by the release before results were stored as reported (main at d2ecaee:
/// steps ok, fail, sig, slow, bin of run `legacy`) still reads, replays and takes new steps.
@Suite("A journal from the previous release")
struct LegacyJournalTests {
    static let fixture = LanesCLI.packageRoot.path + "/Tests/JournalTests/Fixtures/journal-d2ecaee.sqlite"

    @Test("old close records read as results; replay, verify and appends work")
    func readsOldJournal() throws {
        let dir = try LanesCLI.temporaryDirectory("legacy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: Self.fixture, toPath: dir + "/journal.sqlite")
        let journal = try SQLiteJournal(path: dir + "/journal.sqlite")
        #expect(try journal.verify(run: "legacy") == nil)
        let records = try journal.records(run: "legacy")
        let closes = Dictionary(uniqueKeysWithValues: records.compactMap { r in r.close.map { (r.step ?? "", $0) } })
        #expect(closes["ok"]?.outcome == .exited && closes["ok"]?.stdout == Array("hello\n".utf8) && closes["ok"]?.stderr == Array("warn\n".utf8))
        #expect(closes["fail"]?.exitStatus == 3)
        #expect(closes["sig"]?.outcome == .signaled && closes["sig"]?.exitStatus == 143)
        #expect(closes["slow"]?.outcome == .timedOut && closes["slow"]?.limit == .wallClock && closes["slow"]?.exitStatus == 124)
        #expect(closes["bin"]?.stdout == [0xFF, 0xFE] + Array("bin".utf8), "bytes that are not UTF-8 survive")

        // Replaying an old step with its own intent returns its result.
        let okIntent = try #require(records.first { $0.step == "ok" && $0.kind == .intent }?.intent)
        let replay = try journal.begin(BeginRequest(run: "legacy", step: "ok", intent: okIntent, retryAllowed: false, isAlive: { _ in false }))
        guard case let .replay(_, result, json) = replay else {
            Issue.record("expected a replay, got \(replay)")
            return
        }
        #expect(result.exitStatus == 0 && json.contains("\"stdout\":\"hello\\n\""))

        // A new step in the old run, in the new format; the chain still verifies.
        guard case let .started(step, seq, _) = try journal.begin(BeginRequest(run: "legacy", step: nil, intent: okIntent, retryAllowed: false, isAlive: { _ in false })) else {
            Issue.record("not started")
            return
        }
        var fresh = StepResult(lane: "engineering", profile: "workspace-write", profileFingerprint: "x", outcome: .oomKilled, stdout: Array("new".utf8))
        fresh.limit = .memory
        fresh.memoryPeakBytes = 64 << 20
        try journal.close(run: "legacy", step: step, intentSeq: seq, result: fresh)
        #expect(try journal.verify(run: "legacy") == nil)
        let reread = try #require(try journal.records(run: "legacy").last?.close)
        #expect(reread.limit == .memory && reread.memoryPeakBytes == 64 << 20)
        #expect(try journal.keptState(run: "legacy") == RunState(try journal.records(run: "legacy")))
    }
}
