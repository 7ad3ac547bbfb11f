import Foundation
import Glibc
import LaneTestSupport
import Testing

/// The host's filesystem: nothing outside the workspace can be written, the host stays as it
/// was, and Lanes' own config, state and binaries are invisible even inside the workspace.
@Suite("Escape: host filesystem")
struct HostFilesystemTests {
    /// Mode and owner of a host file. (Not its mtime: every write to /dev/null on the host,
    /// by anything, moves that; the step's touch is checked by its exit status instead.)
    static func snapshot(_ path: String) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { return "missing" }
        return "mode \(String(st.st_mode, radix: 8)) uid \(st.st_uid) gid \(st.st_gid)"
    }

    @Test("writes outside the workspace fail and the host is unchanged", arguments: Escape.identities)
    func writesOutsideWorkspace(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        let sibling = try LanesCLI.temporaryDirectory("lanes-escape-sibling")
        defer { Escape.remove(sibling) }
        let parent = (ws as NSString).deletingLastPathComponent
        let marker = "lanes-escape-" + UUID().uuidString.prefix(8)
        if getuid() == 0 {
            // Control: on the host, root can change /dev/null's metadata with these very commands
            // (the same mode, so nothing changes but the timestamp).
            let control = try Escape.host("/bin/sh", ["-c", "touch /dev/null && chmod 666 /dev/null"])
            #expect(control.status == 0, "control: \(control)")
        }
        let devNull = Self.snapshot("/dev/null")
        let script = """
            for t in /usr/\(marker) /etc/\(marker) /\(marker) /dev/\(marker) /proc/\(marker) \(sibling)/\(marker) \(parent)/\(marker); do
              (echo x > $t) 2>/dev/null; echo "$t $?"
            done
            touch /dev/null 2>/dev/null; echo "touch-null $?"
            chmod 666 /dev/null 2>/dev/null; echo "chmod-null $?"
            cat /proc/sys/kernel/core_pattern > /tmp/pattern; (cat /tmp/pattern > /proc/sys/kernel/core_pattern) 2>/dev/null; echo "core_pattern $?"
            echo x > \(ws)/\(marker); echo "workspace $?"
            """
        let step = try Escape.step(identity, in: ws, ["sh", "-c", script])
        #expect(step.status == 0, "\(step)")
        for target in ["/usr", "/etc", "", "/dev", "/proc", sibling] {
            let code = Escape.value("\(target)/\(marker)", in: step.stdout)
            #expect(code != nil && code != 0, "writing \(target)/\(marker) worked inside: \(step)")
        }
        for key in ["touch-null", "chmod-null", "core_pattern"] {
            #expect((Escape.value(key, in: step.stdout) ?? 0) != 0, "\(key) worked inside: \(step)")
        }
        // The workspace is writable and shared: this is what the test can see from outside.
        #expect(Escape.value("workspace", in: step.stdout) == 0, "\(step)")
        #expect(FileManager.default.fileExists(atPath: ws + "/" + marker), "a workspace write did not reach the host")
        // The host is unchanged (the workspace's parent is the step's own tmpfs /tmp inside).
        #expect(Self.snapshot("/dev/null") == devNull, "the host's /dev/null changed")
        for dir in ["/usr", "/etc", "", "/dev", sibling, parent] {
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/\(marker)"), "\(dir)/\(marker) appeared on the host")
        }
    }

    @Test("host key directories under /etc are not bound", arguments: Escape.identities)
    func privateKeysAbsent(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        // When lanes runs as root the step's uid maps to host root, the owner of these files:
        // only their absence keeps them unreadable.
        let present = ["/etc/ssl/private"].filter { FileManager.default.fileExists(atPath: $0) }
        guard !present.isEmpty else {
            print("SKIP: privateKeysAbsent: this host has no /etc/ssl/private to hide")
            return
        }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        let step = try Escape.step(identity, in: ws, ["sh", "-c", present.map { "test -e \($0); echo \"\($0) $?\"" }.joined(separator: "; ")])
        for path in present {
            #expect(Escape.value(path, in: step.stdout) == 1, "\(path) is visible inside: \(step)")
        }
    }

    @Test("the config, state and binary directories are invisible inside the workspace", arguments: Escape.identities)
    func lanesOwnFilesInvisible(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let root = LanesCLI.packageRoot.path
        let bin = LanesCLI.productsDirectory.resolvingSymlinksInPath().path
        // A state directory inside the workspace (lanes creates "state" itself, owned by its user).
        let stateParent = bin + "/../escape-state-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: stateParent, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o777])
        defer { try? FileManager.default.removeItem(atPath: stateParent) }
        let state = URL(fileURLWithPath: stateParent + "/state").standardizedFileURL.path
        let env = ["LANES_STATE": state]
        // A first step creates the state directory and its journal.
        let first = try Escape.step(identity, in: root, ["true"], environment: env)
        #expect(first.status == 0, "\(first)")

        // Control: on the host all of it is there.
        let fm = FileManager.default
        #expect(fm.fileExists(atPath: root + "/Profiles/workspace-write.toml") && fm.fileExists(atPath: root + "/Lanes/engineering.toml"))
        #expect(fm.isReadableFile(atPath: bin + "/lanes") && fm.isReadableFile(atPath: bin + "/lane-init"))
        let stateFiles = (try? fm.contentsOfDirectory(atPath: state)) ?? []
        #expect(!stateFiles.isEmpty, "control: the state directory \(state) is empty on the host")

        let script = """
            ls -A Profiles Lanes \(bin) \(state) 2>/dev/null
            cat Profiles/*.toml Lanes/*.toml 2>/dev/null; echo "read-config $?"
            (echo x > Profiles/injected.toml) 2>/dev/null; echo "write-config $?"
            cat \(bin)/lanes > /dev/null 2>&1; echo "read-lanes $?"
            (echo x >> \(bin)/lane-init) 2>/dev/null; echo "write-init $?"
            (echo x > \(state)/injected) 2>/dev/null; echo "write-state $?"
            """
        let step = try Escape.step(identity, in: root, ["sh", "-c", script], environment: env)
        #expect(step.status == 0, "\(step)")
        for key in ["read-config", "write-config", "read-lanes", "write-init", "write-state"] {
            #expect((Escape.value(key, in: step.stdout) ?? 0) != 0, "\(key) worked inside: \(step)")
        }
        let listed = step.stdout.split(separator: "\n").filter { !$0.contains(" ") && !$0.hasSuffix(":") }
        #expect(listed.isEmpty, "Lanes' own files are listed inside: \(listed)")
        #expect(!step.stdout.contains("[filesystem]") && !step.stdout.contains("profile ="), "config content leaked: \(step)")
        #expect(!fm.fileExists(atPath: root + "/Profiles/injected.toml") && !fm.fileExists(atPath: state + "/injected"))
    }
}
