import Foundation
import Glibc
import LaneTestSupport
import Testing

/// A replayed step reports exactly what the live step reported (`replayed` aside): the journal
/// stores the result's own encoding, so no fact (the limit of an OOM-killed step, its peak
/// memory, a stop's status and reason) is lost on the way.
@Suite("Live and replayed results agree", .serialized)
struct LiveReplayTests {
    struct Case {
        let name: String
        let outcome: String
        var limits = ""
        var seccomp = "errno"
        var output = "4M"
        var options: [String] = []
        var needsCgroups = false
        let argv: [String]
    }

    static let cases: [Case] = [
        Case(name: "exited", outcome: "exited", argv: ["sh", "-c", "echo out; echo err >&2; exit 3"]),
        Case(name: "signaled", outcome: "signaled", argv: ["sh", "-c", "kill -TERM $$"]),
        Case(name: "timed out", outcome: "timed_out", options: ["--timeout", "1"], argv: ["sleep", "5"]),
        Case(name: "oom killed", outcome: "oom_killed", limits: "memory = \"64M\"", needsCgroups: true,
             argv: ["python3", "-c", "a = []\nwhile True: a.append(bytearray(1 << 20))"]),
        Case(name: "pids limited", outcome: "pids_limited", limits: "pids = 16", needsCgroups: true,
             argv: ["sh", "-c", "for i in $(seq 40); do sleep 3 & done; wait"]),
        Case(name: "cpu time exceeded", outcome: "cpu_time_exceeded", limits: "cpu = \"1s\"",
             argv: ["sh", "-c", "while :; do :; done"]),
        Case(name: "seccomp violation", outcome: "seccomp_violation", seccomp: "kill",
             argv: ["python3", "-c", "import ctypes; ctypes.CDLL(None).syscall(163, 0)"]),  // acct(2): not allowed
        Case(name: "output truncated", outcome: "exited", output: "1K", argv: ["sh", "-c", "head -c 5000 /dev/zero | tr '\\\\0' a"]),
        Case(name: "secret redacted", outcome: "exited", argv: ["sh", "-c", "echo \"token=$TOKEN\""]),
    ]

    /// Why the cgroup cases cannot run here, if they cannot.
    static let cgroupSkip: String? = getuid() == 0 ? nil : "needs root: step cgroups are created in the supervisor's own cgroup"

    struct World {
        let dir: String
        init() throws {
            dir = try LanesCLI.temporaryDirectory("live-replay")
            let fm = FileManager.default
            try fm.createDirectory(atPath: dir + "/ws", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
            try fm.createDirectory(atPath: dir + "/Lanes", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: dir + "/Profiles", withIntermediateDirectories: true)
            try """
                description = "live and replay"
                owner = "tests"
                profile = "p"
                [credentials]
                TOKEN = { from = "env:LIVE_REPLAY_TOKEN", as = "env" }
                """.write(toFile: dir + "/Lanes/t.toml", atomically: true, encoding: .utf8)
        }

        func profile(_ c: Case) throws {
            try """
                description = "live and replay"
                [filesystem]
                workspace = "read-write"
                [seccomp]
                default_action = "\(c.seccomp)"
                [limits]
                wall_clock = "30s"
                kill_grace = "200ms"
                output = "\(c.output)"
                \(c.limits)
                [environment]
                PATH = "/usr/bin:/bin"
                """.write(toFile: dir + "/Profiles/p.toml", atomically: true, encoding: .utf8)
        }

        func lanes(_ args: [String]) throws -> LanesCLI.Output {
            try LanesCLI.run(args, config: dir, cwd: dir + "/ws",
                             environment: ["LANES_STATE": dir + "/state", "LANES_CGROUP_ROOT": "lanes-test-replay",
                                           "LIVE_REPLAY_TOKEN": "s3cr3t-live-replay"])
        }
    }

