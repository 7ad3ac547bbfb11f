import Foundation
import Glibc
import LaneChanges
import LaneModel
import LaneTestSupport
import Testing

@Suite("Change-set engine", .serialized)
struct EngineTests {
    @Test("compute sees added, modified, deleted, renamed, mode changes and symlinks; pending changes are not in the workspace")
    func compute() throws {
        guard ChangeFixture.overlayAvailable else { return }
        let f = try ChangeFixture()
        defer { f.cleanup() }
        try f.write("keep.txt", "keep\n")
        try f.write("mod.txt", "one\n")
        try f.write("gone.txt", "bye\n")
        try f.write("old-name.txt", "moving content\n")
        try f.write("script.sh", "echo hi\n")
        let set = try f.step("1", "echo new > new.txt && echo two >> mod.txt && rm gone.txt && mv old-name.txt new-name.txt && chmod 755 script.sh && ln -s keep.txt link && mkdir -p d/e && echo x > d/e/f")
        let s = set.summary
        #expect(s.state == "pending")
        #expect(Set(s.added) == ["new.txt", "link", "d", "d/e", "d/e/f"])
        #expect(s.modified == ["mod.txt"])
        #expect(s.deleted == ["gone.txt"])
        #expect(s.renamed == [.init(from: "old-name.txt", to: "new-name.txt")])
        #expect(s.modeChanged == ["script.sh"])
        let newEntry = try #require(set.entries.first { $0.path == "new.txt" })
        #expect(newEntry.size == 4)
        let expected = try sha256("new\n")
        #expect(newEntry.sha256 == expected)
        // Nothing reached the workspace.
        #expect(f.read("new.txt") == nil)
        #expect(f.read("mod.txt") == "one\n")
        #expect(f.read("gone.txt") == "bye\n")
    }

    @Test("apply then revert round-trips the workspace bytes; discard removes the upper directory")
    func roundTrip() throws {
        guard ChangeFixture.overlayAvailable else { return }
        let f = try ChangeFixture()
        defer { f.cleanup() }
        try f.write("a.txt", "a\n")
        try f.write("dir/b.txt", "b\n")
        try f.write("dir/c.bin", "c\n", mode: 0o600)
        let before = try f.treeDigest()
        var set = try f.step("1", "echo A >> a.txt && rm -r dir && mkdir dir && echo fresh > dir/new && printf '\\0\\1' > bin && ln -s a.txt l")
        #expect(try ChangeEngine.apply(&set, store: f.store) == .applied)
        #expect(f.read("a.txt") == "a\nA\n")
        #expect(f.read("dir/b.txt") == nil)
        #expect(f.read("dir/new") == "fresh\n")
        let applied = try f.treeDigest()
        #expect(applied != before)
        #expect(!FileManager.default.fileExists(atPath: try f.store.upper(run: "r1", step: "1")))
        try ChangeEngine.revert(&set, store: f.store)
        #expect(try f.treeDigest() == before)
        #expect(set.state == .reverted)

        var other = try f.step("2", "echo never > never.txt")
        try ChangeEngine.discard(&other, store: f.store)
        #expect(f.read("never.txt") == nil)
        #expect(!FileManager.default.fileExists(atPath: try f.store.upper(run: "r1", step: "2")))
    }

