import ArgumentParser

@main
struct LanesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lanes",
        abstract: "Run each tool call of an agent as a step in an isolated, journaled execution lane.",
        discussion: """
            A lane (Lanes/NAME.toml) binds a profile (Profiles/NAME.toml) to an owner and a workspace.
            `lanes run LANE -- CMD ARGS…` runs one command in a fresh sandbox of that lane.
            """,
        version: LanesVersion.string,
        subcommands: [RunCommand.self, CheckCommand.self, DoctorCommand.self, PolicyCommand.self, RunsCommand.self, ShowCommand.self,
                      LogCommand.self, OutputCommand.self, VerifyCommand.self, SecretCommand.self, PendingCommand.self,
                      ApproveCommand.self, DenyCommand.self, ResumeCommand.self, StopCommand.self, ExportCommand.self,
                      DiffCommand.self, ApplyCommand.self, DiscardCommand.self, RevertCommand.self, GCCommand.self,
                      MCPCommand.self])

    /// `lanes run …` is the hot path (once per tool call): it is parsed by `RunCommand` alone, so
    /// argument-parser does not reflect over every other subcommand first (measured: that walk
    /// was about a sixth of a step's CPU). Help and everything else go through the full tree.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let options = arguments.prefix { $0 != "--" }
        if arguments.first == "mcp" { MCPCommand.exec(Array(arguments.dropFirst())) }
        if arguments.first == "run", !options.contains(where: { ["-h", "--help", "-help", "help"].contains($0) }) {
            // The plain forms without argument-parser at all (FastRun), the rest through it.
            FastRun.parse(Array(arguments.dropFirst()))?.execute()
            RunCommand.main(Array(arguments.dropFirst()))
        }
        main(nil)
    }
}

/// Options every command that reads profiles and lanes shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Directory holding Profiles/ and Lanes/ (default: LANES_CONFIG, ./Profiles + ./Lanes, $XDG_CONFIG_HOME/lanes, /etc/lanes, the installed ones).", valueName: "DIR"))
    var config: String?
}
