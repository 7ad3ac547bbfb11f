import Foundation
import Glibc
import LaneTestSupport
import Testing

/// What the step can see and change: inherited fds, stdin, /proc, setuid and file-capability
/// binaries, /dev, the host outside the workspace, and Lanes' own config, state and binaries.
@Suite("Escape: visibility")
struct VisibilityTests {
    /// Lists the calling shell's fds as "N TARGET" lines.
    /// (No command substitution: its pipe would be one more fd of the shell. The directory fd
    /// the glob itself used is listed but closed by the time it is read: "gone".)
    static let listFds = #"for f in /proc/$$/fd/*; do printf "%s " "${f##*/}"; readlink "$f" || echo gone; done"#

    @Test("a sentinel fd >= 3 open in lanes is invisible inside", arguments: Escape.identities)
    func inheritedFd(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        // Control: without lanes the sentinel reaches the command.
        let control = try Escape.shell(identity, "exec 7</etc/hostname; exec sh -c '\(Self.listFds)'")
        #expect(control.stdout.contains("7 /etc/hostname"), "control: \(control)")

        let step = try Escape.shell(identity, "exec 7</etc/hostname; exec \"$LANES\" run engineering --workspace '\(ws)' -- sh -c '\(Self.listFds)'")
        #expect(step.status == 0, "\(step)")
        let fds = step.stdout.split(separator: "\n").filter { !$0.hasSuffix(" gone") }.map { String($0.prefix { $0 != " " }) }
        #expect(Set(fds) == ["0", "1", "2"], "the step sees fds beyond stdio: \(step.stdout)")
        #expect(!step.stdout.contains("hostname"), "\(step)")
    }

    @Test("a directory fd on stdin is refused", arguments: Escape.identities)
    func directoryStdin(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        let control = try Escape.shell(identity, "exec readlink /proc/self/fd/0 < /")
        #expect(control.stdout == "/\n", "control: a directory on stdin reaches a plain command: \(control)")

        let step = try Escape.shell(identity, "exec \"$LANES\" run engineering --workspace '\(ws)' -- true < /")
        #expect(step.status == 125, "\(step)")
        #expect(step.stderr.contains("stdin") && step.stderr.contains("directory"), "the message must name stdin: \(step)")
    }

