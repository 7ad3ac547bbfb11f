import Foundation
import LaneTestSupport
import Testing

/// Real toolchains must work in the workspace-write profile, or users turn the sandbox off.
@Suite("Real toolchains in workspace-write")
struct ToolchainTests {
    func run(_ script: String, in ws: String) throws -> LanesCLI.Output {
        try LanesCLI.run(["run", "engineering", "--workspace", ws, "--", "sh", "-c", script])
    }

    @Test("python3 runs a script that writes files in the workspace")
    func python() throws {
        let ws = try LanesCLI.temporaryDirectory()
        try "import pathlib\nfor i in range(3): pathlib.Path(f'out{i}.txt').write_text(str(i * i))\nprint('wrote')\n"
            .write(toFile: ws + "/make.py", atomically: true, encoding: .utf8)
        let out = try LanesCLI.run(["run", "engineering", "--workspace", ws, "--", "python3", "make.py"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "wrote\n")
        #expect(try String(contentsOfFile: ws + "/out2.txt", encoding: .utf8) == "4")
    }

    @Test("git init, add and commit in the workspace")
    func git() throws {
        let ws = try LanesCLI.temporaryDirectory()
        let out = try run("""
            git init -q repo && cd repo && echo hello > README && git add README &&
            git -c user.name=Agent -c user.email=agent@example.invalid commit -qm first && git log --oneline | wc -l
            """, in: ws)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        #expect(FileManager.default.fileExists(atPath: ws + "/repo/.git/HEAD"))
    }

    @Test("a shell pipeline")
    func pipeline() throws {
        let ws = try LanesCLI.temporaryDirectory()
        let out = try run("seq 1 100 | grep 7 | sort -r | head -n 3 | tr '\\n' ' '", in: ws)
        #expect(out.status == 0)
        #expect(out.stdout == "97 87 79 ")
    }

    @Test("cc compiles and runs a C program in the workspace")
    func cc() throws {
        let ws = try LanesCLI.temporaryDirectory()
        try "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 6 * 7); return 0; }\n"
            .write(toFile: ws + "/answer.c", atomically: true, encoding: .utf8)
        let out = try run("cc -O1 -o answer answer.c && ./answer", in: ws)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "42\n")
    }

    @Test("the extraction lane reads the workspace and writes only to out/")
    func extraction() throws {
        let ws = try LanesCLI.temporaryDirectory()
        try "contract text".write(toFile: ws + "/doc.txt", atomically: true, encoding: .utf8)
        let out = try LanesCLI.run(["run", "extraction", "--workspace", ws, "--", "sh", "-c",
                                    "wc -c < doc.txt > out/size.txt; echo x > stray.txt; echo $?"])
        #expect(out.status == 0)
        #expect(out.stderr.contains("Read-only file system"))
        #expect(!FileManager.default.fileExists(atPath: ws + "/stray.txt"))
        #expect(try String(contentsOfFile: ws + "/out/size.txt", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == "13")
    }
}
