import Foundation
import LaneTestSupport
import Testing

/// Processes whose command line contains `marker` (the check that nothing of the run remains);
/// with `tools`, only the sandboxed tools (command lines starting with `sleep`), not `lanes` itself.
func processes(containing marker: String, tools: Bool = false) -> [Int32] {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name -> Int32? in
        guard let pid = Int32(name), pid != getpid(),
              let data = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") else { return nil }
        let cmd = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
        guard cmd.contains(marker), !tools || cmd.hasPrefix("sleep ") else { return nil }
        // Zombies (already dead, waiting for the test to reap) do not count.
        let stat = (try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8)) ?? ""
        return stat.contains(") Z ") ? nil : pid
    }
}

@Suite("lanes stop and halt_on", .serialized)
struct StopTests {
    /// Three steps of one run in three `lanes` processes; `lanes stop`; all gone within 2 s.
    func stopThree(_ name: String, toolsPerStep: Int, script: (String) -> [String]) throws {
        let f = try GovFixture(name)
        defer { f.cleanup() }
        let marker = "\(Int.random(in: 100_000...999_999))"
        var procs: [Process] = []
        for _ in 1...3 { procs.append(try f.spawn("engineering", ["--run", "s", "--timeout", "60"], script(marker))) }
        defer { for p in procs where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        // Wait until the three steps run (their tools are up).
        #expect(GovFixture.wait(20) { processes(containing: marker, tools: true).count >= 3 * toolsPerStep })
        #expect(try f.log("s").filter { $0["kind"] as? String == "intent" }.count == 3)
        #expect(processes(containing: marker).count >= 3)  // the control: the check sees them
        let start = Date()
        let stop = try f.lanes(["stop", "s", "--by", "erin", "--reason", "agent went off task"])
        let elapsed = Date().timeIntervalSince(start)
        #expect(stop.status == 0, "\(stop.stderr)")
        #expect(stop.stdout.contains("no process of the run remains"))
        #expect(elapsed < 2.0, "lanes stop took \(elapsed) s")
        for p in procs { p.waitUntilExit() }
        #expect(processes(containing: marker).isEmpty)
        let log = try f.log("s")
        let closes = log.filter { $0["kind"] as? String == "close" }.compactMap { (($0["body"] as? [String: Any])?["result"] as? [String: Any])?["outcome"] as? String }
        #expect(closes == ["stopped", "stopped", "stopped"])
        let stopRecord = log.first { ($0["body"] as? [String: Any])?["action"] as? String == "stopped" }?["body"] as? [String: Any]
        #expect(stopRecord?["by"] as? String == "erin")
        #expect(stopRecord?["reason"] as? String == "agent went off task")
        let next = try f.run("engineering", ["--run", "s"], ["true"])
        #expect(next.status == 81)
        #expect(next.stderr.contains("stopped by erin"))
        #expect(try f.lanes(["resume", "s", "--by", "erin"]).status == 1)
        #expect(try f.lanes(["verify", "s"]).status == 0)
        print("lanes stop: three steps stopped in \(String(format: "%.2f", elapsed)) s (\(name))")
    }

    @Test("lanes stop kills three sleeping steps in three lanes processes within 2 s")
    func stopSleepers() throws {
        try stopThree("stop", toolsPerStep: 1) { ["sleep", $0] }
    }

    @Test("lanes stop also kills steps that ignore SIGTERM and double-fork")
    func stopStubborn() throws {
        try stopThree("stubborn", toolsPerStep: 3) { m in ["sh", "-c", "trap '' TERM; (trap '' TERM; setsid sleep \(m) & sleep \(m) &) ; sleep \(m); sleep \(m)"] }
    }

    @Test("a supervisor that cannot stop its step (SIGSTOPped) is SIGKILLed; lanes stop writes the stopped record")
    func stopFrozenSupervisor() throws {
        let f = try GovFixture("frozen")
        defer { f.cleanup() }
        let marker = "\(Int.random(in: 100_000...999_999))"
        let p = try f.spawn("engineering", ["--run", "z", "--timeout", "60"], ["sleep", marker])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        #expect(GovFixture.wait(20) { !processes(containing: marker, tools: true).isEmpty })
        kill(p.processIdentifier, SIGSTOP)
        let stop = try f.lanes(["stop", "z", "--by", "erin", "--reason", "test"])
        #expect(stop.status == 0, "\(stop.stderr)")
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal)
        #expect(GovFixture.wait(2) { processes(containing: marker).isEmpty })
        let close = (try f.log("z").first { $0["kind"] as? String == "close" }?["body"] as? [String: Any])?["result"] as? [String: Any]
        #expect(close?["outcome"] as? String == "stopped")
        #expect((close?["error"] as? String)?.contains("stopped by erin") == true)
    }

    @Test("a seccomp violation in a lane with halt_on = [\"seccomp_violation\"] stops its run")
    func haltOn() throws {
        let f = try GovFixture("halton", lanes: ["h": "halt_on = [\"seccomp_violation\"]", "n": ""])
        defer { f.cleanup() }
        let sigsys = ["sh", "-c", "kill -SYS $$"]
        let bad = try f.run("h", ["--run", "h1"], sigsys)
        #expect(bad.status == 159)
        #expect(bad.stderr.contains("stopped"))
        let next = try f.run("h", ["--run", "h1"], ["true"])
        #expect(next.status == 81)
        #expect(next.stderr.contains("halt_on"))
        // Without halt_on the run goes on.
        #expect(try f.run("n", ["--run", "n1"], sigsys).status == 159)
        #expect(try f.run("n", ["--run", "n1"], ["true"]).status == 0)
    }

    @Test("lanes export round-trips through lanes verify --file; one changed byte fails it")
    func export() throws {
        let f = try GovFixture("export")
        defer { f.cleanup() }
        #expect(try f.run("engineering", ["--run", "x"], ["echo", "hello"]).status == 0)
        #expect(try f.run("engineering", ["--run", "x"], [f.git, "push"]).status == 78)
        #expect(try f.lanes(["approve", "x", "2", "--by", "alice"]).status == 0)
        let file = f.root + "/x.json"
        #expect(try f.lanes(["export", "x", "-o", file]).status == 0)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
        #expect((doc["lane"] as? [String: Any])?["owner"] as? String == "platform-engineering")
        #expect(((doc["profile"] as? [String: Any])?["fingerprint"] as? String)?.count == 64)
        #expect((doc["records"] as? [Any])?.count == 5)
        let ok = try f.lanes(["verify", "--file", file])
        #expect(ok.status == 0, "\(ok.stderr)")
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: file)))
        for target in ["platform-engineering", "hello", "alice"] {
            let original = bytes
            let needle = Array(target.utf8)
            let at = try #require((0...(bytes.count - needle.count)).first { Array(bytes[$0..<$0 + needle.count]) == needle })
            bytes[at + 1] ^= 0x01
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            let broken = try f.lanes(["verify", "--file", file])
            #expect(broken.status == 1, "changing \(target) was not detected")
            #expect(broken.stderr.contains("BROKEN"))
            bytes = original
        }
    }
}
