import ArgumentParser
import Foundation
import LaneConfig
import LaneJournal
import LaneModel
import LaneSupervisor
import LaneSys

// Governance commands: pending, approve, deny, resume, stop, export (docs/governance.md).

/// Governance's part of `lanes run`: decides in the begin transaction, and after the step
/// records a halt or stop the step caused.
struct GovernanceHook {
    let lane: Lane
    let effect: String?

    func begin(_ journal: SQLiteJournal, _ request: BeginRequest) throws(JournalError) -> GovernedDecision {
        let lane = self.lane, effect = self.effect
        return try journal.transact(run: request.run) { tx in try Governance.begin(tx, request: request, lane: lane, effect: effect) }
    }

    /// Records the step's close and, in the same transaction, a halt or stop the step caused
    /// (loops, budgets, halt_on); then reports it and, for a stop, stops the run's other steps.
    func close(_ journal: SQLiteJournal, run: String, step: String, intentSeq: Int, result: StepClose) throws(JournalError) {
        let lane = self.lane
        let verdict = try journal.transact(run: run) { tx -> Governance.Verdict? in
            try tx.close(step: step, intentSeq: intentSeq, result: result)
            return try Governance.afterStep(tx, lane: lane)
        }
        switch verdict {
        case let .halt(d)?:
            printError("lanes: run \(run) is now halted: \(d.reason ?? ""); further steps are refused until `lanes resume \(run) --by NAME`")
        case let .stop(d)?:
            printError("lanes: run \(run) is stopped: \(d.reason ?? ""); stopping its other steps")
            let report = RunStopper.stop(journal: journal, run: run, by: "lanes", reason: d.reason ?? "halt_on", record: false)
            if !report.survivors.isEmpty { printError("lanes: still running after the stop: \(report.survivors.joined(separator: ", "))") }
        case nil:
            break
        }
    }
}

/// Finds and kills every in-flight step of a run, in any `lanes` process, through the journal.
enum RunStopper {
    struct Report {
        var steps: [String] = []
        var recordedByStop: [String] = []
        var survivors: [String] = []
        var seconds = 0.0
    }

    struct Target {
        var step: String
        var intentSeq: Int
        var supervisor: Supervisor
        /// Every process under the supervisor when the stop began (pid, start time).
        var processes: [(Int32, UInt64)]
    }

