import Foundation
import LaneGovernance
import LaneTestSupport
import Testing

/// End to end through the built `lanes`: gates, budgets, loops, stop, halt_on, export.
@Suite("Governance through lanes run", .serialized)
struct GovernanceCLITests {
    @Test("engineering gates git push: 78, pending, approve, exactly once; a different argv is not approved")
    func approve() throws {
        let f = try GovFixture("approve")
        defer { f.cleanup() }
        let push = [f.git, "push", "origin", "main"]
        let first = try f.run("engineering", ["--run", "r"], push)
        #expect(first.status == 78)
        #expect(first.stderr.contains("needs approval"))
        #expect(first.stderr.contains("lanes approve r 1 --by NAME"))
        #expect(f.sideLines == 0)
        let pending = try f.lanes(["pending"])
        #expect(pending.stdout.contains("r    1     engineering"))
        #expect(pending.stdout.contains("git push *"))
        // Still waiting: asking again runs nothing and records nothing new.
        #expect(try f.run("engineering", ["--run", "r", "--step", "1"], push).status == 78)
        let approved = try f.lanes(["approve", "r", "1", "--by", "alice", "--note", "release 1.2"])
        #expect(approved.status == 0)
        #expect(try f.lanes(["pending"]).stdout.split(separator: "\n").count == 1)
        #expect(try f.lanes(["approve", "r", "1", "--by", "mallory"]).status == 1)  // already answered
        // A different argv under the approved step id is not approved.
        let other = try f.run("engineering", ["--run", "r", "--step", "1"], [f.git, "push", "--force", "origin", "main"])
        #expect(other.status == 75)
        #expect(other.stderr.contains("approval"))
        #expect(f.sideLines == 0)
        let ran = try f.run("engineering", ["--run", "r", "--step", "1"], push)
        #expect(ran.status == 0)
        #expect(f.sideLines == 1)
        let again = try f.run("engineering", ["--run", "r", "--step", "1"], push)
        #expect(again.status == 0)
        #expect(again.stderr.contains("replayed"))
        #expect(f.sideLines == 1)
        // An ungated step runs without asking; a declared irreversible effect is gated.
        #expect(try f.run("engineering", ["--run", "r"], [f.git, "status"]).status == 0)
        #expect(try f.run("engineering", ["--run", "r", "--effect", "irreversible"], ["true"]).status == 78)
        let log = try f.log("r")
        let bodies = log.filter { $0["kind"] as? String == "decision" }.compactMap { $0["body"] as? [String: Any] }
        #expect(bodies.map { $0["action"] as? String } == ["approval_requested", "approved", "approval_requested"])
        #expect((bodies[0]["intent"] as? [String: Any])?["argv"] as? [String] == push)
        #expect(bodies[0]["rule"] as? String == "command \"git push *\"")
        #expect(bodies[1]["by"] as? String == "alice" && bodies[1]["reason"] as? String == "release 1.2")
        #expect(try f.lanes(["log", "r"]).stdout.contains("approved by alice"))
        #expect(try f.lanes(["verify", "r"]).status == 0)
    }

    @Test("deny → 79 and nothing runs; expiry after a 1 s timeout → 79, recorded as expired")
    func denyAndExpire() throws {
        let f = try GovFixture("deny", lanes: ["quick": "[review]\ncommands = [\"git push *\"]\ntimeout = \"1s\""])
        defer { f.cleanup() }
        let push = [f.git, "push"]
        #expect(try f.run("engineering", ["--run", "d", "--step", "p"], push).status == 78)
        #expect(try f.lanes(["deny", "d", "p", "--by", "bob", "--reason", "not on a Friday"]).status == 0)
        let denied = try f.run("engineering", ["--run", "d", "--step", "p"], push)
        #expect(denied.status == 79)
        #expect(denied.stderr.contains("denied by bob: not on a Friday"))
        #expect(f.sideLines == 0)

        #expect(try f.run("quick", ["--run", "e", "--step", "p"], push).status == 78)
        usleep(1_200_000)
        let expired = try f.run("quick", ["--run", "e", "--step", "p"], push)
        #expect(expired.status == 79)
        #expect(expired.stderr.contains("expired"))
        #expect(try f.lanes(["approve", "e", "p", "--by", "late"]).status == 1)
        #expect(try f.run("quick", ["--run", "e", "--step", "p"], push).status == 79)
        #expect(f.sideLines == 0)
        #expect(try f.decisions("e") == ["approval_requested", "expired"])
        // Approving after the timeout without a re-invocation in between records the expiry too.
        #expect(try f.run("quick", ["--run", "e2", "--step", "p"], push).status == 78)
        usleep(1_200_000)
        #expect(try f.lanes(["approve", "e2", "p", "--by", "late"]).status == 79)
        #expect(try f.decisions("e2") == ["approval_requested", "expired"])
    }

    @Test("in engineering a step left in doubt by a killed lanes waits for approval, then runs once")
    func inDoubt() throws {
        let f = try GovFixture("doubt")
        defer { f.cleanup() }
        let m = f.workspace + "/m"
        // Sleeps the first time, finishes at once the second time.
        let cmd = ["sh", "-c", "echo x >> \(m); [ $(wc -l < \(m)) -ge 2 ] || sleep 30"]
        let p = try f.spawn("engineering", ["--run", "d", "--step", "s"], cmd)
        #expect(GovFixture.wait(20) { ((try? String(contentsOfFile: m, encoding: .utf8)) ?? "").count >= 2 })
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let waiting = try f.run("engineering", ["--run", "d", "--step", "s"], cmd)
        #expect(waiting.status == 78)
        #expect(waiting.stderr.contains("rule in_doubt"))
        #expect(try f.lanes(["approve", "d", "s", "--by", "alice", "--note", "idempotent enough"]).status == 0)
        #expect(try f.run("engineering", ["--run", "d", "--step", "s"], cmd).status == 0)
        #expect(try f.run("engineering", ["--run", "d", "--step", "s"], cmd).stderr.contains("replayed"))
        #expect(((try? String(contentsOfFile: m, encoding: .utf8)) ?? "").split(separator: "\n").count == 2)
    }

