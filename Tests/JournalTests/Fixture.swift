import Foundation
import LaneTestSupport
import Testing

/// A private world for CLI tests: a config directory (the real profiles, test lanes), a state
/// directory and a workspace.
struct Fixture {
    let root: String
    let config: String
    let state: String
    let workspace: String

    /// `lanes` maps lane name → extra TOML lines (after profile/owner/description).
    init(_ name: String, lanes: [String: String] = ["plain": ""], stateInWorkspace: Bool = false) throws {
        root = try LanesCLI.temporaryDirectory("journal-" + name)
        config = root + "/config"
        workspace = root + "/ws"
        state = stateInWorkspace ? workspace + "/.lanes-state" : root + "/state"
        let fm = FileManager.default
        try fm.createDirectory(atPath: config + "/Lanes", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: workspace, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        try fm.copyItem(atPath: LanesCLI.packageRoot.path + "/Profiles", toPath: config + "/Profiles")
        for (lane, extra) in lanes {
            let text = """
                description = "test lane \(lane)"
                owner = "tests"
                profile = "workspace-write"
                \(extra)
                """
            try text.write(toFile: config + "/Lanes/\(lane).toml", atomically: true, encoding: .utf8)
        }
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: root) }

    /// `lanes ARGS` with this fixture's config and state.
    @discardableResult
    func lanes(_ args: [String], stdin: Data? = nil, environment: [String: String] = [:]) throws -> LanesCLI.Output {
        var env = environment
        env["LANES_STATE"] = state
        return try LanesCLI.run(args, config: config, cwd: workspace, stdin: stdin, environment: env)
    }

    /// `lanes run LANE --workspace WS ARGS -- CMD`.
    @discardableResult
    func run(_ lane: String = "plain", _ options: [String] = [], _ command: [String], environment: [String: String] = [:]) throws -> LanesCLI.Output {
        try lanes(["run", lane, "--workspace", workspace] + options + ["--"] + command, environment: environment)
    }

    /// A started `lanes` process (for kill tests), with its output discarded.
    func spawn(_ args: [String]) throws -> Process {
        try LanesCLI.start(args, config: config, state: state, cwd: workspace)
    }

    /// `lanes log RUN --json` parsed.
    func log(_ run: String) throws -> [[String: Any]] {
        let out = try lanes(["log", run, "--json"])
        return out.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// The run id `lanes run` printed on stderr.
    static func runID(_ out: LanesCLI.Output) -> String? {
        out.stderr.split(separator: "\n").first { $0.hasPrefix("lanes: run ") }.map { String($0.dropFirst("lanes: run ".count)) }
    }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }
}

/// Runs `body(0..<count)` on `count` dedicated threads at once and waits for all of them.
/// (`DispatchQueue.concurrentPerform` would run only as many at a time as there are cores.)
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let done = DispatchSemaphore(value: 0)
    let start = DispatchSemaphore(value: 0)
    for i in 0..<count {
        let t = Thread {
            start.wait()
            body(i)
            done.signal()
        }
        t.stackSize = 1 << 20
        t.start()
    }
    for _ in 0..<count { start.signal() }
    for _ in 0..<count { done.wait() }
}
