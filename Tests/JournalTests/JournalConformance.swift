import Foundation
import LaneJournal
import LaneModel
import LaneState
import Testing

/// The conformance suite of the `JournalStore` contract (see JournalStore.swift). Every store
/// — SQLite today, PostgreSQL later — must pass all of it: add a `@Test` that calls
/// `JournalConformance.all(makeStore)` with a factory returning fresh, empty stores, where a
/// second call with the same argument reopens the same store.
enum JournalConformance {
    typealias Factory = @Sendable (_ name: String) throws -> any JournalStore

    static let dead = Supervisor(pid: 999_999_999, startTime: 1, bootID: "gone", host: "h")

    static func intent(_ argv: [String] = ["echo", "hi"], fingerprint: String = "fp", supervisor: Supervisor = dead) -> StepIntent {
        StepIntent(lane: "lane", argv: argv, cwd: "/w", environment: ["PATH"], credentials: [], profile: "p",
                   profileFingerprint: fingerprint, limits: ["wall_seconds": 10], supervisor: supervisor)
    }

    static func closeValue(_ status: Int32 = 0, stdout: String = "hi\n") -> StepResult {
        StepResult(lane: "lane", profile: "p", profileFingerprint: "fp", outcome: .exited, exitCode: status, wallMs: 1, cpuMs: 1,
                   maxRssKb: 1, stdout: Array(stdout.utf8))
    }

    static func request(_ run: String, _ step: String?, _ intent: StepIntent, retry: Bool = false, alive: Bool = false) -> BeginRequest {
        BeginRequest(run: run, step: step, intent: intent, retryAllowed: retry, isAlive: { _ in alive })
    }

    static func started(_ d: BeginDecision) throws -> (step: String, seq: Int, retried: Bool) {
        guard case let .started(step, seq, retried) = d else {
            Issue.record("expected .started, got \(d)")
            throw CancellationError()
        }
        return (step, seq, retried)
    }

    static func all(_ make: Factory) throws {
        try newRunAndOrdinals(make("ordinals"))
        try replayAndNondeterminism(make("replay"))
        try inDoubtAndInFlight(make("doubt"))
        try closeConflicts(make("conflict"))
        try durableAcrossReopen(make)
        try concurrentOrdinals(make("concurrent"))
        try oneWinnerPerStep(make("winner"))
    }

    /// A new run starts with its run record; steps without ids get 1, 2, 3; the chain verifies.
    static func newRunAndOrdinals(_ store: any JournalStore) throws {
        for expected in 1...3 {
            let s = try started(store.begin(request("r", nil, intent(["echo", String(expected)]))))
            #expect(s.step == String(expected))
            #expect(!s.retried)
        }
        let records = try store.records(run: "r")
        #expect(records.map(\.kind) == [.run, .intent, .intent, .intent])
        #expect(records.map(\.seq) == [1, 2, 3, 4])
        #expect(records.first?.prevHash == JournalRecord.genesis)
        #expect(try store.verify(run: "r") == nil)
        #expect(try store.head(run: "r")?.seq == 4)
        #expect(try store.runs().map(\.id) == ["r"])
        // An explicit step id is taken as is; the next ordinal skips ids that exist.
        _ = try started(store.begin(request("r", "5", intent(["x"]))))
        _ = try started(store.begin(request("r", "4", intent(["y"]))))
        #expect(try started(store.begin(request("r", nil, intent(["z"])))).step == "6")
    }

    /// Same intent after a close → replay, nothing appended; a different one → nondeterminism
    /// naming the fields.
    static func replayAndNondeterminism(_ store: any JournalStore) throws {
        let s = try started(store.begin(request("r", "a", intent())))
        let closeRecord = try store.close(run: "r", step: "a", intentSeq: s.seq, result: closeValue(3, stdout: "out"))
        #expect(closeRecord.kind == .close)
        #expect(closeRecord.closesSeq == s.seq)
        let before = try store.records(run: "r").count
        let again = try store.begin(request("r", "a", intent(supervisor: Supervisor(pid: 1, startTime: 2, bootID: "b", host: "other"))))
        #expect(again == .replay(step: "a", result: closeValue(3, stdout: "out"), json: closeValue(3, stdout: "out").json()))
        #expect(try store.begin(request("r", "a", intent(["echo", "other"]))) == .nondeterministic(step: "a", differences: ["argv"]))
        #expect(try store.begin(request("r", "a", intent(fingerprint: "changed"))) == .nondeterministic(step: "a", differences: ["profile_fingerprint"]))
        #expect(try store.records(run: "r").count == before)
        #expect(try store.verify(run: "r") == nil)
    }

