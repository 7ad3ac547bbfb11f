import Foundation
import LaneConfig
import LaneGovernance
import LaneJournal
import LaneModel
import LaneState
import LaneSupervisor
import LaneSys
import Logging

/// Where a `StepService` finds what it needs. Front doors fill it from their flags and
/// environment; nothing here reads the process environment itself.
public struct ServiceOptions: Sendable {
    /// `--config DIR` / `LANES_CONFIG` etc., already resolved by `Paths.locateConfig`.
    public var config: ConfigStore
    /// The state directory (journal, secrets, supervisor locks, policy cache).
    public var stateDirectory: String
    /// The `lane-init` helper.
    public var initHelper: String
    /// The workspace when neither the call nor the lane names one.
    public var currentDirectory: String
    /// Directories never visible in a sandbox, even inside a workspace (the binaries' directory).
    public var hiddenPaths: [String]
    /// How many sandboxes to keep started ahead of the next step (`lanes mcp --prestart`; 0: none,
    /// every sandbox starts with its step, as a one-shot `lanes run` must).
    public var prestartSandboxes: Int
    /// Starts each step's sandbox as soon as its lane is known, before the journal is opened
    /// (`EarlySandbox`: the one-shot `lanes run`, which has no sandbox started ahead).
    public var startsSandboxEarly: Bool

    public init(config: ConfigStore, stateDirectory: String, initHelper: String, currentDirectory: String,
                hiddenPaths: [String] = [], prestartSandboxes: Int = 0, startsSandboxEarly: Bool = false) {
        self.config = config
        self.stateDirectory = stateDirectory
        self.initHelper = initHelper
        self.currentDirectory = currentDirectory
        self.hiddenPaths = hiddenPaths
        self.prestartSandboxes = prestartSandboxes
        self.startsSandboxEarly = startsSandboxEarly
    }
}

/// Owns a step from request to report: configuration → compiled policy → credentials →
/// journal intent and governance → sandbox → close → report. Every front door (the CLI,
/// `lanes mcp`) calls `run`; what is worth keeping between steps (parsed lanes and compiled
/// policies, the journal connection, this process's liveness lock) is kept, so a long-lived
/// process pays start-up once. Safe to call from several threads at once: each call blocks its
/// thread for the step's duration, and the journal group-commits concurrent steps.
public final class StepService: @unchecked Sendable {
    public let options: ServiceOptions
    private let logger: Logger
    private let configs: ConfigCache
    /// One runner (and so one probed cgroup driver) for every step of this service.
    private let runner: StepRunner
    /// Sandboxes started ahead of their steps (`ServiceOptions.prestartSandboxes` > 0).
    let pool: SandboxPool?
    /// Finished steps' sandboxes whose PID 1 is still exiting (`StepRunner.retirer`).
    let retirements: SandboxRetirements
    private let lock = NSLock()
    private var state: StateDirectory?
    private var journal: SQLiteJournal?
    /// This process's liveness lock (`SupervisorLock`), held from the first intent until `close()`.
    private var supervisorLock: String?

    public init(options: ServiceOptions, logger: Logger = Logger(label: "lanes")) {
        self.options = options
        self.logger = logger
        self.configs = ConfigCache(store: options.config,
                                   policyCache: PolicyCache(directory: options.stateDirectory + "/policy-cache"),
                                   compiledFile: CompiledConfigFile(directory: options.stateDirectory + "/config-cache"))
        let cgroups = WarmCgroupDriver()
        var runner = StepRunner(initPath: options.initHelper, cgroups: { cgroups })
        pool = options.prestartSandboxes > 0 ? SandboxPool(capacity: options.prestartSandboxes) : nil
        runner.prestarted = pool
        retirements = SandboxRetirements { [logger] path in
            logger.warning("a finished step's cgroup could not be emptied and removed; the next sweep retries",
                           metadata: ["cgroup": "\(path)"])
        }
        runner.retirer = retirements
        self.runner = runner
    }

    /// Kills the prestarted sandboxes, waits until every finished step's PID 1 is reaped and its
    /// cgroup removed, and releases the liveness lock (the kernel drops it anyway when the process
    /// ends). Call it once no step runs any more.
    public func close() {
        pool?.close()
        retirements.wait()
        lock.lock()
        defer { lock.unlock() }
        if let name = supervisorLock, let state { SupervisorLock.release(stateDirectory: state.path, name: name) }
        supervisorLock = nil
    }

