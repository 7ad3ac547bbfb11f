import Foundation
import LaneJournal
import LaneTestSupport
import Testing

@Suite("lanes run with the journal", .serialized)
struct RunJournalTests {
    @Test("a new run is announced; steps get ordinals; replay prints the recorded output and status")
    func replay() throws {
        let f = try Fixture("replay")
        defer { f.cleanup() }
        let first = try f.run("plain", [], ["sh", "-c", "echo out-$RANDOM; echo err >&2; exit 3"])
        #expect(first.status == 3)
        let run = try #require(Fixture.runID(first))
        let second = try f.run("plain", ["--run", run], ["true"])
        #expect(second.status == 0)
        #expect(Fixture.runID(second) == nil)
        // Step 1 again with the same intent: nothing runs ($RANDOM would differ), same bytes, same status.
        let again = try f.run("plain", ["--run", run, "--step", "1"], ["sh", "-c", "echo out-$RANDOM; echo err >&2; exit 3"])
        #expect(again.status == 3)
        #expect(again.stdout == first.stdout)
        #expect(again.stderr.contains("err\n"))
        #expect(again.stderr.contains("lanes: replayed step 1 of run \(run)"))
        let json = try f.run("plain", ["--run", run, "--step", "1", "--json"], ["sh", "-c", "echo out-$RANDOM; echo err >&2; exit 3"])
        let o = Fixture.json(json.stdout)
        #expect(o["replayed"] as? Bool == true)
        #expect(o["run"] as? String == run)
        #expect(o["step"] as? String == "1")
        #expect(o["exit_status"] as? Int == 3)
        #expect(o["stdout"] as? String == first.stdout)
        #expect(json.status == 3)
        // The journal: run, intent, close, intent, close.
        let kinds = try f.log(run).compactMap { $0["kind"] as? String }
        #expect(kinds == ["run", "intent", "close", "intent", "close"])
        let show = try f.lanes(["show", run])
        #expect(show.status == 0)
        #expect(show.stdout.contains("STEP"))
        #expect(show.stdout.split(separator: "\n").count == 3)
        let output = try f.lanes(["output", run, "1"])
        #expect(output.stdout == first.stdout)
        #expect(output.stderr == "err\n")
        let runs = try f.lanes(["runs", "--json"])
        let row = Fixture.json(String(runs.stdout.split(separator: "\n").first ?? ""))
        #expect(row["run"] as? String == run)
        #expect(row["steps"] as? Int == 2)
        #expect(row["status"] as? String == "failed")
        #expect(try f.lanes(["verify"]).status == 0)
    }

    @Test("a different intent for a recorded step is nondeterminism: exit 75, the fields named")
    func nondeterminism() throws {
        let f = try Fixture("nondet")
        defer { f.cleanup() }
        let first = try f.run("plain", ["--run", "r1", "--step", "a"], ["echo", "one"])
        #expect(first.status == 0)
        let other = try f.run("plain", ["--run", "r1", "--step", "a"], ["echo", "two"])
        #expect(other.status == 75)
        #expect(other.stderr.contains("nondeterminism"))
        #expect(other.stderr.contains("argv"))
        #expect(other.stdout.isEmpty)
        let timeout = try f.run("plain", ["--run", "r1", "--step", "a", "--timeout", "5"], ["echo", "one"])
        #expect(timeout.status == 75)
        #expect(timeout.stderr.contains("limits"))
        let json = try f.run("plain", ["--run", "r1", "--step", "a", "--json"], ["echo", "two"])
        #expect(json.status == 75)
        #expect(Fixture.json(json.stdout)["exit_status"] as? Int == 75)
    }