    @Test("/proc shows only the sandbox's processes; the supervisor's environment is unreadable", arguments: Escape.identities)
    func procIsolation(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        let secret = "lanes-escape-secret-" + UUID().uuidString
        // A host process carrying the secret, and lanes itself started with it.
        let helper = Process()
        helper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        helper.arguments = ["30"]
        helper.environment = ["LANES_ESCAPE_SECRET": secret]
        try helper.run()
        // SIGKILL: the test runner's threads may block SIGTERM, and a spawned child inherits that.
        defer { kill(helper.processIdentifier, SIGKILL); helper.waitUntilExit() }

        // What a step might try on PID 1 (lane-init, run by the same host uid as the tool): read
        // its environment, memory map, root, fd targets and executable, or write the latter
        // (CVE-2019-5736). Non-dumpable, it refuses all of them.
        let probes = """
            cat /proc/PID/environ >/dev/null 2>&1; echo "environ $?"
            cat /proc/PID/maps >/dev/null 2>&1; echo "maps $?"
            readlink /proc/PID/root >/dev/null 2>&1; echo "root $?"
            readlink /proc/PID/fd/0 >/dev/null 2>&1; echo "fd $?"
            cat /proc/PID/exe >/dev/null 2>&1; echo "read-exe $?"
            """
        let keys = ["environ", "maps", "root", "fd", "read-exe"]
        // Control: the host can read the helper's environment and all the rest the same way.
        let pid = String(helper.processIdentifier)
        let control = try Escape.host("/bin/sh", ["-c", "tr '\\0' ' ' < /proc/\(pid)/environ; echo; " + probes.replacingOccurrences(of: "PID", with: pid)])
        #expect(control.stdout.contains(secret), "control: \(control)")
        for key in keys { #expect(Escape.value(key, in: control.stdout) == 0, "control: \(key): \(control)") }

        let script = """
            ls -d /proc/[0-9]* | wc -l | sed 's/^/count /'
            for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/environ; tr '\\0' ' ' < $p/cmdline; echo; done
            (echo x >> /proc/1/exe) 2>/dev/null; echo "write-exe $?"

            """ + probes.replacingOccurrences(of: "PID", with: "1")
        let step = try Escape.step(identity, in: ws, ["sh", "-c", script], environment: ["LANES_ESCAPE_SECRET": secret])
        #expect(step.status == 0, "\(step)")
        #expect(!step.stdout.contains(secret) && !step.stderr.contains(secret), "the secret leaked into the step: \(step)")
        #expect(!step.stdout.contains("sleep 30"), "a host process is visible: \(step)")
        // lane-init, sh, and the pipeline's ls, wc and sed at most.
        #expect((Escape.value("count", in: step.stdout) ?? 99) <= 5, "\(step)")
        for key in keys + ["write-exe"] {
            #expect((Escape.value(key, in: step.stdout) ?? 0) != 0, "\(key) of PID 1 worked inside: \(step)")
        }
    }

    @Test("a setuid or file-capability binary gains nothing", arguments: Escape.identities)
    func setuidGainsNothing(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        guard getuid() == 0 else {
            print("SKIP: setuidGainsNothing: making a setuid-root binary needs root (uid \(getuid()))")
            return
        }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        var fs = statvfs()
        guard statvfs(ws, &fs) == 0, fs.f_flag & UInt(ST_NOSUID) == 0 else {
            print("SKIP: setuidGainsNothing: \(ws) is on a nosuid mount, so the host control cannot work")
            return
        }
        var binaries = [ws + "/suid-status"]
        try FileManager.default.copyItem(atPath: ws + "/status", toPath: binaries[0])
        #expect(chown(binaries[0], 0, 0) == 0 && chmod(binaries[0], 0o4755) == 0)
        if FileManager.default.isExecutableFile(atPath: "/usr/sbin/setcap") {
            binaries.append(ws + "/fcap-status")
            try FileManager.default.copyItem(atPath: ws + "/status", toPath: binaries[1])
            let setcap = try Escape.host("/usr/sbin/setcap", ["cap_dac_override,cap_sys_admin+ep", binaries[1]])
            #expect(setcap.status == 0, "\(setcap)")
        } else {
            print("NOTE: /usr/sbin/setcap is missing: only the setuid binary is tested")
        }
        for binary in binaries {
            // Control: run by uid 65534 on the host, the binary does gain privilege.
            let control = try Escape.host("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", binary])
            #expect(control.stdout.contains("euid 0") || !control.stdout.contains("CapEff:\t0000000000000000"),
                    "control: \(binary) gains nothing even on the host: \(control)")

            let step = try Escape.step(identity, in: ws, [binary])
            #expect(step.status == 0, "\(step)")
            #expect(step.stdout.contains("euid 1000\n"), "\(binary): \(step)")
            #expect(step.stdout.contains("CapEff:\t0000000000000000"), "\(binary) has capabilities inside: \(step)")
            #expect(step.stdout.contains("NoNewPrivs:\t1"), "\(step)")
        }
    }

    @Test("/dev is minimal and mknod fails", arguments: Escape.identities)
    func minimalDev(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        if getuid() == 0 {
            // Control: root on the host can make a device node with the same probe.
            let host = Escape.results(try Escape.host(ws + "/syscalls", ["mknod=\(ws)/host-node"]).stdout)
            #expect(host["mknod"] == 0, "control: \(host)")
        } else {
            print("NOTE: minimalDev: mknod control skipped (needs root, uid \(getuid()))")
        }
        let step = try Escape.step(identity, in: ws, ["sh", "-c", "ls -A /dev; for t in /dev/node /tmp/node \(ws)/node; do \(ws)/syscalls mknod=$t; done"])
        #expect(step.status == 0, "\(step)")
        let lines = step.stdout.split(separator: "\n").map(String.init)
        let expected: Set = ["fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"]
        #expect(Set(lines.filter { !$0.hasPrefix("mknod ") }) == expected, "\(step)")
        let mknods = lines.filter { $0.hasPrefix("mknod ") }
        #expect(mknods.count == 3 && !mknods.contains("mknod ok"), "mknod worked inside: \(step)")
        #expect(!FileManager.default.fileExists(atPath: ws + "/node"))
    }
}