    /// Runs one step (or replays or refuses it). `notify` gets one-line notices as they happen
    /// ("run ID" for a new run, "replayed …", halts); the CLI prints them on stderr.
    public func run(_ call: StepCall, notify: @escaping (String) -> Void = { _ in }) -> StepReport {
        // Lane and run go into each message's metadata, built only when the message is logged:
        // setting them on the logger made swift-log's stream handler format its metadata at once,
        // at every level, with a protocol-conformance scan of the static binary on the first use
        // in every `lanes run` (docs/benchmarks.md, stop 11).
        let log = logger
        func about(run: String?, _ more: Logger.Metadata, early: EarlySandbox? = nil) -> Logger.Metadata {
            var metadata = more
            metadata["lane"] = "\(call.lane)"
            if let run { metadata["run"] = "\(run)" }
            if let early { metadata["early_sandbox"] = early.used ? "used" : "unused" }
            return metadata
        }
        let prepared: Prepared
        do throws(LanesError) {
            prepared = try prepare(call)
        } catch {
            log.warning("step refused before the journal", metadata: about(run: call.run, ["stage": "\(error.stage)"]))
            // A run named by the caller is shown; one made up here names nothing recorded.
            let result = StepResult(lane: call.lane, profile: "", profileFingerprint: "", outcome: .failedToStart,
                                    exitCode: error.stage == "journal" ? JournalExitStatus.journalError : ExitStatus.failedToStart,
                                    error: error.description)
            return StepReport(run: call.run, step: call.step, replayed: false, retried: false, result: result, resultJSON: result.json())
        }
        let run = call.run ?? newRunID()
        if call.run == nil { notify("run \(run)") }
        let journaled = JournaledStep(journal: prepared.journal, run: run, step: call.step, lane: prepared.request.lane,
                                      effect: call.effect, retryAllowed: call.idempotent || prepared.request.lane.retry == .safe,
                                      notify: notify)
        var runner = self.runner
        if let early = prepared.early { runner.prestarted = early }
        let outcome = journaled.perform(intent: prepared.intent) { [runner] id in
            log.info("step starting", metadata: about(run: run, ["step": "\(id)", "argv0": "\(call.argv.first ?? "")"]))
            var request = prepared.request
            // Where the step's change set lives (filesystem.commit = auto or review).
            request.changeStaging = ChangeStaging(stateDirectory: prepared.journal.directory, run: run, step: id)
            var result = runner.run(request, compiled: prepared.compiled)
            result.requester = call.requester  // the front door's requester is recorded
            return result
        }
        // Replayed, refused, or not the sandbox the step needed: killed here, unused.
        prepared.early?.discard()
        switch outcome {
        case let .refused(reason, id, message):
            // Halted, stopped, gated or budget-bound: no sandbox waits for a step that may never come.
            pool?.drain()
            log.info("step refused", metadata: about(run: run, ["step": "\(id ?? "")", "reason": "\(reason.rawValue)"], early: prepared.early))
            let result = StepResult.refused(lane: call.lane, profile: prepared.request.profile.name,
                                            profileFingerprint: prepared.compiled.fingerprint, reason: reason, message: message)
            return StepReport(run: run, step: id, replayed: false, retried: false, result: result, resultJSON: result.json())
        case let .result(result, json, id, replayed, retried):
            // No sandbox waits for a run that takes no more steps: one stopped or halted (`lanes
            // stop` ended this step, or was recorded while no call ran) drains the pool, at once
            // after a stopped step and within about a second otherwise.
            if let pool, !replayed {
                let journal = prepared.journal
                let runGoesOn: @Sendable () -> Bool = {
                    guard let state = try? journal.keptState(run: run) else { return true }
                    return state.governance.stopped == nil && state.governance.halted == nil
                }
                if result.outcome == .stopped && !runGoesOn() { pool.drain() } else { pool.watch(runGoesOn) }
            }
            log.info(replayed ? "step replayed" : "step closed",
                     metadata: about(run: run, ["step": "\(id)", "outcome": "\(result.outcome.rawValue)", "exit_status": "\(result.exitStatus)"],
                                     early: prepared.early))
            if retried { notify("step \(id) of run \(run) was in doubt and is run again (the lane allows retrying)") }
            if replayed { notify("replayed step \(id) of run \(run) from the journal; nothing was run") }
            return StepReport(run: run, step: id, replayed: replayed, retried: retried, result: result, resultJSON: json)
        }
    }

    /// Everything a journaled step needs.
    struct Prepared {
        var request: StepRequest
        var compiled: CompiledProfile
        var journal: SQLiteJournal
        var intent: StepIntent
        /// The sandbox started before the journal was opened (`ServiceOptions.startsSandboxEarly`).
        var early: EarlySandbox?
    }

