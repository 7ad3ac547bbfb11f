import Foundation
import Glibc
import LaneTestSupport
import Testing

/// Processes that try to outlive their step, zombie floods and output floods.
@Suite("Escape: process lifetime and floods")
struct ProcessLifetimeTests {
    /// How the step ends while its escapees keep running: by its deadline, or by exiting.
    enum Ending: String, Sendable, CaseIterable { case deadline, exit }

    @Test("a step that double-forks, setsids and SIGSTOPs a child leaves no process behind",
          arguments: Escape.identities, Ending.allCases)
    func escapeByDoubleFork(_ identity: LanesCLI.Identity, ending: Ending) throws {
        if Escape.skips(identity) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        let marker = "lanes-escape-marker-" + UUID().uuidString.prefix(8)
        let beat = ws + "/beat-" + marker
        try FileManager.default.createDirectory(atPath: beat, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o777])
        var command = [ws + "/lifetime", "escape", marker, beat]
        if ending == .exit { command.append("exit") }

        let started = Date()
        let step = try Escape.step(identity, in: ws, command, timeout: ending == .deadline ? 1 : 30)
        let took = Date().timeIntervalSince(started)
        #expect(step.stdout.contains("escaped"), "the probe did not get going: \(step)")
        #expect(step.status == (ending == .deadline ? 124 : 0), "\(step)")
        #expect(took < 10, "the step took \(took) s")

        // Control: the grandchild did run and write its heartbeat.
        let file = beat + "/heartbeat"
        let first = try? String(contentsOfFile: file, encoding: .utf8)
        #expect(first != nil, "no heartbeat: the escapee never ran, so the test proves nothing")
        // It has stopped: nothing writes the file any more...
        Thread.sleep(forTimeInterval: 0.3)
        #expect((try? String(contentsOfFile: file, encoding: .utf8)) == first, "the heartbeat is still beating after the step ended")
        // ...and no process of the step is left on the host.
        let left = Escape.hostProcesses(containing: marker)
        #expect(left.isEmpty, "processes outlived the step: \(left)")
    }

    @Test("10,000 short-lived children leave no zombie", arguments: Escape.identities)
    func zombieFlood(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        // Control: the probe's /proc scan does see zombies (its own, unreaped).
        let control = try Escape.step(identity, in: ws, [ws + "/lifetime", "own-zombies", "20"])
        #expect((Escape.value("zombies", in: control.stdout) ?? 0) >= 20, "control: \(control)")

        let started = Date()
        let step = try Escape.step(identity, in: ws, [ws + "/lifetime", "zombies", "10000"])
        let took = Date().timeIntervalSince(started)
        #expect(step.status == 0, "\(step)")
        #expect(Escape.value("forked", in: step.stdout) == 10000, "\(step)")
        #expect(Escape.value("zombies", in: step.stdout) == 0, "PID 1 left zombies: \(step)")
        #expect(took < 30, "the zombie flood took \(took) s")
        let left = Escape.hostProcesses(containing: ws + "/lifetime")
        #expect(left.isEmpty, "processes outlived the step: \(left)")
    }

    @Test("1 GiB of output is capped and lanes' memory stays bounded", arguments: Escape.identities)
    func outputFlood(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        // lanes runs under the maxrss probe, which reports lanes' own peak RSS (getrusage of
        // its waited-for child), not the step's: the step is in another process tree.
        func flood(_ size: String) throws -> (json: [String: Any]?, rssKb: Int, run: Escape.Ran) {
            let script = "exec \"\(ws)/maxrss\" \"$LANES\" run engineering --json --workspace '\(ws)' -- head -c \(size) /dev/zero"
            let run = try Escape.shell(identity, script)
            #expect(run.status == 0, "\(size): \(run)")
            let json = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
            return (json, Escape.value("maxrss_kb", in: run.stderr) ?? 0, run)
        }
        // Each flood twice, and the smaller peak of each compared: a journal-dependent one-off
        // cost (~27 MiB: the step after a new journal's first large record, whatever its own
        // output; a 4 MiB capture is a 24 MiB record) lands on one run at most, while memory
        // that grew with the output would show in both 1 GiB runs. With one run of each and the
        // battery's shared state directory it sometimes landed on the 1 GiB flood (stop 15).
        // Reference: a flood just over the profile's 4 MiB cap, so lanes holds a full capture.
        let smalls = [try flood("8M"), try flood("8M")]
        let bigs = [try flood("1G"), try flood("1G")]
        for (size, result) in smalls.map({ ("8M", $0) }) + bigs.map({ ("1G", $0) }) {
            #expect(result.json?["stdout_truncated"] as? Bool == true, "\(size) not reported as truncated: \(result.run.stdout.prefix(300))")
            #expect(result.json?["outcome"] as? String == "exited", "\(result.run.stdout.suffix(600))")
            #expect(result.rssKb > 1000, "control: no maxrss reported: \(result.run.stderr.suffix(300))")
        }
        let small = smalls.min { $0.rssKb < $1.rssKb }!, big = bigs.min { $0.rssKb < $1.rssKb }!
        let kept = bigs.map { ($0.json?["stdout"] as? String)?.utf8.count ?? Int.max }.max() ?? Int.max
        #expect(kept <= 64 << 20, "captured \(kept) bytes of output")
        // Bounded: 128 times more output must not cost more memory than the capped capture does.
        #expect(big.rssKb < small.rssKb + 32 << 10, "lanes' peak RSS grew with the output: \(small.rssKb) KiB for 8 MiB, \(big.rssKb) KiB for 1 GiB")
        #expect(big.rssKb < 256 << 10, "lanes' peak RSS was \(big.rssKb) KiB for 1 GiB of output")
        print("outputFlood(\(identity)): lanes peak RSS \(smalls.map(\.rssKb)) KiB for 8 MiB, \(bigs.map(\.rssKb)) KiB for 1 GiB; \(kept) bytes kept")
    }
}
