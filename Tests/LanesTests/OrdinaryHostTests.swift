import Foundation
import LaneTestSupport
import Testing

/// Issue 11, "ordinary hosts": low open-file limits, users without a home, workspaces that would
/// expose the host. Each runs the built `lanes` the way such a host starts it.
@Suite("ordinary hosts")
struct OrdinaryHostTests {
    static let env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "LANES_CONFIG": LanesCLI.packageRoot.path]

    func state() throws -> String { try LanesCLI.temporaryDirectory("lanes-state") + "/state" }

    @Test("a soft RLIMIT_NOFILE of 1024, 256 or 64 runs steps (was: spawn (fd map): Invalid argument)", arguments: [1024, 256, 64])
    func lowSoftLimit(_ soft: Int) throws {
        let ws = try LanesCLI.temporaryDirectory()
        var env = Self.env
        env["LANES_STATE"] = try state()
        let (program, args) = LanesCLI.HostMode.softNofile(soft, LanesCLI.lanesPath,
                                                            ["run", "engineering", "--workspace", ws, "--", "sh", "-c", "echo in-lane"])
        // Control: the wrapper really lowers the soft limit of what it starts.
        let control = try LanesCLI.execute(LanesCLI.HostMode.softNofile(soft, "/bin/sh", ["-c", "ulimit -Sn"]).0,
                                           LanesCLI.HostMode.softNofile(soft, "/bin/sh", ["-c", "ulimit -Sn"]).1)
        #expect(control.stdout == "\(soft)\n", "control: \(control)")
        let out = try LanesCLI.execute(program, args, environment: env)
        #expect(out.status == 0, "\(out)")
        #expect(out.stdout == "in-lane\n")
        #expect(!out.stderr.contains("fd map"))
    }

    @Test("a hard limit below the profile's open_files is refused before the spawn, naming the key")
    func lowHardLimit() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else {
            print("skipped: /usr/bin/prlimit (util-linux) is missing, so no hard limit can be lowered for one process")
            return
        }
        let ws = try LanesCLI.temporaryDirectory()
        var env = Self.env
        env["LANES_STATE"] = try state()
        let out = try LanesCLI.execute("/usr/bin/prlimit", ["--nofile=256:256", "--", LanesCLI.lanesPath,
                                                            "run", "engineering", "--workspace", ws, "--", "true"], environment: env)
        #expect(out.status == 125, "\(out)")
        #expect(out.stderr.contains("lanes: rlimits: RLIMIT_NOFILE: limits.open_files = 4096 is above this process's hard limit 256")
                && out.stderr.contains("(profile workspace-write)"), "\(out)")
        // `lanes check` knows it too, naming the profile file and line.
        let check = try LanesCLI.execute("/usr/bin/prlimit", ["--nofile=256:256", "--", LanesCLI.lanesPath, "check"], environment: env)
        #expect(check.status == 1, "\(check)")
        #expect(check.stderr.contains("Profiles/workspace-write.toml:") && check.stderr.contains("limits.open_files"), "\(check)")
    }

    @Test("a user whose home does not exist gets a private state directory and a notice (was: 125)")
    func noHome() throws {
        let ws = try LanesCLI.temporaryDirectory()
        var env = Self.env
        env["HOME"] = "/nonexistent"
        let out: LanesCLI.Output
        let uid: UInt32
        if LanesCLI.canDropPrivileges {
            uid = 65534
            out = try LanesCLI.execute("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", LanesCLI.lanesPath,
                                                            "run", "engineering", "--workspace", ws, "--", "sh", "-c", "echo no-home"], environment: env)
        } else if getuid() != 0 {
            uid = getuid()
            out = try LanesCLI.execute(LanesCLI.lanesPath, ["run", "engineering", "--workspace", ws, "--", "sh", "-c", "echo no-home"], environment: env)
        } else {
            print("skipped: root without setpriv cannot run lanes as a user without a home (root's state is /var/lib/lanes)")
            return
        }
        #expect(out.status == 0, "\(out)")
        #expect(out.stdout == "no-home\n")
        let expected = FileManager.default.fileExists(atPath: "/run/user/\(uid)") ? "/run/user/\(uid)/lanes" : "/var/tmp/lanes-\(uid)"
        #expect(out.stderr.contains("HOME (/nonexistent) does not exist; the state directory is \(expected)"), "\(out)")
        var st = stat()
        #expect(lstat(expected, &st) == 0 && st.st_uid == uid && st.st_mode & 0o077 == 0)
    }

    @Test("workspaces that expose the host are refused; --allow-host-workspace overrides and is recorded",
          arguments: ["/", "/etc", "/usr", "/root", "/home", "/var"])
    func hostWorkspace(_ path: String) throws {
        let st = try state()
        var env = Self.env
        env["LANES_STATE"] = st
        let out = try LanesCLI.execute(LanesCLI.lanesPath, ["run", "engineering", "--workspace", path, "--", "cat", "/etc/shadow"], environment: env)
        #expect(out.status == 125, "\(out)")
        #expect(out.stderr.contains("lanes: workspace: \(path)") && out.stderr.contains("--allow-host-workspace"), "\(out)")
        #expect(!out.stdout.contains("root:"))
        guard path == "/usr" else { return }
        // The override, on a lane whose profile binds the workspace read-only: it runs, and the
        // journaled intent says the boundary was widened.
        let config = try LanesCLI.temporaryDirectory("lanes-config")
        try FileManager.default.createDirectory(atPath: config + "/Lanes", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: config + "/Profiles", withDestinationPath: LanesCLI.packageRoot.path + "/Profiles")
        try "description = \"ro\"\nowner = \"t\"\nprofile = \"read-only\"\n".write(toFile: config + "/Lanes/ro.toml", atomically: true, encoding: .utf8)
        env["LANES_CONFIG"] = config
        let allowed = try LanesCLI.execute(LanesCLI.lanesPath, ["run", "ro", "--workspace", path, "--allow-host-workspace",
                                                                "--run", "widened", "--", "true"], environment: env)
        #expect(allowed.status == 0, "\(allowed)")
        let exported = try LanesCLI.execute(LanesCLI.lanesPath, ["export", "widened"], environment: env)
        #expect(exported.stdout.contains("allow_host_workspace"), "\(exported)")
    }
}
