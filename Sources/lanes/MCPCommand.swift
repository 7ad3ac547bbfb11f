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

/// `lanes mcp`: serves the lane's sandbox to an agent host over the Model Context Protocol.
struct MCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
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

    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var stateOptions: StateOptions

    @Option(help: ArgumentHelp("The lane (a file Lanes/LANE.toml).", valueName: "LANE"))
    var lane: String

    @Option(name: .customLong("run"), help: ArgumentHelp("The run the steps belong to (default: a new run). The same run again resumes it.", valueName: "ID"))
    var runID: String?

    @Option(help: ArgumentHelp("The workspace directory (default: the lane's, else the current directory).", valueName: "DIR"))
    var workspace: String?

    @Option(help: ArgumentHelp("Serve Streamable HTTP on a unix socket instead of stdio (unix:PATH).", valueName: "unix:PATH"))
    var listen: String?

    func validate() throws {
        if let listen, !listen.hasPrefix("unix:") || listen.count <= 5 {
            throw ValidationError("--listen expects unix:PATH, found \"\(listen)\"")
        }
    }

    func run() throws {
        guard let config = Paths.locateConfig(configOptions.config) else {
            printError("lanes: config: no Profiles/ and Lanes/ found (use --config DIR or LANES_CONFIG)")
            throw ExitCode(ExitStatus.failedToStart)
        }
        let service = StepService(
            options: ServiceOptions(config: config, stateDirectory: stateOptions.resolved, initHelper: Paths.initHelper,
                                    currentDirectory: Paths.currentDirectory,
                                    hiddenPaths: [Paths.executableDirectory, Paths.parent(Paths.initHelper)]),
            logger: Log.logger)
        // Fail before serving when the journal cannot be opened (not on the first call).
        do { _ = try service.openJournal() } catch {
            printError("lanes: \(error.description)")
            throw ExitCode(JournalExitStatus.journalError)
        }
        // The lane must load now (a wrong lane is an error at start, not on the first call).
        let loadedLane: Lane
        do { loadedLane = try config.load(lane: lane, parser: ProfileParser(knownSyscall: SeccompCompiler.isKnown)).0 } catch {
            printError("lanes: config: \(error.description)")
            throw ExitCode(ExitStatus.failedToStart)
        }
        let socketGroup = loadedLane.socketGroup
        let run = runID ?? newRunID()
        printError("lanes: mcp: lane \(lane), run \(run)")
        let server = LaneMCPServer(service: service, options: .init(lane: lane, run: run, workspace: workspace, version: "0.1.0"),
                                   logger: Log.logger)
        let done = DispatchSemaphore(value: 0)
        let failure = FailureBox()
        let listen = self.listen
        Task.detached {
            do {
                if let listen {
                    try await UnixHTTPListener.serve(path: String(listen.dropFirst(5)), group: socketGroup, server: server,
                                                     logger: Log.logger)
                } else {
                    try await server.serve(transport: LineTransport(logger: Log.logger))
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

/// The serving task's error, handed to the main thread.
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var message: String?
    func set(_ m: String) { lock.withLock { message = m } }
    func get() -> String? { lock.withLock { message } }
}
