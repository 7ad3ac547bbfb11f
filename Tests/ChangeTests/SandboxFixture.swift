import Foundation
import Glibc
import LaneTestSupport

/// A config directory with the real workspace-write profile set to commit = auto / review /
/// direct (the real file, one key added, so the fixture follows the profile), a lane for each,
/// a world-writable workspace and a state directory the identity under test creates itself.
struct SandboxFixture {
    let root: String
    let config: String
    let workspace: String
    let state: String
    let identity: LanesCLI.Identity

    init(_ identity: LanesCLI.Identity, protected: [String] = [], writableDirect: [String] = []) throws {
        self.identity = identity
        root = try LanesCLI.temporaryDirectory("lanes-ws-commit")
        config = root + "/config"
        workspace = root + "/ws"
        state = root + "/state"  // created by `lanes` as the identity under test
        let fm = FileManager.default
        try fm.createDirectory(atPath: config + "/Profiles", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: config + "/Lanes", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: workspace, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        // The workspace belongs to whoever runs lanes (an overlay in a user namespace cannot copy
        // up a file whose owner is not mapped in it: EOVERFLOW; docs/filesystem.md).
        if identity == .unprivileged { chown(workspace, 65534, 65534) }
        let real = try String(contentsOfFile: LanesCLI.packageRoot.path + "/Profiles/workspace-write.toml", encoding: .utf8)
        for mode in ["auto", "review", "direct"] {
            // The shipped profile's `protected` list stays; the test's paths are added to it.
            var profile = real.replacingOccurrences(of: "workspace = \"read-write\"\n", with: "workspace = \"read-write\"\ncommit = \"\(mode)\"\n")
            if !protected.isEmpty {
                profile = profile.replacingOccurrences(of: "protected = [\n", with: "protected = [\n    " + protected.map { "\"\($0)\", " }.joined() + "\n")
            }
            guard profile != real else { throw FixtureError("Profiles/workspace-write.toml has no `workspace = \"read-write\"` line") }
            try profile.write(toFile: config + "/Profiles/ws-\(mode).toml", atomically: true, encoding: .utf8)
            let lane = """
                description = "commit = \(mode) (test fixture)"
                owner = "tests"
                profile = "ws-\(mode)"
                writable_direct = [\(writableDirect.map { "\"\($0)\"" }.joined(separator: ", "))]

                """
            try lane.write(toFile: config + "/Lanes/\(mode).toml", atomically: true, encoding: .utf8)
        }
    }

    /// `lanes ARGS…` as the identity, with this config and state directory.
    @discardableResult
    func lanes(_ args: [String]) throws -> LanesCLI.Output {
        try LanesCLI.run(args, as: identity, config: config, environment: ["LANES_STATE": state])
    }

    /// Runs `script` in lane `mode` as step `step` of run `run`.
    func step(_ mode: String, run: String, step: String = "1", json: Bool = false, _ script: String) throws -> LanesCLI.Output {
        try lanes(["run", mode, "--workspace", workspace, "--run", run, "--step", step] + (json ? ["--json"] : []) + ["--", "sh", "-c", script])
    }

    func write(_ path: String, _ text: String) throws {
        try text.write(toFile: workspace + "/" + path, atomically: false, encoding: .utf8)
        chmod(workspace + "/" + path, 0o666)
        if identity == .unprivileged { chown(workspace + "/" + path, 65534, 65534) }
    }

    func read(_ path: String) -> String? { try? String(contentsOfFile: workspace + "/" + path, encoding: .utf8) }

    func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(workspace + "/" + path, &st) == 0
    }

    func mode(_ path: String) -> mode_t? {
        var st = stat()
        return lstat(workspace + "/" + path, &st) == 0 ? st.st_mode : nil
    }

    func treeDigest() throws -> String {
        try LanesCLI.execute("/bin/sh", ["-c", "cd \(workspace) && find . -printf '%p %y %m %l\\n' | sort && find . -type f -print0 | sort -z | xargs -0r sha256sum"]).stdout
    }

    /// The `changes` object of a `--json` result.
    static func changes(_ out: LanesCLI.Output) -> [String: Any]? {
        guard let line = out.stdout.split(separator: "\n").last,
              let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        return obj["changes"] as? [String: Any]
    }

    func cleanup() { _ = try? LanesCLI.execute("/bin/rm", ["-rf", root]) }
}

/// Why the sandbox tests cannot run as `identity` here (printed by the caller), or nil.
func sandboxUnavailable(_ identity: LanesCLI.Identity) -> String? {
    if !FileManager.default.isExecutableFile(atPath: LanesCLI.lanesPath) { return "the lanes binary is not built at \(LanesCLI.lanesPath)" }
    if identity == .unprivileged && !LanesCLI.canDropPrivileges { return "cannot switch to uid 65534 (not root, or no setpriv)" }
    if !((try? String(contentsOfFile: "/proc/filesystems", encoding: .utf8))?.contains("\toverlay") ?? false) {
        return "the kernel has no overlay filesystem"
    }
    return nil
}
