import Foundation
import Glibc
import LaneSys
import LaneTestSupport

/// A throw-away config (one profile `p`, one lane `t`), workspace and cgroup root for one test,
/// so the test sees only its own step groups.
struct CgroupFixture {
    let dir: String
    let workspace: String
    let cgroupRoot: String
    var environment: [String: String]

    /// nil when this host cannot run the cgroup tests; the reason is printed.
    static func make(_ test: String) throws -> CgroupFixture? {
        if let why = skipReason {
            print("SKIP \(test): \(why)")
            return nil
        }
        let dir = try LanesCLI.temporaryDirectory("lanes-cg")
        let ws = dir + "/ws"
        try FileManager.default.createDirectory(atPath: ws, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        try FileManager.default.createDirectory(atPath: dir + "/Lanes", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/Profiles", withIntermediateDirectories: true)
        try "description = \"cgroup tests\"\nowner = \"tests\"\nprofile = \"p\"\n".write(toFile: dir + "/Lanes/t.toml", atomically: true, encoding: .utf8)
        let root = "lanes-test-" + UUID().uuidString.prefix(8).lowercased()
        return CgroupFixture(dir: dir, workspace: ws, cgroupRoot: root,
                             environment: ["LANES_CGROUP_ROOT": root, "LANES_STATE": dir + "/state"])
    }

    /// Why the end-to-end cgroup tests cannot run here (they need root and memory+pids).
    static let skipReason: String? = {
        if getuid() != 0 { return "needs root: the step groups are created in the supervisor's own cgroup, which only root may write here" }
        if !FileManager.default.isExecutableFile(atPath: LanesCLI.lanesPath) { return "the lanes binary is not built at \(LanesCLI.lanesPath)" }
        let d = Cgroups.driver(environment: ["LANES_CGROUP_ROOT": "lanes-probe"])
        let ok = d.enforceable.contains(.memory) && d.enforceable.contains(.pids)
        for c in d.report.controllers where c.writable { rmdir(c.directory) }
        return ok ? nil : "the memory and pids cgroup controllers are not writable: \(d.report)"
    }()

    /// Writes Profiles/p.toml with these `[limits]` lines (wall clock 30 s, grace 200 ms).
    func profile(limits: String = "", tmp: String = "64M") throws {
        let text = """
            description = "cgroup test profile"
            [filesystem]
            workspace = "read-write"
            tmpfs = { "/tmp" = "\(tmp)" }
            [limits]
            wall_clock = "30s"
            kill_grace = "200ms"
            processes = 4096
            \(limits)
            """
        try text.write(toFile: dir + "/Profiles/p.toml", atomically: true, encoding: .utf8)
    }

    struct Run {
        let output: LanesCLI.Output
        let json: [String: Any]
        let seconds: Double
        var outcome: String { json["outcome"] as? String ?? "?" }
        var limit: String? { json["limit"] as? String }
        func number(_ key: String) -> Double? { (json[key] as? NSNumber)?.doubleValue }
        var stdout: String { json["stdout"] as? String ?? "" }
        var summary: String { "status \(output.status) stderr=\(output.stderr.prefix(400)) json=\(output.stdout.prefix(1500))" }
    }

    /// `lanes run t --json [--timeout T] -- ARGV…` in the workspace.
    func run(_ argv: [String], timeout: Double? = nil, env: [String: String] = [:],
             as identity: LanesCLI.Identity = .current) throws -> Run {
        var args = ["run", "t", "--workspace", workspace, "--json"]
        if let timeout { args += ["--timeout", String(timeout)] }
        let start = Date()
        let out = try LanesCLI.run(args + ["--"] + argv, as: identity, config: dir,
                                   environment: environment.merging(env) { $1 })
        let seconds = Date().timeIntervalSince(start)
        let json = (try? JSONSerialization.jsonObject(with: out.stdoutBytes)) as? [String: Any] ?? [:]
        return Run(output: out, json: json, seconds: seconds)
    }

    /// The directories step groups of this fixture go in (one per hierarchy on v1).
    var rootDirectories: [String] {
        Array(Set(Cgroups.driver(environment: ["LANES_CGROUP_ROOT": cgroupRoot]).report.controllers
            .filter(\.writable).map(\.directory)))
    }

    /// Step groups that exist now, as paths.
    func stepGroups() -> [String] {
        rootDirectories.flatMap { root in HostCgroupFileSystem().subdirectories(root).filter { $0.hasPrefix("lanes-") }.map { root + "/" + $0 } }
    }

    /// Names of the step groups that exist now (on v1 each has a directory per hierarchy).
    func stepNames() -> Set<String> { Set(stepGroups().map { String($0.split(separator: "/").last ?? "") }) }

    /// Compiles a C program into the workspace.
    func compile(_ name: String, _ source: String) throws -> String {
        try LanesCLI.compileC(source, name: name, in: workspace)
    }

    func cleanup() {
        for d in rootDirectories { rmdir(d) }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// Host-side observations.
enum Host {
    /// Pids of processes whose command line contains `token`.
    static func processes(containing token: String) -> [Int32] {
        let me = getpid()
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.filter { pid in
            guard pid != me, let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(token)
        }
    }

    /// Pids of processes whose argv is exactly `argv` (not `lanes … -- argv`).
    static func processes(argv: [String]) -> [Int32] {
        let want = argv.joined(separator: "\u{0}") + "\u{0}"
        return processes(containing: argv.joined(separator: " ")).filter { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) == want
        }
    }

    static var processCount: Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { Int32($0) != nil }.count
    }

    /// MemAvailable in bytes.
    static var memAvailable: UInt64 {
        let text = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            return (UInt64(line.split(separator: " ")[1]) ?? 0) * 1024
        }
        return 0
    }

    /// Free bytes of the filesystem holding `path`.
    static func freeBytes(_ path: String) -> UInt64 {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return 0 }
        return UInt64(s.f_bavail) * UInt64(s.f_frsize)
    }

    static var mountCount: Int {
        ((try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    /// Polls `condition` every 50 ms for up to `seconds`.
    static func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }
}
