import ArgumentParser
import Foundation
import LaneConfig
import LaneGovernance
import LaneJournal
import LaneModel
import LaneRuntime
import LaneSupervisor
import LaneSys

// Governance commands: pending, approve, deny, resume, stop, export (docs/governance.md).

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
        let d = try RunControl.answer(journal, run: run, step: step, action: action, by: by, reason: reason)
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
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN"), transform: ArgumentSyntax.runID) var runID: String  // MERGE(issue 11): one run id syntax
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
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN"), transform: ArgumentSyntax.runID) var runID: String  // MERGE(issue 11): one run id syntax
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
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN"), transform: ArgumentSyntax.runID) var runID: String  // MERGE(issue 11): one run id syntax
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
            let halt = try RunControl.resume(journal, run: run, by: by, reason: reason, raises: raises)
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
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN"), transform: ArgumentSyntax.runID) var runID: String  // MERGE(issue 11): one run id syntax
    @Option(help: ArgumentHelp("Who stops it (recorded).", valueName: "NAME")) var by: String
    @Option(help: ArgumentHelp("Why (recorded).", valueName: "TEXT")) var reason: String
    @Option(help: ArgumentHelp("Seconds between the SIGTERM and the escalation.", valueName: "SECONDS")) var grace: Double = 0.5

    func validate() throws { if by.isEmpty || reason.isEmpty { throw ValidationError("--by and --reason need text") } }

    func run() throws {
        let journal = try stateOptions.journal()
        let r: RunStopper.Report
        do { r = try RunStopper.stop(journal: journal, run: runID, by: by, reason: reason, grace: grace) } catch {
            // A run that does not exist is only that; "conflict" is kept for a real conflict.
            throw failure(error.code == .notFound ? "run \(runID) does not exist (lanes runs lists the runs)" : error.description,
                          error.code == .notFound ? 1 : JournalExitStatus.journalError)
        }
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
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN"), transform: ArgumentSyntax.runID) var runID: String  // MERGE(issue 11): one run id syntax
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