    /// An intent without a close: alive → in flight; dead → in doubt unless retry is allowed,
    /// then a second intent is appended.
    static func inDoubtAndInFlight(_ store: any JournalStore) throws {
        let first = try started(store.begin(request("r", "s", intent())))
        guard case .inFlight(step: "s", _) = try store.begin(request("r", "s", intent(), alive: true)) else {
            Issue.record("expected in flight"); return
        }
        guard case .inDoubt(step: "s", _) = try store.begin(request("r", "s", intent())) else {
            Issue.record("expected in doubt"); return
        }
        #expect(try store.begin(request("r", "s", intent(["other"]))) == .nondeterministic(step: "s", differences: ["argv"]))
        let retried = try started(store.begin(request("r", "s", intent(), retry: true)))
        #expect(retried.retried)
        #expect(retried.seq > first.seq)
        // The old intent can no longer be closed; the new one can.
        #expect(throws: JournalError(.conflict, "")) { try store.close(run: "r", step: "s", intentSeq: first.seq, result: closeValue()) }
        try store.close(run: "r", step: "s", intentSeq: retried.seq, result: closeValue())
        #expect(try store.verify(run: "r") == nil)
    }

    static func closeConflicts(_ store: any JournalStore) throws {
        let s = try started(store.begin(request("r", "c", intent())))
        try store.close(run: "r", step: "c", intentSeq: s.seq, result: closeValue())
        #expect(throws: JournalError(.conflict, "")) { try store.close(run: "r", step: "c", intentSeq: s.seq, result: closeValue()) }
        #expect(throws: JournalError(.conflict, "")) { try store.close(run: "r", step: "never", intentSeq: 1, result: closeValue()) }
    }

    /// What one instance wrote, another instance opened later reads identically.
    static func durableAcrossReopen(_ make: Factory) throws {
        do {
            let store = try make("reopen")
            let s = try started(store.begin(request("r", nil, intent())))
            try store.close(run: "r", step: s.step, intentSeq: s.seq, result: closeValue())
        }
        let again = try make("reopen")
        #expect(try again.records(run: "r").map(\.kind) == [.run, .intent, .close])
        #expect(try again.verify(run: "r") == nil)
        #expect(try again.begin(request("r", "1", intent())) == .replay(step: "1", result: closeValue(), json: closeValue().json()))
    }

    /// 8 threads × 50 steps on one run: ordinals 1…400 once each, 800 step records, a sound chain.
    static func concurrentOrdinals(_ store: any JournalStore) throws {
        let errors = Counter()
        onThreads(8) { w in
            for i in 0..<50 {
                do {
                    let s = try started(store.begin(request("par", nil, intent(["w\(w)", "\(i)"]))))
                    try store.close(run: "par", step: s.step, intentSeq: s.seq, result: closeValue())
                } catch { errors.add("\(error)") }
            }
        }
        #expect(errors.values.isEmpty)
        let records = try store.records(run: "par")
        let closes = records.filter { $0.kind == .close }
        #expect(closes.count == 400)
        #expect(closes.compactMap(\.step).sorted { Int($0) ?? 0 < Int($1) ?? 0 } == (1...400).map(String.init))
        #expect(try store.verify(run: "par") == nil)
    }

    /// 8 threads begin the same step at once: exactly one runs it.
    static func oneWinnerPerStep(_ store: any JournalStore) throws {
        let outcomes = Counter()
        onThreads(8) { _ in
            do {
                let d = try store.begin(BeginRequest(run: "w", step: "same", intent: intent(supervisor: .current),
                                                     retryAllowed: false, isAlive: { $0.isAlive }))
                switch d {
                case .started: outcomes.add("started")
                case .inFlight: outcomes.add("in_flight")
                default: outcomes.add("other: \(d)")
                }
            } catch { outcomes.add("error: \(error)") }
        }
        #expect(outcomes.values.filter { $0 == "started" }.count == 1)
        #expect(outcomes.values.filter { $0 == "in_flight" }.count == 7)
    }
}

/// A thread-safe list of strings.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var values: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