    /// Records the stop (unless `record` is false: already recorded), SIGTERMs each in-flight
    /// step's supervisor (which stops its step and records `stopped`), repeats the SIGTERM
    /// after `grace` (the supervisor then SIGKILLs the sandbox at once), SIGKILLs supervisors
    /// still alive after `grace * 3` (PDEATHSIG ends their sandboxes) and writes their `stopped`
    /// close records itself. Returns once nothing of the run remains, or after `bound` seconds.
    static func stop(journal: SQLiteJournal, run: String, by: String, reason: String, record: Bool = true,
                     grace: Double = 0.5, bound: Double = 10) -> Report {
        var report = Report()
        let start = Date()
        let me = getpid()
        let targets: [Target]
        do {
            targets = try journal.transact(run: run) { tx -> [Target] in
                guard tx.exists else { throw GovernanceError("no run \(run)") }
                if record && tx.state.governance.stopped == nil {
                    try tx.append(Decision(action: .stopped, by: by, reason: reason), step: nil)
                }
                let records = try tx.allRecords()
                return StepSummary.fold(records).compactMap { s -> Target? in
                    guard s.close == nil, let i = s.intent, i.supervisor.pid != me, i.supervisor.isAlive else { return nil }
                    let seq = records.last { $0.step == s.step && $0.kind == .intent }?.seq ?? 0
                    return Target(step: s.step, intentSeq: seq, supervisor: i.supervisor, processes: descendants(of: i.supervisor.pid))
                }
            }
        } catch {
            report.survivors = ["(the stop could not be recorded: \(error.description))"]
            return report
        }
        report.steps = targets.map(\.step)
        func signal(_ t: Target, _ sig: Int32) {
            if running(t.supervisor) { kill(t.supervisor.pid, sig) }  // start time checked just before
        }
        func waitGone(until deadline: Double) {
            while Date().timeIntervalSince(start) < deadline && targets.contains(where: { running($0.supervisor) }) { usleep(10_000) }
        }
        targets.forEach { signal($0, SIGTERM) }
        waitGone(until: grace)
        targets.forEach { signal($0, SIGTERM) }  // a second signal: the supervisor kills its sandbox at once
        waitGone(until: grace * 3)
        targets.forEach { signal($0, SIGKILL) }
        // PDEATHSIG ends each killed supervisor's sandbox; anything left is killed by pid.
        for t in targets { for (pid, st) in t.processes where alive(pid, st) { kill(pid, SIGKILL) } }
        while Date().timeIntervalSince(start) < bound && targets.contains(where: { t in running(t.supervisor) || t.processes.contains { alive($0.0, $0.1) } }) {
            usleep(10_000)
        }
        // Steps whose supervisor died before recording a result: `lanes stop` records it.
        do {
            report.recordedByStop = try journal.transact(run: run) { tx -> [String] in
                var done: [String] = []
                for t in targets where !running(t.supervisor) {
                    let last = try tx.lastStepRecord(t.step)
                    guard last?.seq == t.intentSeq, last?.kind == .intent else { continue }
                    let i = last?.intent
                    try tx.close(step: t.step, intentSeq: t.intentSeq, result: StepClose(
                        outcome: "stopped", exitStatus: 128 + SIGKILL, exitCode: nil, signal: SIGKILL, limit: nil,
                        wallMs: (Date().timeIntervalSince1970 - (last?.at ?? 0)) * 1000, cpuMs: 0, maxRssKb: 0, stdout: Data(), stderr: Data(),
                        stdoutTruncated: false, stderrTruncated: false, protections: [],
                        error: "stopped by \(by): \(reason); its supervisor (pid \(t.supervisor.pid)) was killed before it recorded a result",
                        profile: i?.profile ?? "", profileFingerprint: i?.profileFingerprint ?? ""))
                    done.append(t.step)
                }
                return done
            }
        } catch {
            report.survivors.append("(the stopped records could not be written: \(error.description))")
        }
        for t in targets {
            if running(t.supervisor) { report.survivors.append("step \(t.step): supervisor pid \(t.supervisor.pid)") }
            for (pid, st) in t.processes where alive(pid, st) { report.survivors.append("step \(t.step): pid \(pid) (\(command(pid)))") }
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    /// A supervisor that still runs (a zombie waiting for its parent does not).
    static func running(_ s: Supervisor) -> Bool { s.isAlive && alive(s.pid, s.startTime) }

    static func alive(_ pid: Int32, _ start: UInt64) -> Bool {
        guard let s = ProcessStat.read(pid) else { return false }
        return s.startTime == start && s.state != UInt8(ascii: "Z")
    }

    static func command(_ pid: Int32) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Every process below `root` (children, their children, …), with start times.
    static func descendants(of root: Int32) -> [(Int32, UInt64)] {
        var children: [Int32: [(Int32, UInt64)]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let s = ProcessStat.read(pid) else { continue }
            children[s.parent, default: []].append((pid, s.startTime))
        }
        var out: [(Int32, UInt64)] = []
        var queue = [root]
        while let p = queue.popLast() {
            for c in children[p] ?? [] {
                out.append(c)
                queue.append(c.0)
            }
        }
        return out
    }
}

/// A run's status as governance sees it (`lanes runs`): stopped, halted, awaiting_approval, or nil.
func governanceStatus(_ records: [JournalRecord]) -> String? {
    let g = RunGovernance(records)
    if g.stopped != nil { return "stopped" }
    if g.halted != nil { return "halted" }
    return g.pending.isEmpty ? nil : "awaiting_approval"
}

private func failure(_ message: String, _ status: Int32 = 1) -> ExitCode {
    printError("lanes: \(message)")
    return ExitCode(status)
}

struct PendingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pending", abstract: "List steps waiting for approval: run, step, lane, command, rule, age, expires.")
    @OptionGroup var stateOptions: StateOptions
    @Flag(help: "JSON lines.") var json = false

    func run() throws {
        let journal = try stateOptions.journal()
        let now = Date().timeIntervalSince1970
        var rows: [[String]] = []
        let runs: [RunSummary]
        do { runs = try journal.runs() } catch { throw failure(error.description, JournalExitStatus.journalError) }
        for r in runs {
            let state = RunGovernance((try? journal.records(run: r.id)) ?? [])
            for p in state.pending {
                let expires = p.decision.expiresAt ?? .infinity
                let command = p.decision.intent?.argv.joined(separator: " ") ?? ""
                if json {
                    var o = JSONObject()
                    o.add("run", .string(r.id))
                    o.add("step", .string(p.step))
                    o.add("lane", .string(r.lane))
                    o.add("argv", .array((p.decision.intent?.argv ?? []).map { .string($0) }))
                    o.add("rule", .string(p.decision.rule ?? ""))
                    o.add("requested", .string(isoTime(p.at)))
                    o.add("expires", expires.isFinite ? .string(isoTime(expires)) : .null)
                    o.add("expired", .bool(now >= expires))
                    printOut(o.rendered + "\n")
                } else {
                    rows.append([r.id, p.step, r.lane, command, p.decision.rule ?? "", duration(now - p.at),
                                 now >= expires ? "expired" : "in " + duration(expires - now)])
                }
            }
        }
        if !json { printOut(table(["RUN", "STEP", "LANE", "COMMAND", "RULE", "AGE", "EXPIRES"], rows)) }
    }
}

func duration(_ s: Double) -> String {
    DurationText.short(s)  // MERGE(issue 11): rounded, not truncated ("in 8h" for an 8 h timeout)
}

/// approve / deny share this.
private func answer(_ stateOptions: StateOptions, run: String, step: String, action: Decision.Action, by: String, reason: String?) throws {
    let journal = try stateOptions.journal()
    do {
        let d = try journal.decide(run: run) { tx in
            guard tx.exists else { throw GovernanceError("no run \(run)") }
            return try Governance.answer(tx, step: step, action: action, by: by, reason: reason)
        }
        printOut("\(d.action.rawValue): step \(step) of run \(run) by \(by)\(action == .approved ? "; invoke the same command again with --run \(run) --step \(step) to run it once" : "")\n")
    } catch let e as GovernanceError {
        throw failure(e.message, e.expired ? GovernanceExitStatus.denied : 1)
    } catch let e as JournalError {
        throw failure(e.description, e.code == .conflict ? 1 : JournalExitStatus.journalError)
    }
}

struct ApproveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve", abstract: "Approve a step waiting for review; it then runs once, with exactly the intent that was requested.",
        discussion: "Exit 0 when recorded; 1 when there is nothing to approve; 79 when the request had expired (recorded as expired).")
    @OptionGroup var stateOptions: StateOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN")) var runID: String
    @Argument(help: "The step id.") var step: String
    @Option(help: ArgumentHelp("Who approves (recorded).", valueName: "NAME")) var by: String
    @Option(help: ArgumentHelp("Why (recorded).", valueName: "TEXT")) var note: String?

    func validate() throws { if by.isEmpty { throw ValidationError("--by needs a name") } }
    func run() throws { try answer(stateOptions, run: runID, step: step, action: .approved, by: by, reason: note) }
}