    @Test("dangerous entries are refused or neutralised: symlinks leaving the workspace, FIFOs, sockets, device nodes, setuid, hard links")
    func dangerous() throws {
        guard ChangeFixture.overlayAvailable else { return }
        let f = try ChangeFixture()
        defer { f.cleanup() }
        try f.write("a.txt", "a\n")
        var set = try f.step("1", """
            ln -s /etc/passwd abs && ln -s ../../etc/shadow up && ln -s d/../../x sneaky && mkfifo fifo && \
            python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("sock")' && \
            echo suid > suid && chmod 6755 suid && ln a.txt hard && echo ok > fine
            """)
        // A device node can only be planted in the upper directory from outside (no CAP_MKNOD in
        // a user namespace); plant one as root, which the tests are.
        let upper = try f.store.upper(run: "r1", step: "1")
        if getuid() == 0 {
            #expect(mknod(upper + "/null", S_IFCHR | 0o666, dev_t(1 << 8 | 3)) == 0)
            try ChangeEngine.compute(&set, store: f.store)
        }
        let refused = Set(set.refused.map(\.path))
        #expect(refused.isSuperset(of: ["abs", "up", "sneaky", "fifo", "sock"]))
        if getuid() == 0 { #expect(refused.contains("null")) }
        #expect(try ChangeEngine.apply(&set, store: f.store) == .applied)
        for name in ["abs", "up", "sneaky", "fifo", "sock", "null"] {
            var st = stat()
            #expect(lstat(f.workspace + "/" + name, &st) != 0, "\(name) must not be applied")
        }
        var st = stat()
        #expect(lstat(f.workspace + "/suid", &st) == 0)
        #expect(st.st_mode & 0o7000 == 0, "setuid/setgid stripped")
        #expect(lstat(f.workspace + "/hard", &st) == 0)
        #expect(st.st_nlink == 1, "a hard link is applied as a copy")
        #expect(f.read("hard") == "a\n")
        #expect(f.read("fine") == "ok\n")
    }

    @Test("a workspace change after the change set was computed is a conflict: nothing is applied")
    func conflictAfter() throws {
        guard ChangeFixture.overlayAvailable else { return }
        let f = try ChangeFixture()
        defer { f.cleanup() }
        try f.write("shared.txt", "base\n")
        var set = try f.step("1", "echo step >> shared.txt && echo other > other.txt")
        try f.write("shared.txt", "the user's edit\n")
        #expect(try ChangeEngine.apply(&set, store: f.store) == .conflict(["shared.txt"]))
        #expect(f.read("shared.txt") == "the user's edit\n")
        #expect(f.read("other.txt") == nil, "all or nothing")
        #expect(set.state == .pending)
    }

    @Test("a workspace change while the step ran is a conflict found when computing")
    func conflictDuring() throws {
        guard ChangeFixture.overlayAvailable else { return }
        let f = try ChangeFixture()
        defer { f.cleanup() }
        try f.write("shared.txt", "base\n")
        let started = ChangeEngine.realtimeNs()
        usleep(20_000)
        try f.write("shared.txt", "concurrent\n")  // the user, while the step runs
        var set = try f.step("1", "echo late > other.txt && touch -c shared.txt && echo step > shared.txt", startedNs: started)
        #expect(set.state == .conflict)
        #expect(set.conflicts.contains("shared.txt"))
        #expect(try ChangeEngine.apply(&set, store: f.store) == .conflict(set.conflicts))
        #expect(f.read("shared.txt") == "concurrent\n")
        #expect(f.read("other.txt") == nil)
    }

    @Test("revert is refused while a later applied step changed the same path, and works in order")
    func revertOrder() throws {
        guard ChangeFixture.overlayAvailable else { return }
        let f = try ChangeFixture()
        defer { f.cleanup() }
        try f.write("x.txt", "0\n")
        let before = try f.treeDigest()
        var first = try f.step("1", "echo 1 > x.txt")
        #expect(try ChangeEngine.apply(&first, store: f.store) == .applied)
        var second = try f.step("2", "echo 2 > x.txt")
        #expect(try ChangeEngine.apply(&second, store: f.store) == .applied)
        do {
            try ChangeEngine.revert(&first, store: f.store)
            Issue.record("revert of step 1 should be refused")
        } catch {
            #expect(error.message.contains("step 2 of run r1"))
        }
        try ChangeEngine.revert(&second, store: f.store)
        #expect(f.read("x.txt") == "1\n")
        try ChangeEngine.revert(&first, store: f.store)
        #expect(try f.treeDigest() == before)
    }

    @Test("protected paths are held for review under auto; the rest of an auto step is applied at once")
    func heldUnderAuto() throws {
        guard ChangeFixture.overlayAvailable else { return }
        let f = try ChangeFixture()
        defer { f.cleanup() }
        var set = try f.step("1", "mkdir -p .git && echo evil > .git/config && echo ok > a")
        set.protected = [".git"]
        set.state = .pending
        var copy = set
        let summary = ChangeEngine.finishStep(&copy, store: f.store, auto: true)
        #expect(summary.state == "pending")
        #expect(summary.held.contains(".git/config"))
        #expect(f.read(".git/config") == nil)

        var plain = try f.step("2", "echo ok > b")
        let s2 = ChangeEngine.finishStep(&plain, store: f.store, auto: true)
        #expect(s2.state == "applied")
        #expect(f.read("b") == "ok\n")
    }

    @Test("a file with one link on the workspace's filesystem is moved into place, not written twice; a hard-linked one is copied")
    func moveNotCopy() throws {
        guard ChangeFixture.overlayAvailable else { return }
        let f = try ChangeFixture()
        defer { f.cleanup() }
        var set = try f.step("1", "echo big > big.bin && echo two > one && ln one other")
        let upper = try f.store.upper(run: "r1", step: "1")
        var up = stat(), applied = stat(), linked = stat()
        #expect(lstat(upper + "/big.bin", &up) == 0)
        #expect(try ChangeEngine.apply(&set, store: f.store) == .applied)
        #expect(lstat(f.workspace + "/big.bin", &applied) == 0)
        #expect(applied.st_ino == up.st_ino, "moved with rename(2)")
        #expect(lstat(f.workspace + "/one", &linked) == 0 && linked.st_nlink == 1)
        #expect(f.read("other") == "two\n")
    }

    @Test("ids and paths that could leave the state directory or the workspace are rejected")
    func names() {
        #expect(!ChangeStore.isSafeID("../x"))
        #expect(!ChangeStore.isSafeID(".hidden"))
        #expect(!ChangeStore.isSafeID("a/b"))
        #expect(ChangeStore.isSafeID("20261201-abc.1"))
        #expect(!isSafeRelativePath("../x"))
        #expect(!isSafeRelativePath("a/../../x"))
        #expect(!isSafeRelativePath("/etc/passwd"))
        #expect(!isSafeRelativePath("a//b"))
        #expect(isSafeRelativePath("a/b.c"))
    }
}

func sha256(_ text: String) throws -> String {
    let out = try LanesCLI.execute("/bin/sh", ["-c", "printf '%s' \"$1\" | sha256sum | cut -d' ' -f1", "sh", text])
    return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}
