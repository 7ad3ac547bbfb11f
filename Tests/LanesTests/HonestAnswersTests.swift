import Foundation
import LaneTestSupport
import Testing

/// Issue 11, "honest answers": check and doctor never pass falsely, messages name the thing,
/// inputs are validated at the edge.
@Suite("honest answers")
struct HonestAnswersTests {
    /// A configuration directory: the shipped profiles plus `lanes` (name → text).
    func config(lanes: [String: String], profiles: [String: String] = [:]) throws -> String {
        let dir = try LanesCLI.temporaryDirectory("lanes-config")
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/Lanes", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/Profiles", withIntermediateDirectories: true)
        for name in ["workspace-write", "read-only"] {
            try fm.copyItem(atPath: LanesCLI.packageRoot.path + "/Profiles/\(name).toml", toPath: dir + "/Profiles/\(name).toml")
        }
        for (name, text) in profiles { try text.write(toFile: dir + "/Profiles/\(name).toml", atomically: true, encoding: .utf8) }
        for (name, text) in lanes { try text.write(toFile: dir + "/Lanes/\(name).toml", atomically: true, encoding: .utf8) }
        return dir
    }

    @Test("lanes check --config /nope fails (was: nothing printed, exit 0)")
    func checkMissingConfig() throws {
        let out = try LanesCLI.run(["check", "--config", "/nope"])
        #expect(out.status != 0)
        #expect(out.stderr.contains("/nope"), "\(out)")
    }

    @Test("a lane whose profile does not exist is an error of check, with its line; the shipped config passes")
    func checkResolvesProfiles() throws {
        let dir = try config(lanes: ["ghostly": "description = \"d\"\nowner = \"o\"\nprofile = \"ghost\"\n"])
        let out = try LanesCLI.run(["check"], config: dir)
        #expect(out.status == 1, "\(out)")
        #expect(out.stderr.contains("Lanes/ghostly.toml:3: `profile`: no profile named \"ghost\""), "\(out)")
        // Named as a FILE argument, the lane is resolved against its own ../Profiles.
        let single = try LanesCLI.run(["check", dir + "/Lanes/ghostly.toml"], config: "/nonexistent-config")
        #expect(single.status == 1 && single.stderr.contains("no profile named \"ghost\""), "\(single)")
        let shipped = try LanesCLI.run(["check"])
        #expect(shipped.status == 0, "\(shipped)")
    }

    @Test("doctor exits non-zero for a profile that cannot run and a lane without a profile, and names the reason")
    func doctorFails() throws {
        let dir = try config(lanes: ["ghostly": "description = \"d\"\nowner = \"o\"\nprofile = \"ghost\"\n"],
                             profiles: ["greedy": "[limits]\nopen_files = 1000000000\n"])
        let out = try LanesCLI.run(["doctor"], config: dir)
        #expect(out.status == 1, "\(out)")
        #expect(out.stdout.contains("FAIL greedy") && out.stdout.contains("limits.open_files = 1000000000 is above"), "\(out)")
        #expect(out.stdout.contains("FAIL ghostly") && out.stdout.contains("no profile named \"ghost\""), "\(out)")
        let hostFailed = out.stdout.split(separator: "\n").contains { $0.hasPrefix("  FAIL") && !$0.contains("greedy") && !$0.contains("ghostly") }
        if !hostFailed {
            #expect(!out.stdout.contains("see the failing host check above"), "points at a host check that did not fail: \(out)")
        }
    }

    @Test("a missing or unrunnable command is named; an empty command is a usage error and journals nothing")
    func commandMessages() throws {
        let ws = try LanesCLI.temporaryDirectory()
        let state = try LanesCLI.temporaryDirectory("lanes-state") + "/state"
        let env = ["LANES_STATE": state]
        let missing = try LanesCLI.run(["run", "engineering", "--workspace", ws, "--", "no-such-command-xyz"], environment: env)
        #expect(missing.status == 127)
        #expect(missing.stderr.contains("lanes: cannot execute 'no-such-command-xyz': command not found"), "\(missing)")
        try "not a program".write(toFile: ws + "/notexec", atomically: true, encoding: .utf8)
        let notExec = try LanesCLI.run(["run", "engineering", "--workspace", ws, "--", ws + "/notexec"], environment: env)
        #expect(notExec.status == 126)
        #expect(notExec.stderr.contains("lanes: cannot execute '\(ws)/notexec': Permission denied"), "\(notExec)")
        let empty = try LanesCLI.run(["run", "engineering", "--workspace", ws, "--run", "emptycmd", "--", ""], environment: env)
        #expect(empty.status == 64, "\(empty)")
        #expect(empty.stderr.contains("empty"), "\(empty)")
        let runs = try LanesCLI.run(["runs"], environment: env)
        #expect(!runs.stdout.contains("emptycmd"), "an empty command was journaled: \(runs)")
    }

    @Test("run ids, effects and timeouts are checked at the edge", arguments: [
        (["--run", ""], "run id is empty"),
        (["--run", "a/b c"], "contains a slash"),
        (["--step", "x y"], "step id"),
        (["--effect", "bogus"], "unknown effect \"bogus\""),
        (["--timeout", "soon"], "expected a duration"),
        (["--timeout", "0"], "duration > 0"),
    ])
    func edgeValidation(_ args: [String], _ message: String) throws {
        let ws = try LanesCLI.temporaryDirectory()
        let state = try LanesCLI.temporaryDirectory("lanes-state") + "/state"
        let out = try LanesCLI.run(["run", "engineering", "--workspace", ws] + args + ["--", "true"], environment: ["LANES_STATE": state])
        #expect(out.status == 64, "\(out)")
        #expect(out.stderr.contains(message), "\(out)")
        #expect(!FileManager.default.fileExists(atPath: state + "/journal.sqlite"), "journaled before the arguments were checked")
    }

    @Test("every command that takes a run id checks its syntax", arguments: [["show", "a/b c"], ["log", ""], ["output", "../x"], ["verify", "x;y"], ["export", "a b"]])
    func runIDEverywhere(_ args: [String]) throws {
        let state = try LanesCLI.temporaryDirectory("lanes-state") + "/state"
        let out = try LanesCLI.run(args, environment: ["LANES_STATE": state])
        #expect(out.status == 64, "\(out)")
        #expect(out.stderr.contains("run id"), "\(out)")
    }

    @Test("--timeout takes the profiles' duration syntax")
    func timeoutUnits() throws {
        let ws = try LanesCLI.temporaryDirectory()
        let state = try LanesCLI.temporaryDirectory("lanes-state") + "/state"
        let ok = try LanesCLI.run(["run", "engineering", "--workspace", ws, "--timeout", "5m", "--", "true"], environment: ["LANES_STATE": state])
        #expect(ok.status == 0, "\(ok)")
        let fired = try LanesCLI.run(["run", "engineering", "--workspace", ws, "--timeout", "300ms", "--", "sleep", "30"],
                                     environment: ["LANES_STATE": state])
        #expect(fired.status == 124, "\(fired)")
    }

    @Test("lanes --version prints the version")
    func version() throws {
        let out = try LanesCLI.run(["--version"])
        #expect(out.status == 0)
        #expect(out.stdout.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil, "\(out)")
    }
}
