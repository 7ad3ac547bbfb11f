import Foundation
import LaneTestSupport
import Testing

/// The toolchain tests of Tests/LanesTests/ToolchainTests.swift under filesystem.commit = "auto"
/// (the real workspace-write profile with that one key added): real tools must work on an
/// overlaid workspace, and what they write must land in the workspace when the step ends.
@Suite("Real toolchains under commit = auto")
struct ToolchainAutoTests {
    func fixture() throws -> SandboxFixture? {
        if let why = sandboxUnavailable(.current) {
            print("SKIP: ToolchainAutoTests: \(why)")
            return nil
        }
        return try SandboxFixture(.current)
    }

    @Test("python3 runs a script that writes files in the workspace")
    func python() throws {
        guard let f = try fixture() else { return }
        defer { f.cleanup() }
        try f.write("make.py", "import pathlib\nfor i in range(3): pathlib.Path(f'out{i}.txt').write_text(str(i * i))\nprint('wrote')\n")
        let out = try f.lanes(["run", "auto", "--workspace", f.workspace, "--", "python3", "make.py"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "wrote\n")
        #expect(f.read("out2.txt") == "4")
    }

    @Test("git init, add and commit in the workspace; the repository is usable on the host afterwards")
    func git() throws {
        guard let f = try fixture() else { return }
        defer { f.cleanup() }
        let out = try f.step("auto", run: "g", """
            git init -q repo && cd repo && echo hello > README && git add README &&
            git -c user.name=Agent -c user.email=agent@example.invalid commit -qm first && git log --oneline | wc -l
            """)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        #expect(f.exists("repo/.git/HEAD"))
        let log = try LanesCLI.execute("/usr/bin/git", ["-C", f.workspace + "/repo", "-c", "safe.directory=*", "log", "--oneline"])
        #expect(log.status == 0 && log.stdout.contains("first"), "\(log.stderr)")
        // A second step changes the repository it finds in the workspace (copy-up of .git files).
        let second = try f.step("auto", run: "g", step: "2", "cd repo && echo more >> README && git -c user.name=Agent -c user.email=a@example.invalid commit -qam second && git log --oneline | wc -l")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "2")
        #expect(f.read("repo/README") == "hello\nmore\n")
    }

    @Test("a shell pipeline")
    func pipeline() throws {
        guard let f = try fixture() else { return }
        defer { f.cleanup() }
        let out = try f.step("auto", run: "p", "seq 1 100 | grep 7 | sort -r | head -n 3 | tr '\\n' ' '")
        #expect(out.status == 0)
        #expect(out.stdout == "97 87 79 ")
    }

    @Test("cc compiles and runs a C program in the workspace")
    func cc() throws {
        guard let f = try fixture() else { return }
        defer { f.cleanup() }
        try f.write("answer.c", "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 6 * 7); return 0; }\n")
        let out = try f.step("auto", run: "c", "cc -O1 -o answer answer.c && ./answer")
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "42\n")
        let mode = try #require(f.mode("answer"))
        #expect(mode & 0o111 != 0, "the built binary stays executable")
    }
}