struct DenyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deny", abstract: "Deny a step waiting for review; invoking it again returns `denied` (exit 79).")
    @OptionGroup var stateOptions: StateOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN")) var runID: String
    @Argument(help: "The step id.") var step: String
    @Option(help: ArgumentHelp("Who denies (recorded).", valueName: "NAME")) var by: String
    @Option(help: ArgumentHelp("Why (recorded).", valueName: "TEXT")) var reason: String

    func validate() throws { if by.isEmpty || reason.isEmpty { throw ValidationError("--by and --reason need text") } }
    func run() throws { try answer(stateOptions, run: runID, step: step, action: .denied, by: by, reason: reason) }
}

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Resume a halted run, optionally raising its budgets.",
        discussion: "Keys: \(Lane.Budget.keys.joined(separator: ", ")) (seconds, bytes or counts). Loop detection counts again from the resume.")
    @OptionGroup var stateOptions: StateOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN")) var runID: String
    @Option(help: ArgumentHelp("Who resumes (recorded).", valueName: "NAME")) var by: String
    @Option(help: ArgumentHelp("Why (recorded).", valueName: "TEXT")) var reason: String?
    @Option(parsing: .upToNextOption, help: ArgumentHelp("Raise a budget for this run: KEY=VALUE.", valueName: "KEY=VALUE")) var raise: [String] = []

    func parsedRaises() throws -> [String: Double] {
        var out: [String: Double] = [:]
        for r in raise {
            let parts = r.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, Lane.Budget.keys.contains(parts[0]), let v = Double(parts[1]), v >= 0 else {
                throw ValidationError("--raise expects KEY=NUMBER with KEY one of \(Lane.Budget.keys.joined(separator: ", ")), found \"\(r)\"")
            }
            out[parts[0]] = v
        }
        return out
    }

    func validate() throws {
        if by.isEmpty { throw ValidationError("--by needs a name") }
        _ = try parsedRaises()
    }

    func run() throws {
        let journal = try stateOptions.journal()
        let raises = try parsedRaises()
        let (run, by, reason) = (runID, self.by, self.reason)
        do {
            let halt = try journal.decide(run: run) { tx -> Decision in
                guard tx.exists else { throw GovernanceError("no run \(run)") }
                let state = tx.state.governance
                if let s = state.stopped { throw GovernanceError("run \(run) was stopped by \(s.decision.by) (\(s.decision.reason ?? "")); a stopped run is not resumed: start a new run") }
                guard let h = state.halted else { throw GovernanceError("run \(run) is not halted") }
                try tx.append(Decision(action: .resumed, by: by, reason: reason, raises: raises.isEmpty ? nil : raises), step: nil)
                return h.decision
            }
            printOut("resumed run \(run) (was halted: \(halt.reason ?? ""))\(raises.isEmpty ? "" : "; raised " + raises.sorted { $0.key < $1.key }.map { "\($0.key)=\(Decision.number($0.value))" }.joined(separator: " "))\n")
        } catch let e as GovernanceError {
            throw failure(e.message)
        } catch let e as JournalError {
            throw failure(e.description, e.code == .conflict ? 1 : JournalExitStatus.journalError)
        }
    }
}

