// journal-bench: in-process benchmark of journal appends (issue 4, "Performance").
//
// Built only when LANES_BENCH is set (see the end of Package.swift), so normal builds stay fast:
//   LANES_BENCH=1 swift build -c release --product journal-bench
//   .build/release/journal-bench [WRITERS] [STEPS_PER_WRITER] [DIR]
//
// Measures, on a fresh journal in DIR (default: a directory under /var/tmp, which is on disk;
// /tmp may be tmpfs where fsync is free):
// 1. one writer, one step at a time: intent + close latency (two durable commits) — the
//    journal's share of a `lanes run`, plus the per-invocation open and chain check;
// 2. WRITERS threads appending steps to one run at once: steps/s (intent + close), durable
//    (synchronous=FULL; group commit — a caller returns only after its commit is on disk).
import Foundation
import LaneJournal

let args = CommandLine.arguments
let writers = args.count > 1 ? Int(args[1]) ?? 8 : 8
let perWriter = args.count > 2 ? Int(args[2]) ?? 500 : 500
let base = args.count > 3 ? args[3] : "/var/tmp/journal-bench-\(getpid())"
try? FileManager.default.removeItem(atPath: base)
try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: base) }

func intent(_ i: Int) -> StepIntent {
    StepIntent(lane: "bench", argv: ["true", String(i)], cwd: "/w", environment: ["HOME", "PATH"], credentials: [],
               profile: "workspace-write", profileFingerprint: String(repeating: "a", count: 64),
               limits: ["wall_seconds": 600], supervisor: .current)
}
let close = StepClose(outcome: "exited", exitStatus: 0, exitCode: 0, signal: nil, limit: nil, wallMs: 1, cpuMs: 1,
                      maxRssKb: 1000, stdout: Data("ok\n".utf8), stderr: Data(), stdoutTruncated: false,
                      stderrTruncated: false, protections: [], error: nil, profile: "workspace-write",
                      profileFingerprint: String(repeating: "a", count: 64))

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
func percentile(_ xs: [Double], _ p: Double) -> Double { xs.sorted()[min(xs.count - 1, Int(Double(xs.count) * p))] }

// 1. Latency of one step, as one `lanes run` process does it: open, check the run's chain,
//    begin (intent, durable), close (durable).
do {
    var beginClose: [Double] = [], whole: [Double] = []
    let path = base + "/latency.sqlite"
    for i in 0..<300 {
        let t0 = now()
        let journal = try SQLiteJournal(path: path)
        _ = try journal.verify(run: "lat")
        let t1 = now()
        guard case let .started(step, seq, _) = try journal.begin(BeginRequest(run: "lat", step: nil, intent: intent(i), retryAllowed: false, isAlive: { $0.isAlive })) else { fatalError("not started") }
        try journal.close(run: "lat", step: step, intentSeq: seq, result: close)
        let t2 = now()
        beginClose.append((t2 - t1) * 1000)
        whole.append((t2 - t0) * 1000)
    }
    print(String(format: "single writer: intent+close median %.3f ms (p90 %.3f ms); with open + chain check median %.3f ms (p90 %.3f ms)",
                 median(beginClose), percentile(beginClose, 0.9), median(whole), percentile(whole, 0.9)))
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
