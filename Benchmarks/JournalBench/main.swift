// journal-bench: in-process benchmark of the journal (issue 4, "Performance").
//
// Built only when LANES_BENCH is set (see the end of Package.swift), so normal builds stay fast:
//   LANES_BENCH=1 swift build -c release --product journal-bench
//   .build/release/journal-bench [WRITERS] [STEPS_PER_WRITER] [DIR]
//   .build/release/journal-bench step|open|nostep JOURNAL RUN   (one process per step)
//
// Measures, on fresh journals in DIR (default: a directory under /var/tmp, which is on disk;
// /tmp may be tmpfs where fsync is free):
// 1. the journal's share of one `lanes run`, as `lanes run` does it: open the journal (a new
//    process every time), the governed begin (budgets, loops, halt_on of a lane configured like
//    the shipped ones; the intent, durable), the close with the after-step check (durable) —
//    on a run that is new, and at 1,000 and 2,000 steps (the cost must not grow with the run);
// 2. WRITERS threads appending steps to one run at once: steps/s (intent + close), durable
//    (synchronous=FULL; group commit — a caller returns only after its commit is on disk).
import Foundation
import LaneJournal
import LaneModel

let args = CommandLine.arguments

func intent(_ i: Int) -> StepIntent {
    StepIntent(lane: "bench", argv: ["true", String(i)], cwd: "/w", environment: ["HOME", "PATH"], credentials: [],
               profile: "workspace-write", profileFingerprint: String(repeating: "a", count: 64),
               limits: ["wall_seconds": 600], supervisor: .current)
}
let close = StepClose(outcome: "exited", exitStatus: 0, exitCode: 0, signal: nil, limit: nil, wallMs: 1, cpuMs: 1,
                      maxRssKb: 1000, stdout: Data("ok\n".utf8), stderr: Data(), stdoutTruncated: false,
                      stderrTruncated: false, protections: [], error: nil, profile: "workspace-write",
                      profileFingerprint: String(repeating: "a", count: 64))

/// A lane governed like the shipped ones: every budget, loop detection, halt_on, a review rule.
let lane: Lane = {
    var l = Lane(name: "bench", description: "bench", owner: "bench", profile: "workspace-write")
    l.budget = Lane.Budget(limits: ["max_steps": 1_000_000, "max_wall": 1e9, "max_cpu": 1e9, "max_output": 1e12,
                                    "max_failed_steps": 1e6, "max_run_age": 1e9, "loop_failures": 3, "loop_repeats": 20])
    l.haltOn = ["seccomp_violation"]
    return l
}()

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
func percentile(_ xs: [Double], _ p: Double) -> Double { xs.sorted()[min(xs.count - 1, Int(Double(xs.count) * p))] }

/// One step as `lanes run` records it; returns (open, begin+close+after) in ms.
func lanesRunStep(path: String, run: String, i: Int) throws -> (open: Double, step: Double) {
    let t0 = now()
    let journal = try SQLiteJournal(path: path)
    let t1 = now()
    let request = BeginRequest(run: run, step: nil, intent: intent(i), retryAllowed: false, isAlive: { $0.isAlive })
    let decision = try journal.transact(run: run) { tx in try Governance.begin(tx, request: request, lane: lane, effect: nil) }
    guard case let .journal(.started(step, seq, _)) = decision else { fatalError("not started: \(decision)") }
    _ = try journal.transact(run: run) { tx in
        try tx.close(step: step, intentSeq: seq, result: close)
        return try Governance.afterStep(tx, lane: lane)
    }
    return ((t1 - t0) * 1000, (now() - t1) * 1000)
}

// `journal-bench step PATH RUN` / `journal-bench nostep PATH RUN`: one step per process, as
// `lanes run` does it (scripts/bench.d/journal.sh runs both under hyperfine; the difference is
// the journal's share of a step, including what a fresh process pays on first use).
if args.count == 4, ["step", "nostep", "open"].contains(args[1]) {
    let i = Int(getpid())
    switch args[1] {
    case "step": _ = try lanesRunStep(path: args[2], run: args[3], i: i)
    case "open": _ = (try SQLiteJournal(path: args[2]), intent(i))
    default: _ = intent(i)
    }
    exit(0)
}

