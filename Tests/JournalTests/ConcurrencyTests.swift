import Foundation
import LaneTestSupport
import Testing

@Suite("Concurrent and crashing supervisors", .serialized)
struct ConcurrencyTests {
    @Test("8 processes × 100 steps on one run: 800 closes, ordinals 1…800 once each, no lock errors")
    func parallel() throws {
        let f = try Fixture("parallel")
        defer { f.cleanup() }
        let run = "par"
        let failures = Counter()
        onThreads(8) { w in
            for i in 0..<100 {
                do {
                    let out = try f.run("plain", ["--run", run], ["true", "w\(w)-\(i)"])
                    if out.status != 0 || out.stderr.localizedCaseInsensitiveContains("locked") || out.stderr.localizedCaseInsensitiveContains("busy") {
                        failures.add("w\(w) i\(i): status \(out.status): \(out.stderr)")
                    }
                } catch { failures.add("\(error)") }
            }
        }
        #expect(failures.values.isEmpty, "\(failures.values.prefix(5))")
        let records = try f.log(run)
        let closes = records.filter { $0["kind"] as? String == "close" }
        #expect(closes.count == 800)
        let steps = closes.compactMap { ($0["step"] as? String).flatMap { Int($0) } }.sorted()
        #expect(steps == Array(1...800))
        #expect(records.compactMap { $0["seq"] as? Int } == Array(1...1601))
        let verify = try f.lanes(["verify", run])
        #expect(verify.status == 0, "\(verify.stderr)")
    }

    @Test("crash loop: SIGKILL at random moments (≥ 200 kills); no completed step runs twice, acknowledged results survive, chains verify")
    func crashLoop() throws {
        let f = try Fixture("crash", lanes: ["plain": "", "safe": "retry = \"safe\""])
        defer { f.cleanup() }
        let side = f.workspace + "/side-effects"
        var kills = 0
        var runIndex = 0
        var generator = SystemRandomNumberGenerator()
        var acknowledged: [String: Set<Int>] = [:]  // run → steps acknowledged with status 0
        var inDoubt: [String: Set<Int>] = [:]        // run → steps left in doubt (plain lane)
        var retried: [String: Set<Int>] = [:]        // run → steps re-run after being in doubt (safe lane)
        var lanesOf: [String: String] = [:]
        let started = Date()
        // Kill delays are spread over a whole `lanes run` as measured here (the machine may be
        // loaded), so kills land before the intent, between intent and close, and after.
        var typical = 0.05
        do {
            let t0 = Date()
            #expect(try f.run("plain", ["--run", "calibrate"], ["true"]).status == 0)
            typical = max(0.02, Date().timeIntervalSince(t0))
        }
        while kills < 200 && Date().timeIntervalSince(started) < 150 {
            runIndex += 1
            let run = "crash-\(runIndex)"
            let lane = runIndex % 2 == 1 ? "plain" : "safe"
            lanesOf[run] = lane
            for step in 1...30 where kills < 200 {
                let cmd = ["sh", "-c", "echo \(run)/\(step) >> \(side)"]
                let args = ["run", lane, "--workspace", f.workspace, "--run", run, "--step", String(step), "--"] + cmd
                let p = try f.spawn(args)
                usleep(UInt32(Double.random(in: 0...1.2, using: &generator) * typical * 1_000_000))
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                if p.terminationReason == .uncaughtSignal {
                    kills += 1
                } else {
                    #expect(p.terminationStatus == 0)
                    acknowledged[run, default: []].insert(step)
                }
                // Resume: the same invocation again, to completion.
                let resumed = try f.lanes(args)
                switch resumed.status {
                case 0:
                    acknowledged[run, default: []].insert(step)
                    if resumed.stderr.contains("was in doubt") { retried[run, default: []].insert(step) }
                case 76:
                    #expect(lane == "plain")
                    inDoubt[run, default: []].insert(step)
                default:
                    Issue.record("resume of \(run)/\(step): status \(resumed.status): \(resumed.stderr)")
                }
                // Now and then replay an earlier step: it must not run again.
                if step > 1 && Bool.random(using: &generator) {
                    let earlier = Int.random(in: 1..<step, using: &generator)
                    let replay = try f.lanes(["run", lane, "--workspace", f.workspace, "--run", run, "--step", String(earlier), "--",
                                              "sh", "-c", "echo \(run)/\(earlier) >> \(side)"])
                    #expect(replay.status == (inDoubt[run]?.contains(earlier) == true ? 76 : 0))
                }
            }
        }
        #expect(kills >= 200)
        let text = (try? String(contentsOfFile: side, encoding: .utf8)) ?? ""
        var executions: [String: Int] = [:]
        for line in text.split(separator: "\n") { executions[String(line), default: 0] += 1 }
        for (run, lane) in lanesOf {
            let records = try f.log(run)
            let closed = Set(records.filter { $0["kind"] as? String == "close" }.compactMap { ($0["step"] as? String).flatMap { Int($0) } })
            for step in acknowledged[run] ?? [] {
                #expect(closed.contains(step), "acknowledged \(run)/\(step) has no close record")
            }
            for step in closed {
                let n = executions["\(run)/\(step)"] ?? 0
                let wasRetried = retried[run]?.contains(step) == true
                // A completed step ran once; one re-run after being in doubt may add one more.
                #expect(n <= (wasRetried ? 2 : 1), "\(run)/\(step) ran \(n) times")
                #expect(n >= 1, "\(run)/\(step) closed but never ran")
            }
            for step in inDoubt[run] ?? [] {
                #expect(lane == "plain")
                #expect((executions["\(run)/\(step)"] ?? 0) <= 1, "in-doubt \(run)/\(step) was re-run")
                #expect(!closed.contains(step))
            }
        }
        let verify = try f.lanes(["verify"])
        #expect(verify.status == 0, "\(verify.stderr)")
        print("crash loop: \(kills) kills over \(runIndex) runs in \(Int(Date().timeIntervalSince(started))) s; in doubt: \(inDoubt.values.map(\.count).reduce(0, +)), retried: \(retried.values.map(\.count).reduce(0, +))")
    }
}