    @Test("every outcome: the replayed JSON is the live JSON with replayed = true", arguments: cases)
    func liveEqualsReplay(_ c: Case) throws {
        if c.needsCgroups, let why = Self.cgroupSkip {
            print("SKIP \(c.name): \(why)")
            return
        }
        let w = try World()
        defer { try? FileManager.default.removeItem(atPath: w.dir) }
        try w.profile(c)
        let args = ["run", "t", "--run", "lr", "--step", "s", "--json"] + c.options + ["--"] + c.argv
        let live = try w.lanes(args)
        let liveJSON = try #require(try JSONSerialization.jsonObject(with: live.stdoutBytes) as? [String: Any], "\(live.stderr)")
        #expect(liveJSON["outcome"] as? String == c.outcome, "\(c.name): \(live.stdout.prefix(600)) \(live.stderr)")
        let replay = try w.lanes(args)
        #expect(replay.status == live.status)
        #expect(replay.stdout == live.stdout.replacingOccurrences(of: "\"replayed\":false", with: "\"replayed\":true"),
                "\(c.name):\nlive   \(live.stdout.prefix(800))\nreplay \(replay.stdout.prefix(800))")
        switch c.name {
        case "oom killed":
            #expect(liveJSON["limit"] as? String == "memory" && liveJSON["memory_peak_bytes"] as? Int != nil)
        case "pids limited":
            #expect(liveJSON["limit"] as? String == "pids")
        case "cpu time exceeded":
            #expect(liveJSON["limit"] as? String == "cpu_time" && live.status == 152)
        case "output truncated":
            #expect(liveJSON["stdout_truncated"] as? Bool == true)
        case "secret redacted":
            #expect(liveJSON["stdout"] as? String == "token=[redacted:TOKEN]\n")
            #expect(!live.stdout.contains("s3cr3t-live-replay") && !replay.stdout.contains("s3cr3t-live-replay"))
        default:
            break
        }
    }

    @Test("a step ended by `lanes stop` reports stopped, 81 and the stop's reason, live and replayed")
    func stopped() throws {
        let w = try World()
        defer { try? FileManager.default.removeItem(atPath: w.dir) }
        try w.profile(Case(name: "stopped", outcome: "stopped", argv: []))
        let args = ["run", "t", "--run", "st", "--step", "s", "--json", "--", "sleep", "30"]
        let process = try LanesCLI.start(args, config: w.dir, state: w.dir + "/state", cwd: w.dir + "/ws",
                                         environment: ["LIVE_REPLAY_TOKEN": "x", "LANES_CGROUP_ROOT": "lanes-test-replay"], captureStdout: true)
        let pipe = process.standardOutput as? Pipe
        // Wait until the step is in flight, then stop the run.
        var inFlight = false
        for _ in 0..<200 where !inFlight {
            usleep(50_000)
            inFlight = (try? w.lanes(["show", "st", "--json"]).stdout.contains("in_flight")) ?? false
        }
        #expect(inFlight)
        let stop = try w.lanes(["stop", "st", "--by", "tester", "--reason", "unsafe"])
        #expect(stop.status == 0, "\(stop.stderr)")
        process.waitUntilExit()
        #expect(process.terminationStatus == 81)
        let liveText = String(decoding: pipe?.fileHandleForReading.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        let live = try #require(try JSONSerialization.jsonObject(with: Data(liveText.utf8)) as? [String: Any], "\(liveText)")
        #expect(live["outcome"] as? String == "stopped" && live["exit_status"] as? Int == 81)
        #expect((live["error"] as? String)?.contains("stopped by tester: unsafe") == true, "\(live)")
        let replay = try w.lanes(args)
        #expect(replay.status == 81)
        #expect(replay.stdout == liveText.replacingOccurrences(of: "\"replayed\":false", with: "\"replayed\":true"))
    }
}

extension LiveReplayTests.Case: CustomTestStringConvertible {
    var testDescription: String { name }
}