let writers = args.count > 1 ? Int(args[1]) ?? 8 : 8
let perWriter = args.count > 2 ? Int(args[2]) ?? 500 : 500
let base = args.count > 3 ? args[3] : "/var/tmp/journal-bench-\(getpid())"
try? FileManager.default.removeItem(atPath: base)
try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: base) }

// 1. The journal's share of one `lanes run`.
if ProcessInfo.processInfo.environment["JOURNAL_BENCH_ONLY"] != "throughput" {
    let path = base + "/latency.sqlite"
    // A new run per step (what `lanes run` without --run does).
    var opens: [Double] = [], steps: [Double] = []
    for i in 0..<300 {
        let (o, s) = try lanesRunStep(path: path, run: "fresh-\(i)", i: i)
        opens.append(o)
        steps.append(s)
    }
    print(String(format: "lanes run's journal work, new run: open %.3f ms + governed intent/close/after-step %.3f ms (p90 %.3f) = %.3f ms median",
                 median(opens), median(steps), percentile(steps, 0.9), median(zip(opens, steps).map { $0 + $1 })))
    // One long run: the cost at 1,000 and 2,000 steps.
    var at: [Int: [Double]] = [:]
    let long = Int(ProcessInfo.processInfo.environment["JOURNAL_BENCH_LONG"] ?? "") ?? 2000
    for i in 1...max(1, long) {
        let (o, s) = try lanesRunStep(path: path, run: "long", i: i)
        if i > 900 && i <= 1000 { at[1000, default: []].append(o + s) }
        if i > 1900 && i <= 2000 { at[2000, default: []].append(o + s) }
    }
    print(String(format: "lanes run's journal work in a long run: %.3f ms median at ~1,000 steps, %.3f ms at ~2,000 steps",
                 at[1000].map(median) ?? 0, at[2000].map(median) ?? 0))
    let journal = try SQLiteJournal(path: path)
    print("long run's chain: \(try journal.verify(run: "long").map { "BROKEN: \($0)" } ?? "verifies"); kept state matches a fold of the records: \(try journal.keptState(run: "long") == RunState(try journal.records(run: "long")))")
}

// 2. Throughput with concurrent writers on one run.
do {
    let journal = try SQLiteJournal(path: base + "/throughput.sqlite")
    let failures = NSLock()
    nonisolated(unsafe) var failed = 0
    let t0 = now()
    // Dedicated threads: concurrentPerform would run only as many writers as there are cores.
    let done = DispatchSemaphore(value: 0)
    for w in 0..<writers { Thread {
        for i in 0..<perWriter {
            do {
                guard case let .started(step, seq, _) = try journal.begin(BeginRequest(run: "tp", step: nil, intent: intent(w * perWriter + i), retryAllowed: false, isAlive: { $0.isAlive })) else { throw CancellationError() }
                try journal.close(run: "tp", step: step, intentSeq: seq, result: close)
            } catch {
                failures.lock(); failed += 1; failures.unlock()
            }
        }
        done.signal()
    }.start() }
    for _ in 0..<writers { done.wait() }
    let elapsed = now() - t0
    let steps = writers * perWriter
    let problem = try journal.verify(run: "tp")
    let stats = journal.commitStatistics
    print(String(format: "%d writers × %d steps: %.0f steps/s (intent + close, durable), %.2f s, %d failures, chain %@; %d transactions for %d appends (%.1f per commit)",
                 writers, perWriter, Double(steps) / elapsed, elapsed, failed, problem == nil ? "verifies" : "BROKEN",
                 stats.transactions, stats.work, Double(stats.work) / Double(max(1, stats.transactions))))
}