    @Test("a supervisor in another pid namespace is in flight, not in doubt: its lock is held, whatever its pid means here")
    func otherPidNamespace() throws {
        if getuid() != 0 { print("SKIP other pid namespace: needs root for unshare --pid --mount-proc"); return }
        let f = try Fixture("pidns")
        defer { f.cleanup() }
        let marker = f.workspace + "/ran"
        // The supervisor runs as pid 1 of a new pid namespace, with that namespace's /proc.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        p.arguments = ["--pid", "--fork", "--mount-proc", LanesCLI.lanesPath, "run", "plain", "--workspace", f.workspace,
                       "--run", "r", "--step", "s", "--idempotent", "--", "sh", "-c", "echo x >> \(marker); sleep 4"]
        p.environment = ["PATH": "/usr/local/bin:/usr/bin:/bin", "LANES_CONFIG": f.config, "LANES_STATE": f.state, "HOME": "/tmp"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() }; p.waitUntilExit() }
        let deadline = Date().addingTimeInterval(20)
        while lines(marker) < 1 && Date() < deadline { usleep(20_000) }
        #expect(lines(marker) == 1)
        let intent = try #require(try f.log("r").first { $0["kind"] as? String == "intent" })
        let supervisor = try #require((intent["body"] as? [String: Any])?["supervisor"] as? [String: Any])
        #expect(supervisor["pid"] as? Int == 1, "the recorded pid is the namespace's: \(supervisor)")
        #expect(supervisor["lock"] is String)
        // The control: by pid alone, this host would call that supervisor dead (its pid 1 is
        // another process here) and --idempotent would run the step a second time.
        let body = try #require(intent["body"] as? [String: Any])
        let data = try JSONSerialization.data(withJSONObject: body["supervisor"] as Any)
        #expect(try JSONDecoder().decode(Supervisor.self, from: data).isAlive == false)
        // Through the lock: in flight, refused, not run again.
        let again = try f.run("plain", ["--run", "r", "--step", "s", "--idempotent"], ["sh", "-c", "echo x >> \(marker); sleep 4"])
        #expect(again.status == 77, "\(again.stderr)")
        #expect(again.stderr.contains("in flight"))
        #expect(lines(marker) == 1)
        let show = try f.lanes(["show", "r", "--json"])
        #expect(show.stdout.contains("in_flight"), "\(show.stdout)")
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        // Finished: its lock file is gone, and the step replays.
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: f.state + "/supervisors")) ?? []).isEmpty)
        let replay = try f.run("plain", ["--run", "r", "--step", "s", "--idempotent"], ["sh", "-c", "echo x >> \(marker); sleep 4"])
        #expect(replay.status == 0 && replay.stderr.contains("replayed"))
        #expect(lines(marker) == 1)
    }

    @Test("a step whose supervisor was killed is in doubt (exit 76); while it runs it is in flight (exit 77); retry = safe or --idempotent re-runs it")
    func inDoubt() throws {
        let f = try Fixture("doubt", lanes: ["plain": "", "safe": "retry = \"safe\""])
        defer { f.cleanup() }
        for lane in ["plain", "safe"] {
            let marker = f.workspace + "/runs-\(lane)"
            // Sleeps the first time, finishes at once the second time.
            let cmd = ["sh", "-c", "echo x >> \(marker); [ $(wc -l < \(marker)) -ge 2 ] || sleep 30"]
            let options = ["--run", "r-\(lane)", "--step", "s"]
            let p = try f.spawn(["run", lane, "--workspace", f.workspace] + options + ["--"] + cmd)
            let deadline = Date().addingTimeInterval(20)
            while lines(marker) < 1 && Date() < deadline { usleep(20_000) }
            #expect(lines(marker) == 1)
            let flight = try f.run(lane, options, cmd)
            #expect(flight.status == 77)
            #expect(flight.stderr.contains("in flight"))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if lane == "plain" {
                let doubt = try f.run(lane, options, cmd)
                #expect(doubt.status == 76)
                #expect(doubt.stderr.contains("in doubt: needs review"))
                #expect(lines(marker) == 1)
                let json = try f.run(lane, options + ["--json"], cmd)
                #expect(Fixture.json(json.stdout)["exit_status"] as? Int == 76)
                let retried = try f.run(lane, options + ["--idempotent"], cmd)
                #expect(retried.status == 0)
                #expect(retried.stderr.contains("was in doubt"))
            } else {
                let retried = try f.run(lane, options, cmd)
                #expect(retried.status == 0)
                #expect(retried.stderr.contains("was in doubt"))
            }
            #expect(lines(marker) == 2)
            let replayed = try f.run(lane, options, cmd)
            #expect(replayed.status == 0)
            #expect(replayed.stderr.contains("replayed"))
            #expect(lines(marker) == 2)
            #expect(try f.lanes(["verify", "r-\(lane)"]).status == 0)
        }
    }
}

func lines(_ path: String) -> Int {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").count
}
