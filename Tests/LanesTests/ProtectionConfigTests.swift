import LaneConfig
import LaneModel
import LaneSys
import Testing

@Suite("Protected paths, unprotect and denial names")
struct ProtectionConfigTests {
    let parser = ProfileParser(knownSyscall: SeccompCompiler.isKnown)

    @Test("the shipped workspace-write profile protects git hooks and config, start-up files and agent config")
    func shippedList() throws {
        let file = LanesCLIPaths.root + "/Profiles/workspace-write.toml"
        let profile = try parser.parse(name: "workspace-write", file: file, text: try String(contentsOfFile: file, encoding: .utf8))
        for path in [".git/hooks", ".git/config", ".git/info", ".gitmodules", ".bashrc", ".vscode", ".envrc", ".mcp.json"] {
            #expect(profile.filesystem.protected.contains(path), "\(path)")
        }
    }

    @Test("a protected path outside the workspace and an empty unprotect reason are errors with lines")
    func errors() {
        do {
            _ = try parser.parse(name: "p", file: "p.toml", text: "description = \"d\"\n[filesystem]\nprotected = [\"/etc/passwd\", \"a/../b\"]\n")
            Issue.record("expected errors")
        } catch {
            let lines = error.diagnostics.map(\.description)
            #expect(lines.count == 2 && lines.allSatisfy { $0.hasPrefix("p.toml:3:") && $0.contains("workspace-relative") }, "\(lines)")
        }
        do {
            _ = try LaneParser().parse(name: "l", file: "l.toml", text: "description = \"d\"\nowner = \"o\"\nprofile = \"p\"\n[unprotect]\n\".vscode\" = \" \"\n")
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.map(\.description).contains { $0.hasPrefix("l.toml:5:") && $0.contains("reason") }, "\(error.diagnostics)")
        }
    }

    @Test("halt_on names: a refused call fires seccomp_violation and denied:NAME in errno mode")
    func haltNames() throws {
        var r = StepResult(lane: "x", profile: "p", profileFingerprint: "f", outcome: .exited, exitCode: 0)
        #expect(r.haltTriggers(["seccomp_violation"]).isEmpty)
        r.denials = [Denial(kind: .seccomp, name: "ptrace", count: 2, firstPid: 4, firstProcess: "strace"),
                     Denial(kind: .protectedPath, name: ".envrc")]
        #expect(r.haltTriggers(["oom_killed", "seccomp_violation", "denied:ptrace", "protected_path", "denied:unshare"])
                == ["seccomp_violation", "denied:ptrace", "protected_path"])
        #expect(r.denials.map { Denial(encoded: $0.encoded) } == r.denials)
        let lane = try LaneParser().parse(name: "l", file: "l.toml", text: "description = \"d\"\nowner = \"o\"\nprofile = \"p\"\nhalt_on = [\"denied:ptrace\", \"setid_bit\"]\n")
        #expect(lane.haltOn == ["denied:ptrace", "setid_bit"])
    }
}
