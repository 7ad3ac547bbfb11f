import ArgumentParser
import Glibc
import LaneConfig
import LaneRuntime
import LaneSupervisor
import LaneSys

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Show a profile's compiled policy: its fingerprint, and optionally its seccomp BPF.",
        discussion: "`--bpf FILE` writes the seccomp program (struct sock_filter records), e.g. for `bwrap --seccomp`.")

    @OptionGroup var configOptions: ConfigOptions

    @Argument(help: "The profile name.")
    var profile: String

    @Option(help: ArgumentHelp("Write the compiled seccomp program to FILE.", valueName: "FILE"))
    var bpf: String?

    func run() throws {
        guard let store = Paths.locateConfig(configOptions.config), let text = readTextFile(store.profileFile(profile)) else {
            printError("lanes policy: no profile named \"\(profile)\"")
            throw ExitCode(125)
        }
        do {
            let parsed = try ProfileParser(knownSyscall: SeccompCompiler.isKnown).parse(name: profile, file: store.profileFile(profile), text: text)
            let compiled = try CompiledProfile(parsed)
            printOut("profile \(profile)\nfingerprint \(compiled.fingerprint)\nseccomp \(compiled.seccompFilter.count / 8) instructions\n")
            if let bpf {
                let fd = open(bpf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                guard fd >= 0, compiled.seccompFilter.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == compiled.seccompFilter.count else {
                    printError("lanes policy: cannot write \(bpf)")
                    throw ExitCode(1)
                }
                close(fd)
            }
        } catch let error as ConfigErrors {
            printError(error.description)
            throw ExitCode(125)
        }
    }
}
