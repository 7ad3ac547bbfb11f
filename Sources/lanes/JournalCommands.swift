import ArgumentParser
import Foundation
import LaneJournal
import LaneModel

/// The state of a step as people read it.
private func state(_ s: StepSummary, _ journal: SQLiteJournal) -> String {
    guard let close = s.close else {
        return (s.intent.map { journal.isAlive($0.supervisor) } ?? false) ? "in_flight" : "in_doubt"
    }
    return close.outcome.rawValue
}

private func runStatus(_ steps: [StepSummary], _ journal: SQLiteJournal) -> String {
    if steps.contains(where: { $0.close == nil && ($0.intent.map { journal.isAlive($0.supervisor) } ?? false) }) { return "running" }
    if steps.contains(where: { $0.close == nil }) { return "in_doubt" }
    if steps.contains(where: { ($0.close?.exitStatus ?? 0) != 0 }) { return "failed" }
    return "ok"
}

private func fail(_ message: String, status: Int32 = 1) -> ExitCode {
    printError("lanes: \(message)")
    return ExitCode(status)
}

private func load(_ journal: SQLiteJournal, run: String) throws -> [JournalRecord] {
    let records: [JournalRecord]
    do { records = try journal.records(run: run) } catch { throw fail(error.description, status: JournalExitStatus.journalError) }
    if records.isEmpty { throw fail("no run \(run)") }
    return records
}

struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "runs", abstract: "List runs: id, lane, started, steps, status.")
    @OptionGroup var stateOptions: StateOptions
    @Flag(help: "JSON lines.") var json = false

    func run() throws {
        let journal = try stateOptions.journal()
        var rows: [[String]] = []
        let runs: [RunSummary]
        do { runs = try journal.runs() } catch { throw fail(error.description, status: JournalExitStatus.journalError) }
        for r in runs {
            let records = (try? journal.records(run: r.id)) ?? []
            let steps = StepSummary.fold(records)
            let status = governanceStatus(records) ?? runStatus(steps, journal)
            if json {
                var o = JSONObject()
                o.add("run", .string(r.id))
                o.add("lane", .string(r.lane))
                o.add("started", .string(isoTime(r.createdAt)))
                o.add("steps", .int(steps.count))
                o.add("records", .int(r.records))
                o.add("status", .string(status))
                printOut(o.rendered + "\n")
            } else {
                rows.append([r.id, r.lane, isoTime(r.createdAt), String(steps.count), status])
            }
        }
        if !json { printOut(table(["RUN", "LANE", "STARTED", "STEPS", "STATUS"], rows)) }
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a run's steps: outcome, duration, exit status.")
    @OptionGroup var stateOptions: StateOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN"), transform: ArgumentSyntax.runID) var runID: String  // MERGE(issue 11): one run id syntax
    @Flag(help: "JSON lines, one per step.") var json = false

    func run() throws {
        let journal = try stateOptions.journal()
        let steps = StepSummary.fold(try load(journal, run: runID))
        var rows: [[String]] = []
        for s in steps {
            let c = s.close
            if json {
                var o = JSONObject()
                o.add("run", .string(runID))
                o.add("step", .string(s.step))
                o.add("state", .string(state(s, journal)))
                o.add("outcome", c.map { .string($0.outcome.rawValue) } ?? .null)
                o.add("exit_status", c.map { .int(Int($0.exitStatus)) } ?? .null)
                o.add("wall_ms", c.map { .double($0.wallMs) } ?? .null)
                o.add("attempts", .int(s.attempts))
                o.add("argv", .array((s.intent?.argv ?? []).map { .string($0) }))
                // What the sandbox refused the step.
                o.add("denials", .array((c?.denials ?? []).map(\.jsonValue)))
                o.add("changes", ChangesColumn.summary(state: stateOptions, run: runID, step: s.step)?.json() ?? .null)
                printOut(o.rendered + "\n")
            } else {
                rows.append([s.step, state(s, journal), c.map { String($0.exitStatus) } ?? "-",
                             c.map { String(format: "%.1f ms", $0.wallMs) } ?? "-", String(s.attempts),
                             ChangesColumn.text(ChangesColumn.summary(state: stateOptions, run: runID, step: s.step)),
                             (s.intent?.argv ?? []).joined(separator: " ")])
                // One indented line per denial under its step.
                for d in c?.denials ?? [] { rows.append(["", "  denied", "", "", "", d.summary]) }
            }
        }
        if !json {
            printOut(table(["STEP", "OUTCOME", "EXIT", "DURATION", "ATTEMPTS", "CHANGES", "COMMAND"], rows))
            for s in steps { ChangesColumn.printWaiting(state: stateOptions, run: runID, step: s.step) }  // issue 14
        }
    }
}

struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "log", abstract: "Print every record of a run (JSON lines with --json).")
    @OptionGroup var stateOptions: StateOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN"), transform: ArgumentSyntax.runID) var runID: String  // MERGE(issue 11): one run id syntax
    @Flag(help: "One JSON object per record, with its body, prev_hash and hash.") var json = false

    func run() throws {
        let records = try load(try stateOptions.journal(), run: runID)
        var rows: [[String]] = []
        for r in records {
            if json {
                var o = JSONObject()
                o.add("run", .string(r.run))
                o.add("seq", .int(r.seq))
                o.add("kind", .string(r.kind.rawValue))
                o.add("step", r.step.map { .string($0) } ?? .null)
                o.add("at", .string(isoTime(r.at)))
                o.add("prev_hash", .string(r.prevHash))
                o.add("hash", .string(r.hash))
                // The body is canonical JSON already: embedded as is.
                printOut(String(o.rendered.dropLast()) + ",\"body\":" + r.body + "}\n")
            } else {
                rows.append([String(r.seq), isoTime(r.at), r.kind.rawValue, r.step ?? "-", summary(r), String(r.hash.prefix(12))])
            }
        }
        if !json { printOut(table(["SEQ", "AT", "KIND", "STEP", "SUMMARY", "HASH"], rows)) }
    }

    private func summary(_ r: JournalRecord) -> String {
        switch r.kind {
        case .run: return (try? r.decode(RunOpened.self)).map { "lane \($0.lane), pid \($0.supervisor.pid)" } ?? "?"
        case .intent: return r.intent.map { "\($0.argv.joined(separator: " ")) (pid \($0.supervisor.pid))" } ?? "?"
        case .close: return r.close.map { "\($0.outcome), exit \($0.exitStatus), \(String(format: "%.1f", $0.wallMs)) ms" } ?? "?"
        case .decision: return r.decision?.summary ?? "?"
        }
    }
}

struct OutputCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "output", abstract: "Print a step's recorded stdout and stderr (to stdout and stderr).")
    @OptionGroup var stateOptions: StateOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN"), transform: ArgumentSyntax.runID) var runID: String  // MERGE(issue 11): one run id syntax
    @Argument(help: "The step id.") var step: String
    @Flag(help: "One JSON object with stdout and stderr.") var json = false

    func run() throws {
        let journal = try stateOptions.journal()
        let steps = StepSummary.fold(try load(journal, run: runID))
        guard let s = steps.first(where: { $0.step == step }) else { throw fail("run \(runID) has no step \(step)") }
        guard let c = s.close else { throw fail("step \(step) of run \(runID) has no result (\(state(s, journal)))") }
        if json {
            var o = JSONObject()
            o.add("run", .string(runID))
            o.add("step", .string(step))
            o.add("stdout", .string(String(decoding: c.stdout, as: UTF8.self)))
            o.add("stderr", .string(String(decoding: c.stderr, as: UTF8.self)))
            o.add("stdout_truncated", .bool(c.stdoutTruncated))
            o.add("stderr_truncated", .bool(c.stderrTruncated))
            printOut(o.rendered + "\n")
        } else {
            writeAll(1, Array(c.stdout))
            writeAll(2, Array(c.stderr))
        }
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check the hash chains of one run or all (and the run state kept beside them); name the first bad record.",
        discussion: "Exit 0 when every chain verifies; 1 when one is broken (the message names the run and the first bad record); 74 when the journal cannot be read at all.")
    @OptionGroup var stateOptions: StateOptions
    @Argument(help: ArgumentHelp("The run id (default: every run).", valueName: "RUN"), transform: ArgumentSyntax.runID) var runID: String?  // MERGE(issue 11)
    @Flag(help: "One JSON object with the findings.") var json = false
    @Option(help: ArgumentHelp("Check a document written by `lanes export` instead of the journal.", valueName: "FILE")) var file: String?

    func run() throws {
        if let file { return try ExportVerification.run(file, json: json) }
        let journal = try stateOptions.journal()
        var problems: [ChainProblem] = []
        var runs = 0, records = 0
        do {
            let damage = try journal.integrityProblems()
            if !damage.isEmpty {
                throw fail("the journal file \(journal.path) is damaged: \(damage.prefix(3).joined(separator: "; "))")
            }
            let ids = try runID.map { [$0] } ?? journal.runs().map(\.id)
            for id in ids {
                let (rs, head) = try journal.chain(run: id)
                if rs.isEmpty, head == nil { throw fail("no run \(id)") }
                runs += 1
                records += rs.count
                if let p = SQLiteJournal.check(run: id, records: rs, head: head) {
                    problems.append(p)
                } else if let p = try journal.checkKeptState(run: id, records: rs) {
                    problems.append(p)
                }
            }
        } catch let error as JournalError {
            throw fail("cannot read the journal: \(error.description)", status: 1)
        }
        if json {
            var o = JSONObject()
            o.add("ok", .bool(problems.isEmpty))
            o.add("runs", .int(runs))
            o.add("records", .int(records))
            o.add("problems", .array(problems.map { p in
                var q = JSONObject()
                q.add("run", .string(p.run))
                q.add("seq", .int(p.seq))
                q.add("message", .string(p.message))
                return .object(q)
            }))
            printOut(o.rendered + "\n")
        } else {
            for p in problems { printError("lanes verify: BROKEN \(p.description)") }
            if problems.isEmpty { printOut("ok: \(runs) run(s), \(records) record(s), every chain verifies\n") }
        }
        if !problems.isEmpty { throw ExitCode(1) }
    }
}
