import Foundation
import Glibc
import LaneTestSupport
import Testing

/// filesystem.commit = auto | review from inside the sandbox, as root and as uid 65534.
@Suite("Workspace changes as a transaction, from inside the sandbox", .serialized)
struct SandboxChangeTests {
    static let identities: [LanesCLI.Identity] = [.current, .unprivileged]

    static func skips(_ identity: LanesCLI.Identity, _ test: String = #function) -> Bool {
        guard let why = sandboxUnavailable(identity) else { return false }
        print("SKIP: \(test) as \(identity): \(why)")
        return true
    }

    @Test("review: the step sees its writes, the workspace does not until apply; diff shows them; apply, revert round-trip; discard", arguments: identities)
    func reviewRoundTrip(_ identity: LanesCLI.Identity) throws {
        if Self.skips(identity) { return }
        let f = try SandboxFixture(identity)
        defer { f.cleanup() }
        try f.write("notes.txt", "line one\n")
        try f.write("old.txt", "to be removed\n")
        let before = try f.treeDigest()
        let out = try f.step("review", run: "rv", json: true,
                             "echo 'line two' >> notes.txt && echo fresh > new.txt && rm old.txt && cat notes.txt new.txt && exit 3")
        #expect(out.status == 3, "the exit status stays the step's own: \(out.stderr)")
        #expect(out.stdout.contains("line one\\nline two\\nfresh\\n"), "the step sees its own writes")
        let changes = try #require(SandboxFixture.changes(out), "\(out.stdout)")
        #expect(changes["state"] as? String == "pending")
        #expect(changes["added"] as? [String] == ["new.txt"])
        #expect(changes["modified"] as? [String] == ["notes.txt"])
        #expect(changes["deleted"] as? [String] == ["old.txt"])
        #expect(out.stderr.split(separator: "\n").filter { $0.contains("pending review") }.count == 1, "\(out.stderr)")
        #expect(try f.treeDigest() == before, "pending changes are invisible in the workspace")

        let diff = try f.lanes(["diff", "rv", "1"])
        #expect(diff.status == 0)
        #expect(diff.stdout.contains("+++ b/notes.txt\n@@ -1,1 +1,2 @@\n line one\n+line two\n"), "\(diff.stdout)")
        #expect(diff.stdout.contains("+fresh\n"))
        #expect(diff.stdout.contains("diff --lanes a/old.txt /dev/null"))
        let json = try f.lanes(["diff", "rv", "1", "--json"])
        let sha = try LanesCLI.execute("/bin/sh", ["-c", "printf 'fresh\\n' | sha256sum | cut -d' ' -f1"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(json.stdout.contains(sha), "the change set carries SHA-256 of what was written")

        let apply = try f.lanes(["apply", "rv", "1", "--by", "alice", "--reason", "reviewed"])
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(f.read("notes.txt") == "line one\nline two\n")
        #expect(f.read("new.txt") == "fresh\n")
        #expect(!f.exists("old.txt"))
        let revert = try f.lanes(["revert", "rv", "1", "--by", "bob"])
        #expect(revert.status == 0, "\(revert.stderr)")
        #expect(try f.treeDigest() == before, "workspace bytes equal before and after revert")
        let log = try f.lanes(["log", "rv"])
        #expect(log.stdout.contains("changes_applied by alice — reviewed"))
        #expect(log.stdout.contains("changes_reverted by bob"))
        #expect(try f.lanes(["verify", "rv"]).status == 0)

        _ = try f.step("review", run: "rv", step: "2", "echo never > never.txt")
        #expect(try f.lanes(["discard", "rv", "2", "--by", "carol", "--reason", "not wanted"]).status == 0)
        #expect(!f.exists("never.txt"))
        #expect(try f.lanes(["apply", "rv", "2", "--by", "carol"]).status == 1, "a discarded change set cannot be applied")
    }

    /// The hostile entries a step can plant. Control first: under commit = direct they land in
    /// the workspace as written (the probe works); under auto they are refused or neutralised.
    static let hostile = """
        echo base > a.txt
        ln -s /etc/passwd abs-link; ln -s ../../../etc/shadow up-link
        mkfifo fifo
        python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("sock")'
        echo s > suid; chmod 6755 suid
        ln a.txt hard
        ln /etc/hostname host-hard 2>/dev/null && echo HOSTLINK=made || echo HOSTLINK=refused
        mknod dev c 1 3 2>/dev/null && echo MKNOD=made || echo MKNOD=refused
        touch "$PWD/../escape" 2>/dev/null; touch ../escape2 2>/dev/null
        exit 0
        """

    @Test("symlinks leaving the workspace, FIFO, socket, device node, setuid, hard links, ../ names: refused or neutralised on apply", arguments: identities)
    func hostileEntries(_ identity: LanesCLI.Identity) throws {
        if Self.skips(identity) { return }
        let control = try SandboxFixture(identity)
        defer { control.cleanup() }
        let direct = try control.step("direct", run: "c", Self.hostile)
        #expect(direct.status == 0, "\(direct.stderr)")
        #expect(control.exists("abs-link") && control.exists("up-link") && control.exists("fifo") && control.exists("sock"),
                "control: the probe plants them when nothing stops it")
        // Set-id bits never get that far: the seccomp policy refuses them in every mode
        // (docs/security.md); stripping them on apply is the second line, tested on a bare
        // overlay in EngineTests where chmod 6755 succeeds.
        #expect(control.exists("suid") && (control.mode("suid") ?? 0o7777) & 0o6000 == 0, "the policy refused chmod 6755 under direct")

        let f = try SandboxFixture(identity)
        defer { f.cleanup() }
        let out = try f.step("auto", run: "h", json: true, Self.hostile)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains("HOSTLINK=refused"), "a hard link to a host file cannot even be made")
        #expect(out.stdout.contains("MKNOD=refused"))
        let changes = try #require(SandboxFixture.changes(out))
        #expect(changes["state"] as? String == "applied", "\(changes)")
        let refused = (changes["refused"] as? [String] ?? []).joined(separator: "\n")
        for name in ["abs-link", "up-link", "fifo", "sock"] {
            #expect(refused.contains(name + ":"), "\(name) is listed as refused: \(refused)")
            #expect(!f.exists(name), "\(name) must not reach the workspace")
        }
        #expect(f.read("a.txt") == "base\n")
        let suid = try #require(f.mode("suid"))
        #expect(suid & 0o7000 == 0, "setuid/setgid stripped (mode \(String(suid, radix: 8)))")
        var st = stat()
        #expect(lstat(f.workspace + "/hard", &st) == 0 && st.st_nlink == 1, "a hard link arrives as a copy")
        var parent = stat()
        #expect(lstat(f.root + "/escape", &parent) != 0 && lstat(f.root + "/escape2", &parent) != 0,
                "a ../ name reaches at most the sandbox's private /tmp, never the host")
        #expect(!out.stdout.contains("escape\""), "and is not part of the change set")
        if identity == .current && getuid() == 0 {
            var ws = stat()
            stat(f.workspace, &ws)
            #expect(st.st_uid == ws.st_uid, "the workspace owner owns what was applied")
        }
    }

    @Test("a change made in the workspace while a review step waits is a conflict: nothing is applied", arguments: identities)
    func conflict(_ identity: LanesCLI.Identity) throws {
        if Self.skips(identity) { return }
        let f = try SandboxFixture(identity)
        defer { f.cleanup() }
        try f.write("shared.txt", "base\n")
        let out = try f.step("review", run: "cf", "echo step >> shared.txt; echo other > other.txt")
        #expect(out.status == 0, "\(out.stderr)")
        try f.write("shared.txt", "someone else's edit\n")
        let apply = try f.lanes(["apply", "cf", "1", "--by", "alice"])
        #expect(apply.status == 82, "\(apply.stderr)")
        #expect(apply.stderr.contains("conflict: shared.txt"))
        #expect(f.read("shared.txt") == "someone else's edit\n")
        #expect(!f.exists("other.txt"), "all or nothing")
    }

    @Test("a concurrent change while an auto step runs aborts the whole apply", arguments: identities)
    func concurrentDuringAuto(_ identity: LanesCLI.Identity) throws {
        if Self.skips(identity) { return }
        let f = try SandboxFixture(identity)
        defer { f.cleanup() }
        try f.write("shared.txt", "base\n")
        // The step writes after 1.5 s; the host edits shared.txt as soon as the step's upper
        // directory exists (its start time is recorded by then). Lanes must notice.
        let script = "sleep 1.5; echo step > shared.txt; echo mine > mine.txt"
        let group = DispatchGroup()
        nonisolated(unsafe) var out: LanesCLI.Output?
        group.enter()
        DispatchQueue.global().async {
            out = try? f.step("auto", run: "cc", json: true, script)
            group.leave()
        }
        var waited = 0
        while !FileManager.default.fileExists(atPath: f.state + "/changes/cc/1/upper") && waited < 400 {
            usleep(10_000)
            waited += 1
        }
        try f.write("shared.txt", "the user's edit\n")
        group.wait()
        let result = try #require(out)
        let changes = try #require(SandboxFixture.changes(result), "\(result.stdout) \(result.stderr)")
        #expect(changes["state"] as? String == "conflict", "\(changes)")
        #expect(f.read("shared.txt") == "the user's edit\n")
        #expect(!f.exists("mine.txt"), "nothing of the change set applied")
    }

    @Test("a SIGKILLed supervisor leaves a change set that lanes show lists and lanes apply applies", arguments: identities)
    func killedSupervisor(_ identity: LanesCLI.Identity) throws {
        if Self.skips(identity) { return }
        let f = try SandboxFixture(identity)
        defer { f.cleanup() }
        var args = ["run", "auto", "--workspace", f.workspace, "--run", "k", "--step", "1", "--", "sh", "-c", "echo evidence > left.txt; sleep 30"]
        var executable = LanesCLI.lanesPath
        if identity == .unprivileged {
            args = ["--reuid=65534", "--regid=65534", "--clear-groups", "--", LanesCLI.lanesPath] + args
            executable = "/usr/bin/setpriv"
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.environment = ["PATH": "/usr/local/bin:/usr/bin:/bin", "LANES_CONFIG": f.config, "LANES_STATE": f.state, "HOME": "/tmp"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let upperFile = f.state + "/changes/k/1/upper/left.txt"
        var waited = 0
        while !FileManager.default.fileExists(atPath: upperFile) && waited < 200 {
            usleep(50_000)
            waited += 1
        }
        #expect(FileManager.default.fileExists(atPath: upperFile), "the step wrote into its upper directory")
        kill(p.processIdentifier, SIGKILL)  // setpriv execs lanes: the same pid
        p.waitUntilExit()
        #expect(!f.exists("left.txt"), "nothing applied by a dead supervisor")
        usleep(200_000)
        let show = try f.lanes(["show", "k"])
        #expect(show.stdout.contains("pending 1"), "\(show.stdout)")
        #expect(show.stdout.contains("step 1: pending changes: added left.txt"), "lanes show lists what the dead step changed: \(show.stdout)")
        let apply = try f.lanes(["apply", "k", "1", "--by", "alice", "--reason", "in-doubt step resolved from its changes"])
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(f.read("left.txt") == "evidence\n")
    }

    @Test("auto applies at once; protected paths wait for review; writable_direct is bound directly", arguments: identities)
    func autoProtectedDirect(_ identity: LanesCLI.Identity) throws {
        if Self.skips(identity) { return }
        let f = try SandboxFixture(identity, protected: [".git"], writableDirect: ["target"])
        defer { f.cleanup() }
        let out = try f.step("auto", run: "a", json: true, "echo ok > plain.txt")
        #expect(SandboxFixture.changes(out)?["state"] as? String == "applied")
        #expect(f.read("plain.txt") == "ok\n")
        let held = try f.step("auto", run: "a", step: "2", json: true, "mkdir -p .git && echo '[core]' > .git/config && echo built > target/out.o")
        let changes = try #require(SandboxFixture.changes(held))
        #expect(changes["state"] as? String == "pending")
        #expect((changes["held"] as? [String] ?? []).contains(".git/config"))
        #expect(!f.exists(".git/config"), "a protected path waits for review under auto")
        #expect(f.read("target/out.o") == "built\n", "writable_direct lands at once")
        #expect(!((changes["added"] as? [String] ?? []).contains { $0.hasPrefix("target") }), "and is not part of the change set")
    }

    @Test("fail closed: an overlay that cannot be had refuses the step with 125 naming why")
    func failClosed() throws {
        if Self.skips(.current) { return }
        let f = try SandboxFixture(.current)
        defer { f.cleanup() }
        let out = try LanesCLI.run(["run", "auto", "--workspace", f.workspace, "--state", f.workspace + "/.state", "--", "true"], config: f.config)
        #expect(out.status == 125, "\(out.stderr)")
        #expect(out.stderr.contains("overlay: ") && out.stderr.contains("overlap"), "\(out.stderr)")
    }
}
