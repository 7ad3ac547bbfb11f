import ArgumentParser
import Glibc
import LaneModel
import LaneRuntime

/// `lanes mcp …` runs `lanes-mcp …` from the same directory (exec, same pid): the MCP server is
/// its own executable so the MCP SDK and SwiftNIO never load for a one-shot `lanes run`.
struct MCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve a lane's sandbox as an MCP server (`lanes mcp --help` for its options; docs/mcp.md).")

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("--lane LANE [--run RUN] [--workspace DIR] [--listen unix:PATH] …", valueName: "OPTIONS"))
    var arguments: [String] = []

    func run() throws { Self.exec(arguments) }

    /// Replaces this process with `lanes-mcp ARGS…`; on failure says why and exits 125.
    static func exec(_ arguments: [String]) -> Never {
        let path = Paths.executableDirectory + "/lanes-mcp"
        let argv = [path] + arguments
        var cargs = argv.map { strdup($0) }
        cargs.append(nil)
        execv(path, cargs)
        printError("lanes: mcp: cannot run \(path): \(String(cString: strerror(errno)))")
        Glibc.exit(ExitStatus.failedToStart)
    }
}
