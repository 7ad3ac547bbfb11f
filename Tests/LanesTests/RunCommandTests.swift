import Foundation
import LaneTestSupport
import Testing

/// `lanes run` end to end: exit statuses, JSON, streaming, signals.
@Suite("lanes run")
struct RunCommandTests {
    @Test("exit statuses: own code, 128+N, 124, 125, 126, 127")
    func exitStatuses() throws {
        let ws = try LanesCLI.temporaryDirectory()
        #expect(try LanesCLI.run(["run", "engineering", "--workspace", ws, "--", "sh", "-c", "exit 3"]).status == 3)
        #expect(try LanesCLI.run(["run", "engineering", "--workspace", ws, "--", "sh", "-c", "kill -9 $$"]).status == 137)
        let timedOut = try LanesCLI.run(["run", "engineering", "--workspace", ws, "--timeout", "0.5", "--", "sleep", "30"])
        #expect(timedOut.status == 124)
        #expect(timedOut.stderr.contains("timed out"))
        let badLane = try LanesCLI.run(["run", "no-such-lane", "--", "true"])
        #expect(badLane.status == 125)
        #expect(badLane.stderr.contains("no lane named"))
        let missing = try LanesCLI.run(["run", "engineering", "--workspace", ws, "--", "no-such-command-xyz"])
        #expect(missing.status == 127)
        try "not a program".write(toFile: ws + "/notexec", atomically: true, encoding: .utf8)
        let notExec = try LanesCLI.run(["run", "engineering", "--workspace", ws, "--", ws + "/notexec"])
        #expect(notExec.status == 126)
        #expect(try LanesCLI.run(["run", "engineering", "--workspace", ws + "/nope", "--", "true"]).status == 125)
        #expect(try LanesCLI.run(["run", "engineering"]).status == 64)
    }

    @Test("--json prints one object with the result fields")
    func json() throws {
        let ws = try LanesCLI.temporaryDirectory()
        let out = try LanesCLI.run(["run", "engineering", "--workspace", ws, "--json", "--", "sh", "-c", "echo out; echo err >&2; exit 5"])
        #expect(out.status == 5)
        let object = try #require(try JSONSerialization.jsonObject(with: out.stdoutBytes) as? [String: Any])
        #expect(object["lane"] as? String == "engineering")
        #expect(object["profile"] as? String == "workspace-write")
        #expect((object["profile_fingerprint"] as? String)?.count == 64)
        #expect(object["outcome"] as? String == "exited")
        #expect(object["exit_code"] as? Int == 5)
        #expect(object["stdout"] as? String == "out\n")
        #expect(object["stderr"] as? String == "err\n")
        #expect(object["stdout_truncated"] as? Bool == false)
        #expect((object["wall_ms"] as? Double ?? 0) > 0)
        #expect(object["cpu_ms"] != nil && object["max_rss_kb"] != nil)
        let protections = object["protections"] as? [String] ?? []
        for p in ["user_namespace", "pid_namespace", "network_namespace:loopback_only", "seccomp:errno", "capabilities_dropped", "no_new_privs"] {
            #expect(protections.contains(p))
        }
        let sys = try LanesCLI.run(["run", "engineering", "--workspace", ws, "--json", "--", "python3", "-c",
                                    "import ctypes; ctypes.CDLL(None).syscall(0x40000027)"])
        let sysObject = try #require(try JSONSerialization.jsonObject(with: sys.stdoutBytes) as? [String: Any])
        #expect(sysObject["outcome"] as? String == "seccomp_violation")
        #expect(sys.status == 159)
    }

    @Test("output reaches the terminal as it is written, not at the end")
    func streaming() throws {
        let ws = try LanesCLI.temporaryDirectory()
        let process = Process()
        // The host mode of the run (LanesCLI.HostMode) applies; the wrapper execs lanes itself.
        let (program, args) = LanesCLI.HostMode.wrap(LanesCLI.lanesPath, ["run", "engineering", "--workspace", ws, "--", "sh", "-c", "echo first; sleep 3; echo second"])
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = args
        process.environment = ["LANES_CONFIG": LanesCLI.packageRoot.path, "PATH": "/usr/bin:/bin",
                               "HOME": LanesCLI.HostMode.noHome ? "/nonexistent" : "/tmp"]
        let pipe = Pipe()
        process.standardOutput = pipe
        let start = Date()
        try process.run()
        let first = pipe.fileHandleForReading.availableData
        let elapsed = Date().timeIntervalSince(start)
        #expect(String(decoding: first, as: UTF8.self).hasPrefix("first"))
        #expect(elapsed < 2.5, "the first line arrived after \(elapsed) s, i.e. not streamed")
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    @Test("SIGTERM to lanes stops the step cleanly and is reported", arguments: [SIGTERM, SIGINT])
    func stopSignal(signal: Int32) throws {
        let ws = try LanesCLI.temporaryDirectory()
        let process = Process()
        // The host mode of the run (LanesCLI.HostMode) applies; the wrapper execs lanes itself.
        let (program, args) = LanesCLI.HostMode.wrap(LanesCLI.lanesPath, ["run", "engineering", "--workspace", ws, "--", "sh", "-c", "echo started; sleep 30"])
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = args
        process.environment = ["LANES_CONFIG": LanesCLI.packageRoot.path, "PATH": "/usr/bin:/bin",
                               "HOME": LanesCLI.HostMode.noHome ? "/nonexistent" : "/tmp"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        _ = out.fileHandleForReading.availableData  // the step is running
        let start = Date()
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(start) < 3)
        #expect(process.terminationStatus == 128 + signal)
        #expect(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("stopped by signal"))
    }

    @Test("stdin is forwarded through a pipe")
    func stdin() throws {
        let ws = try LanesCLI.temporaryDirectory()
        let out = try LanesCLI.run(["run", "engineering", "--workspace", ws, "--", "tr", "a-z", "A-Z"], stdin: Data("hello\n".utf8))
        #expect(out.stdout == "HELLO\n")
    }

    @Test("lanes check: four distinct FILE:LINE errors, exit 1; valid files exit 0")
    func check() throws {
        let dir = try LanesCLI.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/Profiles", withIntermediateDirectories: true)
        let bad = dir + "/Profiles/bad.toml"
        try """
            [filesystem]
            workspace = "read-write"
            read_onyl = ["/etc"]
            read_write = ["relative/path"]
            [limits]
            processes = "many"
            [seccomp
            """.write(toFile: bad, atomically: true, encoding: .utf8)
        let out = try LanesCLI.run(["check", bad])
        #expect(out.status == 1)
        let errors = out.stderr.split(separator: "\n").filter { $0.contains(".toml:") }
        #expect(errors.count == 4, "\(out.stderr)")
        #expect(errors.contains { $0.hasPrefix(bad + ":7:") && $0.contains("syntax") })
        #expect(errors.contains { $0.hasPrefix(bad + ":3:") && $0.contains("unknown key") })
        #expect(errors.contains { $0.hasPrefix(bad + ":4:") && $0.contains("absolute path") })
        #expect(errors.contains { $0.hasPrefix(bad + ":6:") && $0.contains("expected a count") })
        #expect(try LanesCLI.run(["check"]).status == 0)
    }

    @Test("lanes doctor reports the host and says the shipped profiles can run here")
    func doctor() throws {
        let out = try LanesCLI.run(["doctor"])
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        for word in ["user namespaces", "seccomp", "landlock", "cgroup", "pidfd", "clone3", "workspace-write", "read-only"] {
            #expect(out.stdout.contains(word))
        }
    }
}
