import ArgumentParser
import Glibc
import LaneConfig
import LaneModel
import LaneRuntime
import LaneSupervisor
import LaneSys

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate profiles and lanes; print every error as FILE:LINE: message.",
        discussion: """
            Without FILE arguments every profile and lane found is checked; a lane is checked with its profile. Every \
            configuration error `lanes run` can report is reported here, and a profile's limits must fit under this \
            host's hard limits. Exit 0 only when all are valid, 1 otherwise, 125 when there is no configuration to check.
            """)

    @OptionGroup var configOptions: ConfigOptions

    @Argument(help: ArgumentHelp("Profile or lane files (a file under a Profiles/ directory is a profile; otherwise a lane).", valueName: "FILE"))
    var files: [String] = []

    func run() throws {
        var targets = files
        if targets.isEmpty {
            guard let store = Paths.locateConfig(configOptions.config) else {
                printError("lanes check: no Profiles/ and Lanes/ found (use --config DIR or LANES_CONFIG)")
                throw ExitCode(125)
            }
            // MERGE(issue 11): a configuration directory without Profiles/ and Lanes/ (`--config /nope`)
            // or with nothing in them is an error, never a silent pass.
            guard isDirectory(store.profilesDirectory) || isDirectory(store.lanesDirectory) else {
                printError("lanes check: \(store.root) (\(store.origin)) has no Profiles/ or Lanes/ directory")
                throw ExitCode(125)
            }
            targets = store.profileNames().map(store.profileFile) + store.laneNames().map(store.laneFile)
            guard !targets.isEmpty else {
                printError("lanes check: no profile or lane files in \(store.profilesDirectory) or \(store.lanesDirectory)")
                throw ExitCode(125)
            }
        }
        var failures = 0
        var printed = Set<String>()
        for file in targets {
            let problems = check(file)
            // A lane's check includes its profile's; a profile checked twice prints once.
            for p in problems where printed.insert(p.description).inserted { printError(p.description) }
            if problems.isEmpty { printOut("ok   \(file)\n") } else { failures += 1 }
        }
        if failures > 0 {
            printError("lanes check: \(failures) of \(targets.count) file(s) invalid")
            throw ExitCode(1)
        }
    }

    /// Every problem `lanes run` would report for this file, with the same parser and the same
    /// rules: a profile's keys, syscall names and never-list; a lane's keys, and for a lane
    /// also, for a file in a Lanes/ directory, that its profile exists in the Profiles/ next to
    /// it and is valid.
    private func check(_ file: String) -> [ConfigDiagnostic] {
        guard let text = readTextFile(file) else {
            return [ConfigDiagnostic(file: file, line: nil, keyPath: "", message: "cannot read the file")]
        }
        let name = String(file.split(separator: "/").last ?? "").replacingSuffix(".toml")
        let directories = file.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        let isProfile = directories.last == "Profiles"
        let parser = ProfileParser(knownSyscall: SeccompCompiler.isKnown)
        do throws(ConfigErrors) {
            if isProfile {
                let profile = try parser.parse(name: name, file: file, text: text)
                // MERGE(issue 11): limits the host cannot grant fail here, not at the first step.
                return ConfigReferences.check(profile: profile, file: file, text: text, hard: HostLimits.current())
            }
            let lane = try LaneParser().parse(name: name, file: file, text: text)
            // A lane file outside a Lanes/ directory has no configuration to resolve against.
            guard directories.last == "Lanes" else { return [] }
            // The configuration directory this lane belongs to, as `lanes run` would find it.
            let root = directories.dropLast().joined(separator: "/")
            let store = ConfigStore(root: root.isEmpty ? (file.hasPrefix("/") ? "/" : ".") : root, origin: "check")
            let (profileFile, profileText) = try store.profileSource(of: lane, laneFile: file, laneText: text)
            _ = try parser.parse(name: lane.profile, file: profileFile, text: profileText)
            return []
        } catch {
            return error.diagnostics
        }
    }
}

extension String {
    func replacingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
