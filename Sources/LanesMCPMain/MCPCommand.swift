import ArgumentParser
import Foundation
import Glibc
import LaneMCP
import LaneConfig
import LaneJournal
import LaneModel
import LaneRuntime
import LaneState
import LaneSys

/// `lanes mcp` (this executable, `lanes-mcp`, which `lanes mcp` execs): serves the lane's sandbox
/// to an agent host over the Model Context Protocol. A separate executable so the MCP SDK,
/// SwiftNIO and FoundationNetworking stay out of the one-shot `lanes run` image (start-up cost)
/// and out of its fully static link (FoundationNetworking needs libcurl).
@main
struct MCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lanes mcp",
        abstract: "Serve a lane's sandbox as an MCP server (tools run_command, read_file, write_file, list_files, run_status).",
        discussion: """
            The agent host starts `lanes mcp --lane LANE` and speaks MCP on its stdin and stdout
            (nothing else is ever written to stdout; logs go to stderr, LANES_LOG=info for more).
            Every tool call that runs something is one journaled step of one run (--run, default a
            new run, printed on stderr): the rules of `lanes run` apply (replay of a completed
            step id, nondeterminism, in doubt, review gates, budgets, halts, stop). Starting the
            server again with the same --run resumes the run. See docs/mcp.md.

            Exit status: 0 when the client disconnected; 64 for a wrong command line; 125 when
            the lane cannot be served (the message names the stage).
            """)

    @Option(name: .long, help: ArgumentHelp("Directory holding Profiles/ and Lanes/ (default: LANES_CONFIG, ./Profiles + ./Lanes, $XDG_CONFIG_HOME/lanes, /etc/lanes, the installed ones).", valueName: "DIR"))
    var config: String?

    @Option(name: .customLong("state"), help: ArgumentHelp("The state directory: journal and secrets (default: LANES_STATE, $XDG_STATE_HOME/lanes, /var/lib/lanes for root, ~/.local/state/lanes).", valueName: "DIR"))
    var state: String?

    var stateDirectory: String {
        var env: [String: String] = [:]
        for name in ["LANES_STATE", "XDG_STATE_HOME", "HOME"] { env[name] = Paths.environment(name) }
        return StateDirectory.resolve(explicit: state, environment: env, uid: getuid())
    }

    @Option(help: ArgumentHelp("The lane (a file Lanes/LANE.toml).", valueName: "LANE"))
    var lane: String

    @Option(name: .customLong("run"), help: ArgumentHelp("The run the steps belong to (default: a new run). The same run again resumes it.", valueName: "ID"))
    var runID: String?

    @Option(help: ArgumentHelp("The workspace directory (default: the lane's, else the current directory).", valueName: "DIR"))
    var workspace: String?

    @Option(help: ArgumentHelp("Serve Streamable HTTP on a unix socket instead of stdio (unix:PATH).", valueName: "unix:PATH"))
    var listen: String?

    @Option(help: ArgumentHelp("Sandboxes kept started ahead of the next call, 0 to 8 (0: each starts with its call). A prestarted sandbox runs nothing until its call's intent is recorded; see docs/mcp.md.", valueName: "N"))
    var prestart: Int = 1

    @Option(help: ArgumentHelp("Steps that run at once, 1 to 1024: further calls wait for a slot, before anything of them is recorded; see docs/mcp.md.", valueName: "N"))
    var maxSteps: Int = LaneMCPServer.Options.defaultMaxSteps

    @Option(help: ArgumentHelp("Bytes of each output stream (stdout, stderr) a tool result carries, 0 to 67108864 (0: all of the capture): a longer one keeps its head and tail with a marker between; the journal keeps the whole capture. See docs/mcp.md.", valueName: "BYTES"))
    var replyOutput: Int = LaneMCPServer.Options.defaultReplyOutput

    @Option(help: ArgumentHelp("With --listen: MCP sessions kept open, 1 to 65536 (default 256). A new one beyond it closes the session used least recently with no request in progress (its client gets 404); when all have one, it is refused (503).", valueName: "N"))
    var maxSessions: Int?

    func validate() throws {
        func check(_ option: String, _ value: Int, _ range: ClosedRange<Int>, unit: String = "") throws {
            guard range.contains(value) else {
                throw ValidationError("\(option) expects \(range.lowerBound) to \(range.upperBound)\(unit), found \(value)")
            }
        }
        try check("--prestart", prestart, 0...8)
        try check("--max-steps", maxSteps, LaneMCPServer.Options.maxStepsRange)
        try check("--reply-output", replyOutput, LaneMCPServer.Options.replyOutputRange, unit: " bytes")
        if let maxSessions {
            guard listen != nil else { throw ValidationError("--max-sessions applies only with --listen unix:PATH") }
            try check("--max-sessions", maxSessions, UnixHTTPListener.maxSessionsRange)
        }
        if let listen, !listen.hasPrefix("unix:") || listen.count <= 5 {
            throw ValidationError("--listen expects unix:PATH, found \"\(listen)\"")
        }
    }

    func run() throws {
        guard let config = Paths.locateConfig(config) else {
            printError("lanes: config: no Profiles/ and Lanes/ found (use --config DIR or LANES_CONFIG)")
            throw ExitCode(ExitStatus.failedToStart)
        }
        let service = StepService(
            options: ServiceOptions(config: config, stateDirectory: stateDirectory, initHelper: Paths.initHelper,
                                    currentDirectory: Paths.currentDirectory,
                                    hiddenPaths: [Paths.executableDirectory, Paths.parent(Paths.initHelper)],
                                    prestartSandboxes: prestart),
            logger: ProcessLogging.logger)
        // Fail before serving when the journal cannot be opened (not on the first call).
        do { _ = try service.openJournal() } catch {
            printError("lanes: \(error.description)")
            throw ExitCode(JournalExitStatus.journalError)
        }
        // The lane must load now (a wrong lane is an error at start, not on the first call).
        let loadedLane: Lane, loadedProfile: Profile
        do { (loadedLane, loadedProfile) = try config.load(lane: lane, parser: ProfileParser(knownSyscall: SeccompCompiler.isKnown)) } catch {
            printError("lanes: config: \(error.description)")
            throw ExitCode(ExitStatus.failedToStart)
        }
        let socketGroup = loadedLane.socketGroup
        let run = runID ?? newRunID()
        printError("lanes: mcp: lane \(lane), run \(run)")
        let server = LaneMCPServer(service: service, options: .init(lane: lane, run: run, workspace: workspace, version: "0.1.0",
                                                                                  maxSteps: maxSteps, replyOutput: replyOutput,
                                                                                  network: NetworkReach(profile: loadedProfile, lane: loadedLane)),
                                   logger: ProcessLogging.logger)
        let done = DispatchSemaphore(value: 0)
        let failure = FailureBox()
        let listen = self.listen, maxSessions = self.maxSessions
        Task.detached {
            do {
                if let listen {
                    try await UnixHTTPListener.serve(path: String(listen.dropFirst(5)), group: socketGroup,
                                                     maxSessions: maxSessions ?? UnixHTTPListener.defaultMaxSessions, server: server,
                                                     logger: ProcessLogging.logger)
                } else {
                    try await server.serve(transport: LineTransport(logger: ProcessLogging.logger))
                }
            } catch {
                failure.set("\(error)")
            }
            done.signal()
        }
        done.wait()
        service.close()
        if let message = failure.get() {
            printError("lanes: mcp: \(message)")
            throw ExitCode(ExitStatus.failedToStart)
        }
    }
}

func printError(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}

/// The serving task's error, handed to the main thread.
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var message: String?
    func set(_ m: String) { lock.withLock { message = m } }
    func get() -> String? { lock.withLock { message } }
}
