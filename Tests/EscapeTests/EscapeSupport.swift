import Foundation
import Glibc
import LaneTestSupport
import Testing

/// Shared machinery of the escape battery (ARCHITECTURE.md §6, issue 2): the C probes compiled
/// once per test process, running a step as either identity, host-side controls, and parsing
/// what the probes print.
///
/// Every test first proves its probe can see the forbidden thing (a *control*: the same probe
/// run on the host, where it must succeed or at least fail differently), then runs it inside the
/// sandbox and asserts it failed the right way. A test that cannot fail is a defect.
enum Escape {
    /// Both identities `lanes` runs as: the tests' user (root here) and uid 65534.
    static let identities: [LanesCLI.Identity] = [.current, .unprivileged]

    /// The C probes, next to this file.
    static let probeSources = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Probes")
    static let probeNames = ["syscalls", "abi", "status", "lifetime", "maxrss", "modes"]

    /// Why `identity` cannot be exercised on this host, or nil when it can. Only a missing
    /// *feature* counts; the caller prints it as a SKIP line and returns.
    static func unavailable(_ identity: LanesCLI.Identity) -> String? {
        if !FileManager.default.isExecutableFile(atPath: LanesCLI.lanesPath) {
            return "the lanes binary is not built at \(LanesCLI.lanesPath)"
        }
        guard identity == .unprivileged else { return nil }
        if getuid() != 0 { return "the tests run as uid \(getuid()), not root: cannot switch to uid 65534" }
        if !FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") { return "/usr/bin/setpriv is missing" }
        if readTrimmed("/proc/sys/user/max_user_namespaces") == "0" { return "user namespaces are disabled (max_user_namespaces = 0)" }
        if readTrimmed("/proc/sys/kernel/unprivileged_userns_clone") == "0" { return "unprivileged user namespaces are disabled" }
        if readTrimmed("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1" {
            return "AppArmor restricts unprivileged user namespaces"
        }
        return nil
    }

    /// Prints why a test case skips, and returns true, when `identity` cannot run here.
    static func skips(_ identity: LanesCLI.Identity, _ test: String = #function) -> Bool {
        guard let why = unavailable(identity) else { return false }
        print("SKIP: \(test) as \(identity): \(why)")
        return true
    }

    // MARK: probes and workspaces

    private static let compiled: Result<String, any Error> = Result {
        let dir = try LanesCLI.temporaryDirectory("lanes-escape-probes")
        for name in probeNames {
            let source = try String(contentsOf: probeSources.appendingPathComponent(name + ".c"), encoding: .utf8)
            let binary = try LanesCLI.compileC(source, name: name, in: dir)
            chmod(binary, 0o755)
        }
        return dir
    }

    /// A fresh world-writable workspace holding a copy of every probe (a step sees only its
    /// workspace, so the probes must be inside it).
    static func workspace() throws -> String {
        let probes = try compiled.get()
        let dir = try LanesCLI.temporaryDirectory("lanes-escape")
        for name in probeNames {
            try FileManager.default.copyItem(atPath: probes + "/" + name, toPath: dir + "/" + name)
        }
        return dir
    }

    /// Removes a workspace (or any test directory) and everything in it.
    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A state directory per identity, outside every workspace, so journals of root and
    /// uid 65534 never share files.
    private static let states: [String: String] = {
        var map: [String: String] = [:]
        // lanes creates the directory itself, owned by its user and private.
        for identity in identities { map[identity.description] = (try? LanesCLI.temporaryDirectory("lanes-escape-state")).map { $0 + "/state" } }
        return map
    }()

    static func environment(_ identity: LanesCLI.Identity, _ extra: [String: String] = [:]) -> [String: String] {
        var env = extra
        if env["LANES_STATE"] == nil, let state = states[identity.description] { env["LANES_STATE"] = state }
        return env
    }

    // MARK: running steps

    /// What a run printed and how it ended (128+N when killed by signal N).
    struct Ran: Sendable, CustomStringConvertible {
        let status: Int32
        let stdout: String
        let stderr: String
        var description: String { "status \(status)\nstdout: \(stdout.prefix(2000))\nstderr: \(stderr.prefix(2000))" }
    }

    /// Runs `command` as a step of the `engineering` lane in `workspace`.
    static func step(_ identity: LanesCLI.Identity, in workspace: String, _ command: [String],
                     timeout: Double? = nil, json: Bool = false, environment extra: [String: String] = [:]) throws -> Ran {
        var args = ["run", "engineering", "--workspace", workspace]
        if let timeout { args += ["--timeout", String(timeout)] }
        if json { args.append("--json") }
        let out = try LanesCLI.run(args + ["--"] + command, as: identity, environment: environment(identity, extra))
        return Ran(status: out.status, stdout: out.stdout, stderr: out.stderr)
    }

    /// Runs `sh -c script` as `identity` with `$LANES` set to the lanes binary and the same
    /// environment `LanesCLI.run` gives lanes: for tests that must shape lanes' own fds.
    static func shell(_ identity: LanesCLI.Identity, _ script: String, environment extra: [String: String] = [:]) throws -> Ran {
        var env = environment(identity, extra)
        env["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        env["HOME"] = "/tmp"
        env["LANES_CONFIG"] = env["LANES_CONFIG"] ?? LanesCLI.packageRoot.path
        env["LANES"] = LanesCLI.lanesPath
        var argv = ["/bin/sh", "-c", script]
        if identity == .unprivileged { argv = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] + argv }
        return try host(argv[0], Array(argv.dropFirst()), environment: env)
    }

    /// Runs a program on the host, as the tests' user: the control half of a test.
    static func host(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                     cwd: String? = nil) throws -> Ran {
        let out = try LanesCLI.execute(executable, arguments, environment: environment, cwd: cwd)
        return Ran(status: out.status, stdout: out.stdout, stderr: out.stderr)
    }

    // MARK: reading results

    /// Parses the `syscalls` probe's lines ("ACTION ok", "ACTION errno N") into action → errno
    /// (0 = the forbidden thing worked).
    static func results(_ text: String) -> [String: Int32] {
        var map: [String: Int32] = [:]
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count == 2, words[1] == "ok" { map[String(words[0])] = 0 }
            if words.count == 3, words[1] == "errno", let n = Int32(words[2]) { map[String(words[0])] = n }
        }
        return map
    }

    /// The number after `key ` on the first line of `text` that is exactly "KEY N"
    /// ("zombies 0" → 0).
    static func value(_ key: String, in text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix(key + " ") {
            if let n = Int(line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)) { return n }
        }
        return nil
    }

    /// Host processes (other than this one) whose command line contains `marker`.
    static func hostProcesses(containing marker: String) -> [String] {
        let me = String(getpid())
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.filter { $0.allSatisfy(\.isNumber) && $0 != me }.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let line = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return line.contains(marker) ? "\(pid): \(line)" : nil
        }
    }

    static func readTrimmed(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
