import Foundation
import LaneTestSupport
import Testing

/// A private world for governance CLI tests: the real Profiles/ and Lanes/, plus test lanes; a
/// state directory; a workspace with a fake `git` that records each call in `side`.
struct GovFixture {
    let root: String
    let config: String
    let state: String
    let workspace: String

    /// `lanes` maps lane name → extra TOML (after description/owner/profile).
    init(_ name: String, lanes: [String: String] = [:]) throws {
        root = try LanesCLI.temporaryDirectory("gov-" + name)
        config = root + "/config"
        workspace = root + "/ws"
        state = root + "/state"
        let fm = FileManager.default
        try fm.createDirectory(atPath: workspace + "/bin", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        try fm.createDirectory(atPath: config, withIntermediateDirectories: true)
        try fm.copyItem(atPath: LanesCLI.packageRoot.path + "/Profiles", toPath: config + "/Profiles")
        try fm.copyItem(atPath: LanesCLI.packageRoot.path + "/Lanes", toPath: config + "/Lanes")
        for (lane, extra) in lanes {
            try """
                description = "test lane \(lane)"
                owner = "tests"
                profile = "workspace-write"
                \(extra)
                """.write(toFile: config + "/Lanes/\(lane).toml", atomically: true, encoding: .utf8)
        }
        try "#!/bin/sh\necho \"git $*\" >> \(workspace)/side\n".write(toFile: git, atomically: true, encoding: .utf8)
        chmod(git, 0o755)
    }

    var git: String { workspace + "/bin/git" }
    var side: String { workspace + "/side" }
    var sideLines: Int { ((try? String(contentsOfFile: side, encoding: .utf8)) ?? "").split(separator: "\n").count }

    func cleanup() { try? FileManager.default.removeItem(atPath: root) }

    @discardableResult
    func lanes(_ args: [String]) throws -> LanesCLI.Output {
        try LanesCLI.run(args, config: config, cwd: workspace, environment: ["LANES_STATE": state])
    }

    @discardableResult
    func run(_ lane: String, _ options: [String], _ command: [String]) throws -> LanesCLI.Output {
        try lanes(["run", lane, "--workspace", workspace] + options + ["--"] + command)
    }

    /// A started `lanes run` (for stop and kill tests).
    func spawn(_ lane: String, _ options: [String], _ command: [String]) throws -> Process {
        try LanesCLI.start(["run", lane, "--workspace", workspace] + options + ["--"] + command, config: config, state: state, cwd: workspace)
    }

    /// `lanes log RUN --json`, parsed; decision bodies are under "body".
    func log(_ run: String) throws -> [[String: Any]] {
        try lanes(["log", run, "--json"]).stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// The decisions of a run: action names in order.
    func decisions(_ run: String) throws -> [String] {
        try log(run).filter { $0["kind"] as? String == "decision" }.compactMap { ($0["body"] as? [String: Any])?["action"] as? String }
    }

    /// Waits until `condition` holds (polling), up to `seconds`.
    static func wait(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }
}
