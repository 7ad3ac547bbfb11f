import Foundation

/// Runs the built `lanes` binary end to end, as the tests' user or as an unprivileged uid, and
/// captures what it printed. Used by every integration test.
public enum LanesCLI {
    /// The result of one invocation.
    public struct Output: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        public let stdoutBytes: Data
    }

    /// Who runs `lanes`.
    public enum Identity: Sendable, Equatable, CustomStringConvertible {
        case current
        /// uid/gid 65534 through setpriv, with no supplementary groups.
        case unprivileged
        public var description: String {
            switch self {
            case .current: return "current user"
            case .unprivileged: return "unprivileged uid 65534"
            }
        }
        public static func == (a: Identity, b: Identity) -> Bool { a.description == b.description }
    }

    /// The package root (found from this source file).
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    /// The directory of the built products (the one the tests were built into).
    public static let productsDirectory: URL = {
        if let env = ProcessInfo.processInfo.environment["LANES_BIN_DIR"] { return URL(fileURLWithPath: env) }
        // The test bundle lives next to the products.
        for candidate in [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()] {
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("lanes").path) { return candidate }
        }
        return packageRoot.appendingPathComponent(".build/debug")
    }()

    public static var lanesPath: String { productsDirectory.appendingPathComponent("lanes").path }

    /// Whether setpriv exists to run as an unprivileged uid.
    public static var canDropPrivileges: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") }

    /// Runs `lanes ARGS…` and waits. `config` defaults to the package's own Profiles/ and Lanes/.
    @discardableResult
    public static func run(_ arguments: [String], as identity: Identity = .current, config: String? = nil,
                           cwd: String? = nil, stdin: Data? = nil, environment: [String: String] = [:]) throws -> Output {
        var env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "LANES_CONFIG": config ?? packageRoot.path, "HOME": "/tmp"]
        for (k, v) in environment { env[k] = v }
        var (program, args) = (lanesPath, arguments)
        var identity = identity
        if HostMode.noHome {
            env["HOME"] = "/nonexistent"
            if identity == .current && canDropPrivileges { identity = .unprivileged }
        }
        if identity == .unprivileged {
            (program, args) = ("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", program] + args)
        }
        (program, args) = HostMode.wrap(program, args)
        return try execute(program, args, environment: env, cwd: cwd, stdin: stdin)
    }

    /// Ways to run the whole CLI suite on an "ordinary host" (issue 11), set by `scripts/test`:
    /// - `LANES_TEST_NOFILE=N`: every `lanes` starts with a soft RLIMIT_NOFILE of N (what PAM
    ///   sessions and systemd services give: 1024, or less);
    /// - `LANES_TEST_NO_HOME=1`: every `lanes` runs with `HOME=/nonexistent`, and as uid 65534
    ///   when the tests run as root (a service account without a home).
    public enum HostMode {
        public static var nofile: Int? { ProcessInfo.processInfo.environment["LANES_TEST_NOFILE"].flatMap { Int($0) } }
        public static var noHome: Bool { ProcessInfo.processInfo.environment["LANES_TEST_NO_HOME"] == "1" }

        /// `program args…` under the soft RLIMIT_NOFILE of `LANES_TEST_NOFILE`, if set.
        public static func wrap(_ program: String, _ args: [String]) -> (String, [String]) {
            guard let n = nofile else { return (program, args) }
            return softNofile(n, program, args)
        }

        /// `program args…` started by a shell that first lowers the soft open-files limit to `n`.
        public static func softNofile(_ n: Int, _ program: String, _ args: [String]) -> (String, [String]) {
            ("/bin/sh", ["-c", "ulimit -Sn \(n) && exec \"$0\" \"$@\"", program] + args)
        }
    }

    /// Starts `lanes ARGS…` in the background with its output discarded (for stop and kill tests).
    /// With `captureStdout` its stdout is a `Pipe` (`process.standardOutput`) to read after it ends.
    public static func start(_ arguments: [String], config: String, state: String, cwd: String,
                             environment: [String: String] = [:], captureStdout: Bool = false) throws -> Process {
        let process = Process()
        let (program, args) = HostMode.wrap(lanesPath, arguments)
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = args
        process.environment = ["PATH": "/usr/local/bin:/usr/bin:/bin", "LANES_CONFIG": config, "LANES_STATE": state,
                               "HOME": HostMode.noHome ? "/nonexistent" : "/tmp"]
            .merging(environment) { $1 }
        process.currentDirectoryURL = URL(fileURLWithPath: cwd)
        process.standardOutput = captureStdout ? Pipe() : FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Runs any program and waits, reading stdout and stderr concurrently (so a large output
    /// cannot deadlock the test). A death by signal N is reported as status 128 + N.
    public static func execute(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                               cwd: String? = nil, stdin: Data? = nil) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        if let stdin { try? input.fileHandleForWriting.write(contentsOf: stdin) }
        try? input.fileHandleForWriting.close()
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return Output(status: status, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self), stdoutBytes: outData)
    }

    /// A fresh temporary directory, world-writable so an unprivileged `lanes` can use it too.
    public static func temporaryDirectory(_ prefix: String = "lanes-test") throws -> String {
        let path = NSTemporaryDirectory() + prefix + "-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o777])
        return path
    }

    /// Compiles a C program with cc (static where possible, so it runs in any sandbox view).
    public static func compileC(_ source: String, name: String, in dir: String) throws -> String {
        let src = dir + "/" + name + ".c", bin = dir + "/" + name
        try source.write(toFile: src, atomically: true, encoding: .utf8)
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: "/usr/bin/cc")
        cc.arguments = ["-O1", "-o", bin, src]
        try cc.run()
        cc.waitUntilExit()
        guard cc.terminationStatus == 0 else { throw CocoaError(.executableLoad) }
        return bin
    }
}