    @Test("a 3-step budget: the 4th step is refused (80) until resume --raise")
    func budget() throws {
        let f = try GovFixture("budget", lanes: ["b3": "[budget]\nmax_steps = 3"])
        defer { f.cleanup() }
        for i in 1...3 { #expect(try f.run("b3", ["--run", "b"], ["echo", "\(i)"]).status == 0) }
        let fourth = try f.run("b3", ["--run", "b"], ["echo", "4"])
        #expect(fourth.status == 80)
        #expect(fourth.stderr.contains("max_steps"))
        #expect(fourth.stdout.isEmpty)
        // Replaying a recorded step is not a new step.
        #expect(try f.run("b3", ["--run", "b", "--step", "1"], ["echo", "1"]).status == 0)
        #expect(try f.lanes(["resume", "b", "--by", "carol", "--raise", "max_steps=4"]).status == 0)
        #expect(try f.run("b3", ["--run", "b"], ["echo", "4"]).status == 0)
        #expect(try f.run("b3", ["--run", "b"], ["echo", "5"]).status == 80)
        #expect(try f.lanes(["resume", "nope", "--by", "carol"]).status == 1)
        let halt = try f.log("b").first { ($0["body"] as? [String: Any])?["action"] as? String == "halted" }
        let body = try #require(halt?["body"] as? [String: Any])
        #expect(body["budget"] as? String == "max_steps")
        #expect(body["limit"] as? Int == 3 && body["used"] as? Int == 3)
    }

    @Test("the budget holds when lanes is SIGKILLed between steps and across two concurrent processes")
    func budgetCrashAndConcurrency() throws {
        let f = try GovFixture("budget2", lanes: ["b3": "[budget]\nmax_steps = 3"])
        defer { f.cleanup() }
        #expect(try f.run("b3", ["--run", "k"], ["true"]).status == 0)
        let p = try f.spawn("b3", ["--run", "k"], ["sleep", "30"])
        #expect(try GovFixture.wait(10) { try f.log("k").filter { $0["kind"] as? String == "intent" }.count == 2 })
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(try f.run("b3", ["--run", "k"], ["true"]).status == 0)
        #expect(try f.run("b3", ["--run", "k"], ["true"]).status == 80)

        // Two processes, three steps each, one run of budget 3: exactly three start.
        let script = "for i in 1 2 3; do \(LanesCLI.lanesPath) run b3 --workspace \(f.workspace) --run c -- true; echo $? >> \(f.workspace)/status-$1; done"
        var procs: [Process] = []
        for n in 1...2 {
            let q = Process()
            q.executableURL = URL(fileURLWithPath: "/bin/sh")
            q.arguments = ["-c", script, "sh", "\(n)"]
            q.environment = ["LANES_CONFIG": f.config, "LANES_STATE": f.state, "PATH": "/usr/bin:/bin", "HOME": "/tmp"]
            q.standardError = FileHandle.nullDevice
            try q.run()
            procs.append(q)
        }
        for q in procs { q.waitUntilExit() }
        let statuses = (1...2).flatMap { n in
            ((try? String(contentsOfFile: "\(f.workspace)/status-\(n)", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        #expect(statuses.sorted() == ["0", "0", "0", "80", "80", "80"])
        #expect(try f.log("c").filter { $0["kind"] as? String == "intent" }.count == 3)
        #expect(try f.lanes(["verify", "c"]).status == 0)
    }

    @Test("loop detection trips at exactly N identical failures; a success in between resets it")
    func loops() throws {
        let f = try GovFixture("loop", lanes: ["l": "", "l2": "[budget]\nloop_failures = 2\nloop_repeats = 3"])
        defer { f.cleanup() }
        let fail = ["sh", "-c", "exit 1"]
        // fail, fail, success, fail, fail: no halt.
        for cmd in [fail, fail, ["true"], fail, fail] { #expect(try f.run("l", ["--run", "a"], cmd).status != 80) }
        #expect(try f.run("l", ["--run", "a"], fail).status == 1)  // the third in a row runs
        let halted = try f.run("l", ["--run", "a"], ["true"])
        #expect(halted.status == 80)
        #expect(halted.stderr.contains("loop suspected"))
        #expect(halted.stderr.contains("sh -c exit 1"))
        #expect(try f.decisions("a") == ["halted"])
        #expect(try f.lanes(["resume", "a", "--by", "dave"]).status == 0)
        #expect(try f.run("l", ["--run", "a"], ["true"]).status == 0)
        // A lane's own N (2), and M identical repeats (3) in one run.
        #expect(try f.run("l2", ["--run", "b"], fail).status == 1)
        #expect(try f.run("l2", ["--run", "b"], fail).status == 1)
        #expect(try f.run("l2", ["--run", "b"], ["true"]).status == 80)
        for _ in 1...3 { #expect(try f.run("l2", ["--run", "m"], ["echo", "same"]).status == 0) }
        let repeated = try f.run("l2", ["--run", "m"], ["echo", "same"])
        #expect(repeated.status == 80)
        #expect(repeated.stderr.contains("repeated 3 times"))
    }
}