    /// Thrown, not returned as a `Result`: copying a `Result<Prepared, LanesError>` made the
    /// Swift runtime scan the static binary's protocol conformances in every `lanes run`
    /// (docs/benchmarks.md, stop 11).
    private func prepare(_ call: StepCall) throws(LanesError) -> Prepared {
        let (lane, compiled) = try configs.load(lane: call.lane)
        let requested = call.workspace ?? lane.workspace ?? options.currentDirectory
        guard let workspace = Paths.resolve(requested), isDirectory(workspace) else {
            throw LanesError(.notFound, stage: "workspace", "\"\(requested)\" is not an existing directory")
        }
        // Issue 11: a workspace that exposes the host is refused (HostWorkspace, docs/security.md).
        if let refusal = WorkspaceGuard.refusal(workspace, state: options.stateDirectory, allowHost: call.allowHostWorkspace) {
            throw LanesError(.invalidArgument, stage: "workspace", refusal)
        }
        let store = configs.store
        let hidden = ([store.profilesDirectory, store.lanesDirectory] + options.hiddenPaths).compactMap { Paths.resolve($0) }
        // Nil when the state directory does not exist yet (opening it below makes it).
        let stateDirectory = Paths.resolve(options.stateDirectory)
        var request = StepRequest(lane: lane, profile: compiled.profile, argv: call.argv, workspace: workspace,
                                  timeoutSeconds: call.timeoutSeconds, captureOutput: call.output == .capture,
                                  hiddenPaths: hidden + (stateDirectory.map { [$0] } ?? []))
        request.stdin = call.stdin  // MERGE(issue 13): stdin text and cancellation from a front door
        request.cancellation = call.cancellation
        // Before the journal: its set-up overlaps the journal's. Only with the state directory
        // there to hide (the first step of a new one creates it and starts its sandbox later).
        let early = options.startsSandboxEarly && pool == nil && stateDirectory != nil
            ? EarlySandbox.start(request, compiled: compiled, runner: runner) : nil
        let state: StateDirectory, journal: SQLiteJournal, supervisorLock: String?
        switch openState() {
        case let .failure(error): throw error
        case let .success(opened): (state, journal, supervisorLock) = opened
        }
        // A state directory made just now is hidden too.
        if stateDirectory == nil { request.hiddenPaths = hidden + (Paths.resolve(state.path).map { [$0] } ?? []) }
        switch CredentialResolver.resolve(lane, secrets: SecretStore(state: state)) {
        case let .failure(e): throw e
        case let .success(values): request.credentials = values
        }
        var supervisor = Supervisor.current
        supervisor.lock = supervisorLock
        let l = compiled.profile.limits
        let envNames = Set(compiled.profile.environment.keys).union(lane.credentials.filter { $0.delivery == .env }.map(\.name))
        let intent = StepIntent(
            lane: lane.name, argv: call.argv, cwd: workspace, environment: Array(envNames),
            credentials: lane.credentials.map(\.name), profile: compiled.profile.name, profileFingerprint: compiled.fingerprint,
            limits: ["wall_seconds": request.wallSeconds, "cpu_seconds": Double(l.cpuSeconds), "open_files": Double(l.openFiles),
                     "file_size_bytes": Double(l.fileSizeBytes), "processes": Double(l.processes), "output_bytes": Double(l.outputBytes)]
                .merging(call.allowHostWorkspace ? ["allow_host_workspace": 1] : [:]) { a, _ in a },
            supervisor: supervisor, idempotent: call.idempotent)
        return Prepared(request: request, compiled: compiled, journal: journal, intent: intent, early: early)
    }

    /// The state directory, the journal and this process's liveness lock, opened once.
    private func openState() -> Result<(StateDirectory, SQLiteJournal, String?), LanesError> {
        lock.lock()
        defer { lock.unlock() }
        if let state, let journal { return .success((state, journal, supervisorLock)) }
        let opened: StateDirectory
        do { opened = try StateDirectory(path: options.stateDirectory) } catch {
            return .failure(LanesError(.setupFailed, stage: "state", error.message))
        }
        let j: SQLiteJournal
        do { j = try opened.openJournal() } catch {
            return .failure(LanesError(.setupFailed, stage: "journal", error.message))
        }
        // Held from before the first intent until this process ends: how other `lanes`
        // processes, in any pid namespace, tell that its steps are in flight rather than in doubt.
        supervisorLock = SupervisorLock.hold(stateDirectory: opened.path)
        state = opened
        journal = j
        return .success((opened, j, supervisorLock))
    }

    /// The lane `name` as its file reads now (cached while the files do not change): for front
    /// doors that show its rules, such as its budget.
    public func lane(_ name: String) throws(LanesError) -> Lane {
        try configs.load(lane: name).0
    }

    /// The journal, opened once (for run control and inspection by front doors).
    public func openJournal() throws(LanesError) -> SQLiteJournal {
        switch openState() {
        case let .failure(e): throw e
        case let .success(o): return o.1
        }
    }
}
