import ArgumentParser
import Glibc
import LaneConfig
import LaneJournal
import LaneModel
import LaneSupervisor
import LaneSys

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        // Named in full in usage lines also when parsed directly on the hot path (see LanesCommand.main).
        _superCommandName: "lanes",
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
              74     the journal cannot be opened or written, or the run's hash chain is broken
                     (nothing is appended to a broken run; see `lanes verify RUN`)
              75     nondeterminism: this (run, step) was recorded with a different intent
                     (argv, cwd, environment or credential names, profile fingerprint, limits);
                     the message names the fields that differ; nothing was run
              76     in doubt: an earlier supervisor died after the step's intent and before its
                     result, and the lane does not allow retrying (retry = "safe" or
                     --idempotent); the step needs review; nothing was run
              77     in flight: another live supervisor is running this step right now
              78     awaiting approval: the lane's [review] gates this step (the message names the
                     rule); recorded as approval_requested; nothing was run. After
                     `lanes approve RUN STEP --by NAME`, the same command with --run/--step runs once
              79     denied or expired: the step's approval was denied (`lanes deny`) or not given
                     within the lane's review timeout; nothing was run
              80     halted: the run exhausted a [budget] or loop detection tripped ("loop
                     suspected"); nothing was run until `lanes resume RUN --by NAME [--raise K=V]`
              81     stopped: the run was stopped (`lanes stop`, or an outcome in the lane's
                     halt_on); no further step of it runs

            Journal: every step is recorded in the state directory (--state, LANES_STATE,
            $XDG_STATE_HOME/lanes, /var/lib/lanes for root). Without --run a new run is created
            and its id printed on stderr ("lanes: run ID"); without --step the step gets the
            run's next ordinal. Invoking a completed (run, step) again with the same intent runs
            nothing: the recorded output is printed, the recorded status returned and a stderr
            line says it was replayed ("replayed": true with --json).
            """)

    @OptionGroup var configOptions: ConfigOptions

    @Argument(help: "The lane (a file Lanes/LANE.toml).")
    var lane: String

    @Option(help: ArgumentHelp("The workspace directory (default: the lane's, else the current directory). It appears at its own absolute path.", valueName: "DIR"))
    var workspace: String?

    // MERGE(issue 11): one duration syntax for profiles and the CLI (`90`, `500ms`, `5m`, `1h`).
    @Option(help: ArgumentHelp("Wall-clock deadline: seconds, or a duration like 500ms, 5m, 1h (default: the profile's).", valueName: "DURATION"),
            transform: ArgumentSyntax.duration)
    var timeout: Double?

    @Flag(help: "Print one JSON object with the result at the end instead of relaying output.")
    var json = false

    @OptionGroup var stateOptions: StateOptions

    // MERGE(issue 11): run and step ids have one syntax (InputSyntax.checkID), checked here.
    @Option(name: .customLong("run"), help: ArgumentHelp("The run this step belongs to (default: a new run); 1-64 of A-Z a-z 0-9 . _ -.", valueName: "ID"),
            transform: ArgumentSyntax.runID)
    var runID: String?

    @Option(help: ArgumentHelp("The step's id within the run (default: the run's next ordinal).", valueName: "ID"),
            transform: ArgumentSyntax.stepID)
    var step: String?

    @Flag(help: "This invocation is harmless to repeat: a step left in doubt by a dead supervisor may run again.")
    var idempotent = false

    // MERGE(issue 11): only the documented effects (InputSyntax.effects).
    @Option(help: ArgumentHelp("Declare the step's effect (\(InputSyntax.effects.keys.sorted().joined(separator: ", "))); the lane's [review] effects gate it.", valueName: "EFFECT"),
            transform: ArgumentSyntax.effect)
    var effect: String?

    // MERGE(issue 11): the documented override of HostWorkspace; recorded in the intent.
    @Flag(help: "Allow a workspace that exposes the host (/, /etc, a home directory, …; see docs/security.md). Recorded in the step's intent.")
    var allowHostWorkspace = false

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command and its arguments, after `--`.", valueName: "CMD"))
    var command: [String] = []

    func validate() throws {
        try ArgumentSyntax.checkCommand(command)  // MERGE(issue 11): `-- ""` is a usage error too
        if let timeout, !(timeout > 0 && timeout.isFinite) { throw ValidationError("--timeout expects a number of seconds > 0, found \(timeout)") }
    }

    func run() throws {
        let run = runID ?? newRunID()
        var stepID = step
        var replayed = false
        // A run id made up here names nothing until the journal has the step.
        var shownRun: String? = runID
        let result: StepResult
        switch prepare() {
        case let .failed(failed):
            result = failed
        case let .ready(prepared):
            if runID == nil { printError("lanes: run \(run)") }
            shownRun = run
            let journaled = JournaledStep(journal: prepared.journal, run: run, step: step,
                                          retryAllowed: idempotent || prepared.request.lane.retry == .safe,
                                          governance: GovernanceHook(lane: prepared.request.lane, effect: effect))
            let outcome = journaled.perform(intent: prepared.intent, execute: {
                StepRunner(initPath: Paths.initHelper).run(prepared.request, compiled: prepared.compiled)
            })
            // The result (or the refusal) is recorded: nothing of this step is in flight now.
            if let lock = prepared.lock { SupervisorLock.release(stateDirectory: prepared.journal.directory, name: lock) }
            switch outcome {
            case let .refused(status, id, message):
                printError("lanes: \(message)")
                if json { printOut(Self.decorate(nil, run: shownRun, step: id, replayed: false, status: status, message: message) + "\n") }
                Glibc.exit(status)
            case let .result(r, id, wasReplayed, retried):
                result = r
                stepID = id
                replayed = wasReplayed
                if retried { printError("lanes: step \(id) of run \(run) was in doubt and is run again (the lane allows retrying)") }
                if wasReplayed {
                    printError("lanes: replayed step \(id) of run \(run) from the journal; nothing was run")
                    if !json {
                        writeAll(1, r.stdout)
                        writeAll(2, r.stderr)
                    }
                }
            }
        }
        if json {
            printOut(Self.decorate(result, run: shownRun, step: stepID, replayed: replayed, status: nil, message: nil) + "\n")
        } else {
            report(result)
        }
        Glibc.exit(result.exitStatus)
    }

    /// The result JSON with the run, the step and whether it was replayed in front; or, for a
    /// refusal, an object with the status and the message. `run` is null when the step failed
    /// before the journal and no `--run` was given (no run was recorded).
    static func decorate(_ result: StepResult?, run: String?, step: String?, replayed: Bool, status: Int32?, message: String?) -> String {
        var o = JSONObject()
        o.add("run", run.map { .string($0) } ?? .null)
        o.add("step", step.map { .string($0) } ?? .null)
        o.add("replayed", .bool(replayed))
        if let status { o.add("exit_status", .int(Int(status))) }
        if let message { o.add("error", .string(message)) }
        let head = o.rendered
        guard let result else { return head }
        return String(head.dropLast()) + "," + String(result.json().dropFirst())
    }

    /// Everything a journaled step needs, or the failed result that stops it before the journal.
    struct Prepared {
        var request: StepRequest
        var compiled: CompiledProfile
        var journal: SQLiteJournal
        var intent: StepIntent
        /// This supervisor's liveness lock in the state directory (`SupervisorLock`).
        var lock: String?
    }

    private func prepare() -> Preparation<Prepared> {
        let failed = { (stage: String, message: String) -> Preparation<Prepared> in
            .failed(StepResult(lane: lane, profile: "", profileFingerprint: "", outcome: .failedToStart,
                                exitCode: ExitStatus.failedToStart, error: "\(stage): \(message)"))
        }
        var request: StepRequest, compiled: CompiledProfile
        switch execute() {
        case let .failed(f): return .failed(f)
        case let .ready((r, c)): (request, compiled) = (r, c)
        }
        let state: StateDirectory
        do { state = try StateDirectory(path: stateOptions.resolved) } catch { return failed("state", error.message) }
        request.hiddenPaths.append(Paths.resolve(state.path) ?? state.path)
        switch CredentialResolver.resolve(request.lane, secrets: SecretStore(state: state)) {
        case let .failure(e): return failed(e.stage, e.message)
        case let .success(values): request.credentials = values
        }
        let journal: SQLiteJournal
        do { journal = try state.openJournal() } catch {
            return .failed(StepResult(lane: lane, profile: request.profile.name, profileFingerprint: compiled.fingerprint,
                                       outcome: .failedToStart, exitCode: JournalExitStatus.journalError, error: "journal: \(error.message)"))
        }
        // Held from before the intent until this process ends: how other `lanes` processes, in
        // any pid namespace, tell that this step is in flight rather than in doubt.
        let lock = SupervisorLock.hold(stateDirectory: state.path)
        var supervisor = Supervisor.current
        supervisor.lock = lock
        let l = request.profile.limits
        let envNames = Set(request.profile.environment.keys).union(request.lane.credentials.filter { $0.delivery == .env }.map(\.name))
        let intent = StepIntent(
            lane: request.lane.name, argv: request.argv, cwd: request.workspace, environment: Array(envNames),
            credentials: request.lane.credentials.map(\.name), profile: request.profile.name,
            profileFingerprint: compiled.fingerprint,
            limits: ["wall_seconds": request.wallSeconds, "cpu_seconds": Double(l.cpuSeconds), "open_files": Double(l.openFiles),
                     "file_size_bytes": Double(l.fileSizeBytes), "processes": Double(l.processes), "output_bytes": Double(l.outputBytes)]
                .merging(allowHostWorkspace ? ["allow_host_workspace": 1] : [:]) { a, _ in a },  // MERGE(issue 11)
            supervisor: supervisor, idempotent: idempotent)
        return .ready(Prepared(request: request, compiled: compiled, journal: journal, intent: intent, lock: lock))
    }

    private func execute() -> Preparation<(StepRequest, CompiledProfile)> {
        let failed = { (stage: String, message: String) -> Preparation<(StepRequest, CompiledProfile)> in
            .failed(StepResult(lane: lane, profile: "", profileFingerprint: "", outcome: .failedToStart,
                                exitCode: ExitStatus.failedToStart, error: "\(stage): \(message)"))
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
        do { compiled = try CompiledProfile(profile, cache: PolicyCache(directory: stateOptions.resolved + "/policy-cache")) } catch { return failed(error.stage, error.message) }
        let requested = workspace ?? laneValue.workspace ?? Paths.currentDirectory
        guard let resolved = Paths.resolve(requested), isDirectory(resolved) else {
            return failed("workspace", "\"\(requested)\" is not an existing directory")
        }
        // MERGE(issue 11): a workspace that exposes the host is refused (HostWorkspace).
        if let refusal = WorkspaceGuard.refusal(resolved, state: stateOptions.resolved, allowHost: allowHostWorkspace) {
            return failed("workspace", refusal)
        }
        var hidden = [store.profilesDirectory, store.lanesDirectory, Paths.executableDirectory, Paths.parent(Paths.initHelper)]
        hidden = hidden.compactMap { Paths.resolve($0) }
        let request = StepRequest(lane: laneValue, profile: profile, argv: command, workspace: resolved,
                                  timeoutSeconds: timeout, captureOutput: json, hiddenPaths: hidden)
        return .ready((request, compiled))
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

/// A step ready to run, or the result that ends it before it starts.
enum Preparation<T> {
    case ready(T)
    case failed(StepResult)
}
