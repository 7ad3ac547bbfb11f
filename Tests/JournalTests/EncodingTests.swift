import Foundation
@testable import LaneJournal
import LaneModel
import Testing

/// The hand-written encodings of the journal's hot path read back exactly.
@Suite("Journal encodings")
struct EncodingTests {
    static let awkward = ["", "plain", "\u{301}combining first", "x \u{301}after a space", "with space", "quote \" and \\ backslash", "new\nline\ttab\r", "\u{01}\u{1f}ctl", "ünïcödé ✓ 𝄞", "/slash/"]

    func sup() -> Supervisor { Supervisor(pid: 42, startTime: 123_456_789_012, bootID: "b-1", host: "h \"x\"") }

    @Test("intent and close bodies decode to the same values; keys come sorted")
    func bodies() throws {
        for (n, s) in Self.awkward.enumerated() {
            let intent = StepIntent(lane: s, argv: Self.awkward, cwd: "/w/\(s)", environment: [s, "B"], credentials: Self.awkward,
                                    profile: s, profileFingerprint: "fp", limits: [s: 1.5, "wall_seconds": 600, "tiny": 1e-7, "big": 5e20],
                                    supervisor: sup(), idempotent: n % 2 == 0)
            let ib = try CanonicalBody.intent(intent)
            #expect(try JSONDecoder().decode(StepIntent.self, from: Data(ib.utf8)) == intent)
            var close = StepResult(lane: s, profile: s, profileFingerprint: "fp", outcome: Outcome.allCases[n % Outcome.allCases.count],
                                   exitCode: n % 2 == 0 ? nil : -1, signal: n % 3 == 0 ? 9 : nil,
                                   wallMs: 1234.5678 * Double(n), cpuMs: 0.1 + Double(n),
                                   maxRssKb: 10 * n, stdout: Array(s.utf8), stderr: (0..<n * 7).map { UInt8($0 * 37 & 0xff) },
                                   stdoutTruncated: n % 2 == 0, stderrTruncated: true, protections: Self.awkward,
                                   error: n % 2 == 0 ? nil : s)
            close.limit = n % 2 == 0 ? .memory : nil
            close.memoryPeakBytes = n % 2 == 0 ? 67_108_864 : nil
            let cb = CanonicalBody.close(close, intentSeq: 7 + n)
            // The stored result is the reported JSON, byte for byte; the output bytes come back
            // exactly even when they are not UTF-8 (kept beside the JSON).
            let record = JournalRecord(run: "r", seq: 2, kind: .close, step: "1", at: 0, body: cb, prevHash: "", hash: "")
            #expect(record.closeJSON == close.json())
            let back = try #require(record.close)
            #expect(back.json() == close.json())
            #expect(back.stdout == close.stdout && back.stderr == close.stderr)
            #expect(JournalRecord(run: "r", seq: 2, kind: .close, step: "1", at: 0, body: cb, prevHash: "", hash: "").closesSeq == 7 + n)
            // Sorted keys at the top level, as with JSONEncoder's .sortedKeys.
            let keys = try #require(try JSONSerialization.jsonObject(with: Data(cb.utf8)) as? [String: Any]).keys
            let order = keys.map { k in cb.range(of: "\"\(k)\":")!.lowerBound }
            #expect(zip(keys, order).sorted { $0.1 < $1.1 }.map(\.0) == keys.sorted())
        }
        let opened = CanonicalBody.runOpened(RunOpened(lane: "l \"q\"", supervisor: sup()))
        #expect(try JSONDecoder().decode(RunOpened.self, from: Data(opened.utf8)) == RunOpened(lane: "l \"q\"", supervisor: sup()))
    }

    @Test("record times are printed exactly as %.6f was (the hashes of existing journals depend on it)")
    func sixDecimals() {
        var g = SystemRandomNumberGenerator()
        var values: [Double] = [0, 1, 0.5, 1_795_398_885.711107, 1_795_398_885.7111075, 123.0000005, 1e-7, 9.9999995, 1e15 + 0.25]
        for _ in 0..<2000 { values.append(Double.random(in: 1.6e9...1.9e9, using: &g)) }
        for v in values { #expect(JournalRecord.sixDecimals(v) == String(format: "%.6f", v), "\(v)") }
    }

    @Test("the kept run state round-trips through its text form, awkward names included")
    func stateText() throws {
        var state = RunState()
        state.seq = 99
        state.usage.steps = 12
        state.usage.wallSeconds = 1.25e-3
        state.usage.cpuSeconds = 7.0 / 3.0
        state.usage.outputBytes = 1e12
        state.usage.failedSteps = 3
        state.governance.lane = "lane with space\\and\nnewline"
        state.governance.openedAt = 1_795_398_885.711107
        for (i, s) in Self.awkward.enumerated() { state.outcomes[s.isEmpty ? "exited" : s] = RunState.FirstSeen(seq: i, step: s) }
        #expect(RunState(storageText: state.storageText) == state)
        state.loop = RunState.LoopStreak(failures: 2, intent: StepIntent(lane: "l", argv: ["a b"], cwd: "/", environment: [], credentials: [],
                                                                      profile: "p", profileFingerprint: "f", limits: [:], supervisor: sup()))
        state.governance.apply(Decision(action: .halted, by: "lanes", reason: "r", supervisor: sup()), seq: 50, at: 1)
        state.governance.apply(Decision(action: .resumed, by: "ann", raises: ["max_steps": 10], supervisor: sup()), seq: 51, at: 2)
        #expect(RunState(storageText: state.storageText) == state)
        #expect(RunState(storageText: "lanes-run-state 1\nseq 1") == nil)
        #expect(RunState(storageText: "{\"seq\":1}") == nil)
        #expect(RunState(storageText: state.storageText + "\nunknown 1") == nil)
    }
}
