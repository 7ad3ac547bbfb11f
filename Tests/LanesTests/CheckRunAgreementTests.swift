import Foundation
import LaneTestSupport
import Testing

/// Issue 9 item 6: `lanes check` agrees with `lanes run`. A corpus of broken profiles and lanes,
/// each fed to both: both refuse (check exit 1, run exit 125, as README documents), and every
/// `FILE:LINE:` line `run` prints is one `check` printed, the expected one among them.
@Suite("lanes check agrees with lanes run")
struct CheckRunAgreementTests {
    /// One broken configuration: a profile `p` and a lane `l` on it, and the line (with the
    /// message's key words) that both must print for the file it names.
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        var profile = "description = \"corpus\"\n"
        var lane = "description = \"corpus\"\nowner = \"tests\"\nprofile = \"p\"\n"
        /// "Profiles/p.toml:3:" or "Lanes/l.toml:3:", relative to the configuration directory.
        let at: String
        let says: String
        var description: String { name }
    }

    static let corpus: [Case] = [
        Case(name: "never-listed syscall", profile: "description = \"corpus\"\n[seccomp]\nallow = [\"ptrace\"]\n",
             at: "Profiles/p.toml:3:", says: "never list"),
        Case(name: "never-listed syscall among good ones", profile: "description = \"corpus\"\n\n[seccomp]\ndefault_action = \"kill\"\nallow = [\"getpid\", \"bpf\"]\n",
             at: "Profiles/p.toml:5:", says: "\"bpf\" cannot be allowed"),
        Case(name: "unknown syscall allowed", profile: "description = \"corpus\"\n[seccomp]\nallow = [\"no_such_syscall\"]\n",
             at: "Profiles/p.toml:3:", says: "unknown syscall \"no_such_syscall\""),
        Case(name: "unknown syscall denied", profile: "description = \"corpus\"\n[seccomp]\ndeny = [\"nope_call\"]\n",
             at: "Profiles/p.toml:3:", says: "unknown syscall \"nope_call\""),
        Case(name: "conditional syscall allowed outright", profile: "description = \"corpus\"\n[seccomp]\nallow = [\"socket\"]\n",
             at: "Profiles/p.toml:3:", says: "only with conditions"),
        Case(name: "too few open files for lane-init", profile: "description = \"corpus\"\n[limits]\nopen_files = 3\n",
             at: "Profiles/p.toml:3:", says: "open_files"),
        Case(name: "memory below the sandbox's own need", profile: "description = \"corpus\"\n[limits]\nmemory = \"1M\"\n",
             at: "Profiles/p.toml:3:", says: "at least 4M"),
        Case(name: "unknown profile key", profile: "description = \"corpus\"\n[filesystem]\nworkspace = \"read-write\"\nread_olny = [\"/usr\"]\n",
             at: "Profiles/p.toml:4:", says: "read_olny"),
        Case(name: "relative bind path", profile: "description = \"corpus\"\n[filesystem]\nread_only = [\"usr/lib\"]\n",
             at: "Profiles/p.toml:3:", says: "absolute path"),
        Case(name: "TOML syntax error", profile: "description = \"corpus\"\n[limits\n",
             at: "Profiles/p.toml:2:", says: "TOML syntax error"),
        Case(name: "lane names a missing profile", lane: "description = \"corpus\"\nowner = \"tests\"\n\nprofile = \"nowhere\"\n",
             at: "Lanes/l.toml:4:", says: "no profile named \"nowhere\""),
        Case(name: "lane without owner", lane: "description = \"corpus\"\nprofile = \"p\"\nowner = 3\n",
             at: "Lanes/l.toml:3:", says: "owner"),
        Case(name: "lane with an escaping writable dir", lane: "description = \"corpus\"\nowner = \"tests\"\nprofile = \"p\"\nwritable = [\"../out\"]\n",
             at: "Lanes/l.toml:4:", says: "inside the workspace"),
    ]

    /// The `FILE:LINE: message` lines of an output (run prefixes the first with `lanes: config: `).
    static func diagnostics(_ text: String, under dir: String) -> Set<String> {
        var lines = Set<String>()
        for raw in text.split(separator: "\n") {
            var line = String(raw)
            if line.hasPrefix("lanes: config: ") { line.removeFirst("lanes: config: ".count) }
            if line.hasPrefix(dir + "/") && line.contains(".toml:") { lines.insert(line) }
        }
        return lines
    }

    @Test("both refuse, with the same FILE:LINE message", arguments: corpus)
    func agree(_ c: Case) throws {
        let dir = try LanesCLI.temporaryDirectory("lanes-corpus")
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/Profiles", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/Lanes", withIntermediateDirectories: true)
        try c.profile.write(toFile: dir + "/Profiles/p.toml", atomically: true, encoding: .utf8)
        try c.lane.write(toFile: dir + "/Lanes/l.toml", atomically: true, encoding: .utf8)
        let ws = try LanesCLI.temporaryDirectory()
        let state = try LanesCLI.temporaryDirectory("lanes-corpus-state") + "/state"  // made by lanes: owned by whoever runs it (LANES_TEST_NO_HOME)

        let checkAll = try LanesCLI.run(["check"], config: dir)
        let checkLane = try LanesCLI.run(["check", dir + "/Lanes/l.toml"], config: dir)
        let run = try LanesCLI.run(["run", "l", "--workspace", ws, "--", "true"], config: dir, environment: ["LANES_STATE": state])

        #expect(checkAll.status == 1, "lanes check passed what run refuses: \(checkAll.stdout)\(checkAll.stderr)")
        #expect(checkLane.status == 1, "lanes check LANE passed what run refuses: \(checkLane.stdout)\(checkLane.stderr)")
        #expect(run.status == 125, "lanes run: \(run.status) \(run.stderr)")
        let fromCheck = Self.diagnostics(checkAll.stderr, under: dir)
        let fromCheckLane = Self.diagnostics(checkLane.stderr, under: dir)
        let fromRun = Self.diagnostics(run.stderr, under: dir)
        let expected = dir + "/" + c.at
        #expect(fromRun.contains { $0.hasPrefix(expected) && $0.contains(c.says) }, "run did not say \(c.at) … \(c.says): \(run.stderr)")
        #expect(fromCheck.contains { $0.hasPrefix(expected) && $0.contains(c.says) }, "check did not say \(c.at) … \(c.says): \(checkAll.stderr)")
        #expect(fromRun.isSubset(of: fromCheck), "run said what check did not: \(fromRun.subtracting(fromCheck))")
        #expect(fromRun.isSubset(of: fromCheckLane), "check of the lane alone missed: \(fromRun.subtracting(fromCheckLane))")
    }

    @Test("a valid configuration passes both (the corpus is broken on purpose, not the harness)")
    func validPasses() throws {
        let dir = try LanesCLI.temporaryDirectory("lanes-corpus")
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/Profiles", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/Lanes", withIntermediateDirectories: true)
        try "description = \"ok\"\n[seccomp]\nallow = [\"getpid\"]\ndeny = [\"getppid\"]\n[limits]\nopen_files = 64\n"
            .write(toFile: dir + "/Profiles/p.toml", atomically: true, encoding: .utf8)
        try "description = \"ok\"\nowner = \"tests\"\nprofile = \"p\"\n".write(toFile: dir + "/Lanes/l.toml", atomically: true, encoding: .utf8)
        let ws = try LanesCLI.temporaryDirectory()
        let state = try LanesCLI.temporaryDirectory("lanes-corpus-state") + "/state"  // made by lanes: owned by whoever runs it (LANES_TEST_NO_HOME)
        #expect(try LanesCLI.run(["check"], config: dir).status == 0)
        #expect(try LanesCLI.run(["run", "l", "--workspace", ws, "--", "true"], config: dir, environment: ["LANES_STATE": state]).status == 0)
    }
}
