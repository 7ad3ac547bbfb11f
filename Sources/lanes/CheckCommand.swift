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
            Without FILE arguments every profile and lane found is checked. A lane's profile must exist and be valid; a \
            profile's limits must fit under this host's hard limits. Exit 0 only when all are valid, 1 otherwise, \
            125 when there is no configuration to check.
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
        for file in targets {
            let problems = check(file)
            for p in problems { printError(p.description) }
            if problems.isEmpty { printOut("ok   \(file)\n") } else { failures += 1 }
        }
        if failures > 0 {
            printError("lanes check: \(failures) of \(targets.count) file(s) invalid")
            throw ExitCode(1)
        }
    }

    private func check(_ file: String) -> [ConfigDiagnostic] {
        guard let text = readTextFile(file) else {
            return [ConfigDiagnostic(file: file, line: nil, keyPath: "", message: "cannot read the file")]
        }
        let name = String(file.split(separator: "/").last ?? "").replacingSuffix(".toml")
        let isProfile = file.split(separator: "/").dropLast().last == "Profiles"
        do {
            if isProfile {
                let profile = try ProfileParser(knownSyscall: SeccompCompiler.isKnown).parse(name: name, file: file, text: text)
                // MERGE(issue 11): limits the host cannot grant fail here, not at the first step.
                return ConfigReferences.check(profile: profile, file: file, text: text, hard: HostLimits.current())
            } else {
                let lane = try LaneParser().parse(name: name, file: file, text: text)
                // MERGE(issue 11): the lane's profile is resolved (and checked) like `lanes run` would.
                return ConfigReferences.check(lane: lane, laneFile: file, text: text, profiles: profilesDirectory(for: file),
                                              parser: ProfileParser(knownSyscall: SeccompCompiler.isKnown))
            }
        } catch {
            return error.diagnostics
        }
    }
}

extension CheckCommand {
    /// Where a lane file's profile is looked up: `../Profiles` next to its `Lanes/` directory,
    /// else the configuration in use (as `lanes run` would).
    func profilesDirectory(for laneFile: String) -> String {
        let dir = Paths.parent(laneFile.hasPrefix("/") ? laneFile : Paths.currentDirectory + "/" + laneFile)
        if dir.split(separator: "/").last == "Lanes" { return Paths.parent(dir) + "/Profiles" }
        return Paths.locateConfig(configOptions.config)?.profilesDirectory ?? Paths.parent(dir) + "/Profiles"
    }
}

extension String {
    func replacingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
