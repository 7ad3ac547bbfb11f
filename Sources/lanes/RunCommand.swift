import ArgumentParser
import Glibc
import LaneConfig
import LaneModel
import LaneSupervisor
import LaneSys

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one command as a step in a fresh sandbox of LANE.",
        discussion: """
            The step's stdout and stderr are relayed as they are written (up to the profile's
            output limit). SIGINT or SIGTERM to lanes stops the step cleanly.

            Exit status:
              N      the step's own exit code
              124    the wall-clock deadline fired (the whole process tree is dead by then)
              125    lanes failed before the step started (bad lane or profile, a protection
                     that cannot be applied here, sandbox set-up); the message names the stage
              126    the command cannot be executed
              127    the command was not found
              128+N  the step was killed by signal N (159 = SIGSYS: a seccomp violation);
                     130/143 when lanes was stopped by SIGINT/SIGTERM
              137    oom_killed: the step's cgroup hit limits.memory and the OOM killer fired
              152    cpu_time_exceeded: a process used up limits.cpu (RLIMIT_CPU, SIGXCPU)
                     pids_limited (a fork failed at limits.pids and the step failed) keeps the
                     step's own status; the JSON result (--json) names the limit that fired
                     ("limit") and reports memory_peak_bytes, cgroup_cpu_ms and pids_peak
              64     the command line itself is wrong
            """)

    @OptionGroup var configOptions: ConfigOptions

    @Argument(help: "The lane (a file Lanes/LANE.toml).")
    var lane: String

    @Option(help: ArgumentHelp("The workspace directory (default: the lane's, else the current directory). It appears at its own absolute path.", valueName: "DIR"))
    var workspace: String?

    @Option(help: ArgumentHelp("Wall-clock deadline in seconds (default: the profile's).", valueName: "SECONDS"))
    var timeout: Double?

    @Flag(help: "Print one JSON object with the result at the end instead of relaying output.")
    var json = false

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command and its arguments, after `--`.", valueName: "CMD"))
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("missing the command: lanes run LANE -- CMD [ARG…]") }
        if let timeout, !(timeout > 0 && timeout.isFinite) { throw ValidationError("--timeout expects a number of seconds > 0, found \(timeout)") }
    }

    func run() throws {
        let result = execute()
        if json {
            printOut(result.json() + "\n")
        } else {
            report(result)
        }
        Glibc.exit(result.exitStatus)
    }

    private func execute() -> StepResult {
        let failed = { (stage: String, message: String) -> StepResult in
            StepResult(lane: lane, profile: "", profileFingerprint: "", outcome: .failedToStart,
                       exitCode: ExitStatus.failedToStart, error: "\(stage): \(message)")
        }
        guard let store = Paths.locateConfig(configOptions.config) else {
            return failed("config", "no Profiles/ and Lanes/ found (use --config DIR or LANES_CONFIG)")
        }
        let loaded: (Lane, Profile)
        do {
            loaded = try store.load(lane: lane, parser: ProfileParser(knownSyscall: SeccompCompiler.isKnown))
        } catch {
            return failed("config", error.description)
        }
        let (laneValue, profile) = loaded
        let compiled: CompiledProfile
        do { compiled = try CompiledProfile(profile) } catch { return failed(error.stage, error.message) }
        let requested = workspace ?? laneValue.workspace ?? Paths.currentDirectory
        guard let resolved = Paths.resolve(requested), isDirectory(resolved) else {
            return failed("workspace", "\"\(requested)\" is not an existing directory")
        }
        var hidden = [store.profilesDirectory, store.lanesDirectory, Paths.executableDirectory, Paths.parent(Paths.initHelper)]
        hidden = hidden.compactMap { Paths.resolve($0) }
        let request = StepRequest(lane: laneValue, profile: profile, argv: command, workspace: resolved,
                                  timeoutSeconds: timeout, captureOutput: json, hiddenPaths: hidden)
        return StepRunner(initPath: Paths.initHelper).run(request, compiled: compiled)
    }

    private func report(_ result: StepResult) {
        switch result.outcome {
        case .failedToStart:
            printError("lanes: \(result.error ?? "failed to start")")
        case .timedOut:
            printError("lanes: step timed out after \(timeout ?? 0 > 0 ? timeout! : 0)s deadline; the whole process tree was killed")
        case .stopped:
            printError("lanes: stopped by signal \(result.signal ?? 0); the step was ended")
        case .seccompViolation:
            printError("lanes: the step made a forbidden system call and was killed (SIGSYS)")
        case .oomKilled:
            printError("lanes: the step ran out of memory (cgroup limit \(result.memoryPeakBytes.map { "reached at \($0 / 1_048_576) MiB" } ?? "reached")) and was OOM-killed")
        case .pidsLimited:
            printError("lanes: the step hit its pids limit (fork failed with EAGAIN\(result.pidsPeak.map { ", \($0) tasks at most" } ?? ""))")
        case .cpuTimeExceeded:
            printError("lanes: a process of the step used up its CPU time limit (RLIMIT_CPU) and was killed")
        case .signaled, .exited:
            break
        }
        if !result.limitsNotApplied.isEmpty {
            printError("lanes: optional limits not applied on this host: \(result.limitsNotApplied.joined(separator: ", "))")
        }
        if result.stdoutTruncated || result.stderrTruncated {
            printError("lanes: output truncated at the profile's limit (\(result.stdoutTruncated ? "stdout" : "")\(result.stdoutTruncated && result.stderrTruncated ? ", " : "")\(result.stderrTruncated ? "stderr" : ""))")
        }
    }
}