struct StopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop a run: record why, kill its in-flight steps in every lanes process, refuse its later steps.",
        discussion: """
            Each in-flight step's supervisor is found through the journal (pid and start time) and
            sent SIGTERM (it stops its step and records `stopped`); again after the grace period
            (it then kills its sandbox at once); a supervisor still alive is SIGKILLed (its sandbox
            dies with it) and `lanes stop` records the step's `stopped` close itself.
            Exit 0 when no process of the run remains; 1 when something survived (named).
            """)
    @OptionGroup var stateOptions: StateOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN")) var runID: String
    @Option(help: ArgumentHelp("Who stops it (recorded).", valueName: "NAME")) var by: String
    @Option(help: ArgumentHelp("Why (recorded).", valueName: "TEXT")) var reason: String
    @Option(help: ArgumentHelp("Seconds between the SIGTERM and the escalation.", valueName: "SECONDS")) var grace: Double = 0.5

    func validate() throws { if by.isEmpty || reason.isEmpty { throw ValidationError("--by and --reason need text") } }

    func run() throws {
        let journal = try stateOptions.journal()
        let r = RunStopper.stop(journal: journal, run: runID, by: by, reason: reason, grace: grace)
        let steps = r.steps.isEmpty ? "no step was in flight" : "stopped step(s) \(r.steps.joined(separator: ", "))"
        if r.survivors.isEmpty {
            printOut("run \(runID) stopped by \(by): \(steps) in \(String(format: "%.2f", r.seconds)) s; no process of the run remains; later steps are refused\n")
        } else {
            throw failure("run \(runID) stopped by \(by), but still running: \(r.survivors.joined(separator: "; "))")
        }
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write one JSON document with a run's lane, profile (as compiled), every record and the chain hashes.",
        discussion: "Check a document with `lanes verify --file FILE`.")
    @OptionGroup var configOptions: ConfigOptions
    @OptionGroup var stateOptions: StateOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN")) var runID: String
    @Option(name: .shortAndLong, help: ArgumentHelp("Write to FILE instead of stdout.", valueName: "FILE")) var output: String?

    func run() throws {
        let journal = try stateOptions.journal()
        let chain: (records: [JournalRecord], head: (seq: Int, hash: String)?)
        do { chain = try journal.chain(run: runID) } catch { throw failure(error.description, JournalExitStatus.journalError) }
        guard let first = chain.records.first, let opened = try? first.decode(RunOpened.self) else { throw failure("no run \(runID)") }
        var laneDoc: [String: Any] = ["name": opened.lane]
        var profileDoc: [String: Any] = [:]
        let recorded = Set(chain.records.compactMap { $0.intent?.profileFingerprint })
        if let store = Paths.locateConfig(configOptions.config) {
            do {
                let (lane, profile) = try store.load(lane: opened.lane, parser: ProfileParser(knownSyscall: SeccompCompiler.isKnown))
                laneDoc = Self.describe(lane)
                laneDoc["source"] = readTextFile(store.laneFile(lane.name)) ?? NSNull()
                let compiled = try CompiledProfile(profile)
                profileDoc = ["name": profile.name, "fingerprint": compiled.fingerprint,
                              "seccomp_instructions": compiled.seccompFilter.count / 8,
                              "source": readTextFile(store.profileFile(profile.name)) ?? NSNull(),
                              "matches_recorded_intents": recorded.isEmpty || recorded == [compiled.fingerprint]]
            } catch {
                laneDoc["error"] = "the lane could not be loaded now: \(error)"
            }
        } else {
            laneDoc["error"] = "no configuration found"
        }
        profileDoc["recorded_fingerprints"] = recorded.sorted()
        do {
            let data = try RunExport.document(run: runID, records: chain.records, head: chain.head, lane: laneDoc, profile: profileDoc,
                                              exportedAt: Date().timeIntervalSince1970)
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: data, attributes: [.posixPermissions: 0o600]) else {
                    throw failure("cannot write \(output)")
                }
                printError("lanes: exported run \(runID) (\(chain.records.count) records) to \(output)")
            } else {
                writeAll(1, Array(data) + [10])
            }
        } catch let e as ExitCode {
            throw e
        } catch {
            throw failure("cannot export: \(error)")
        }
    }

    static func describe(_ lane: Lane) -> [String: Any] {
        [
            "name": lane.name, "description": lane.description, "owner": lane.owner, "profile": lane.profile,
            "workspace": lane.workspace ?? NSNull(), "writable": lane.writable, "retry": lane.retry.rawValue,
            "credentials": lane.credentials.map { ["name": $0.name, "from": $0.source.description, "as": $0.delivery.rawValue] },
            "review": ["commands": lane.review.commands, "effects": lane.review.effects, "credentials": lane.review.credentials,
                       "in_doubt": lane.review.inDoubt, "timeout_seconds": lane.review.timeoutSeconds] as [String: Any],
            "budget": lane.budget.limits, "halt_on": lane.haltOn,
        ]
    }
}

/// `lanes verify --file EXPORT.json`.
enum ExportVerification {
    static func run(_ path: String, json: Bool) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw failure("cannot read \(path)") }
        let (count, problems) = RunExport.verify(data)
        if json {
            var o = JSONObject()
            o.add("ok", .bool(problems.isEmpty))
            o.add("file", .string(path))
            o.add("records", .int(count))
            o.add("problems", .array(problems.map { .string($0) }))
            printOut(o.rendered + "\n")
        } else if problems.isEmpty {
            printOut("ok: \(path): \(count) record(s), the chain and the document seal verify\n")
        } else {
            for p in problems { printError("lanes verify: BROKEN \(path): \(p)") }
        }
        if !problems.isEmpty { throw ExitCode(1) }
    }
}
