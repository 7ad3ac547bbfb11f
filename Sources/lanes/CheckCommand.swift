import ArgumentParser
import Glibc
import LaneConfig
import LaneRuntime
import LaneSys

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate profiles and lanes; print every error as FILE:LINE: message.",
        discussion: "Without FILE arguments every profile and lane found is checked. Exit 0 only when all are valid, 1 otherwise.")

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
            targets = store.profileNames().map(store.profileFile) + store.laneNames().map(store.laneFile)
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
                _ = try ProfileParser(knownSyscall: SeccompCompiler.isKnown).parse(name: name, file: file, text: text)
            } else {
                _ = try LaneParser().parse(name: name, file: file, text: text)
            }
            return []
        } catch {
            return error.diagnostics
        }
    }
}

extension String {
    func replacingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
