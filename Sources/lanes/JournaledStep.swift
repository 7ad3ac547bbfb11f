import Foundation
import LaneJournal
import LaneModel
import LaneSupervisor

/// The journal's part of `lanes run`: intent before the spawn, close after, replay and the
/// refusals. The result goes back to the caller only after the close record is durable.
struct JournaledStep {
    let journal: SQLiteJournal
    let run: String
    let step: String?
    let retryAllowed: Bool
    /// Review gates, budgets, loops and stops (GovernanceCommands.swift); decided in the begin transaction.
    var governance: GovernanceHook? = nil

    /// What `lanes run` reports.
    enum Report {
        /// The step ran (or was replayed) with this result.
        case result(StepResult, step: String, replayed: Bool, retried: Bool)
        /// The step was refused or the journal failed; exit status and message.
        case refused(status: Int32, step: String?, message: String)
    }

    func perform(intent: StepIntent, execute: () -> StepResult) -> Report {
        // The store checks the run's chain before it appends (the tail always, the whole chain when
        // the journal was changed outside lanes) and refuses a broken one with `.broken` (74).
        let decision: BeginDecision
        do {
            let journal = self.journal
            let request = BeginRequest(run: run, step: step, intent: intent, retryAllowed: retryAllowed, isAlive: { journal.isAlive($0) })
            if let governance {
                switch try governance.begin(journal, request) {
                case let .refused(id, status, message): return .refused(status: status, step: id, message: message)
                case let .journal(d): decision = d
                }
            } else {
                decision = try journal.begin(request)
            }
        } catch {
            return .refused(status: JournalExitStatus.journalError, step: step, message: error.description)
        }
        switch decision {
        case let .replay(id, close):
            return .result(Self.result(close, lane: intent.lane), step: id, replayed: true, retried: false)
        case let .nondeterministic(id, differences):
            return .refused(status: JournalExitStatus.nondeterministic, step: id,
                            message: "nondeterminism: step \(id) of run \(run) was recorded with a different intent (differs in: \(differences.joined(separator: ", "))); nothing was run")
        case let .inDoubt(id, _):
            return .refused(status: JournalExitStatus.inDoubt, step: id,
                            message: "step \(id) of run \(run) is in doubt: needs review (its supervisor died after the intent and before the result; the lane does not allow retrying — set retry = \"safe\" or pass --idempotent if running it again is harmless)")
        case let .inFlight(id, supervisor):
            return .refused(status: JournalExitStatus.inFlight, step: id,
                            message: "step \(id) of run \(run) is in flight: supervisor pid \(supervisor.pid) is still running it")
        case let .started(id, intentSeq, retried):
            let result = execute()
            do {
                if let governance {
                    try governance.close(journal, run: run, step: id, intentSeq: intentSeq, result: Self.close(result))
                } else {
                    try journal.close(run: run, step: id, intentSeq: intentSeq, result: Self.close(result))
                }
            } catch {
                return .refused(status: JournalExitStatus.journalError, step: id,
                                message: "step \(id) of run \(run) ran but its result could not be recorded: \(error.description)")
            }
            return .result(result, step: id, replayed: false, retried: retried)
        }
    }

    /// Which limit ended the step, if one did.
    static func limitFired(_ r: StepResult) -> String? {
        switch r.outcome.rawValue {
        case "timed_out": return "wall_clock"
        case "out_of_memory", "oom": return "memory"
        case "pids_limit": return "pids"
        default: break
        }
        if r.stdoutTruncated || r.stderrTruncated { return "output" }
        return nil
    }

    static func close(_ r: StepResult) -> StepClose {
        var c = StepClose(outcome: r.outcome.rawValue, exitStatus: r.exitStatus, exitCode: r.exitCode, signal: r.signal,
                  limit: limitFired(r), wallMs: r.wallMs, cpuMs: r.cpuMs, maxRssKb: r.maxRssKb,
                  stdout: Data(r.stdout), stderr: Data(r.stderr), stdoutTruncated: r.stdoutTruncated,
                  stderrTruncated: r.stderrTruncated, protections: r.protections, error: r.error,
                  profile: r.profile, profileFingerprint: r.profileFingerprint)
        (c.egressDenied, c.egressBytes) = (r.network?.deniedCount, r.network?.egressBytes)  // MERGE(issue 12)
        return c
    }

    /// The recorded result as a `StepResult` (its exit status is the recorded one).
    static func result(_ c: StepClose, lane: String) -> StepResult {
        var r = StepResult(lane: lane, profile: c.profile, profileFingerprint: c.profileFingerprint,
                           outcome: Outcome(rawValue: c.outcome) ?? .exited, exitCode: c.exitCode, signal: c.signal,
                           wallMs: c.wallMs, cpuMs: c.cpuMs, maxRssKb: c.maxRssKb, stdout: Array(c.stdout),
                           stderr: Array(c.stderr), stdoutTruncated: c.stdoutTruncated, stderrTruncated: c.stderrTruncated,
                           protections: c.protections, error: c.error)
        if r.exitStatus != c.exitStatus, r.outcome == .exited { r.exitCode = c.exitStatus }
        return r
    }
}

/// Resolves a lane's credentials to values. A missing one refuses the step, naming the
/// credential and the lane, never a value.
enum CredentialResolver {
    static func resolve(_ lane: Lane, secrets: SecretStore) -> Result<[CredentialValue], LanesError> {
        var out: [CredentialValue] = []
        for c in lane.credentials {
            let value: [UInt8]?
            switch c.source {
            case let .secret(name):
                do { value = try secrets.get(name) } catch {
                    return .failure(LanesError(.notFound, stage: "credentials", "lane \(lane.name): credential \(c.name): \(error.message)"))
                }
                if value == nil {
                    return .failure(LanesError(.notFound, stage: "credentials", "lane \(lane.name): credential \(c.name): secret \"\(name)\" is not set (lanes secret set \(name))"))
                }
            case let .environment(variable):
                value = ProcessInfo.processInfo.environment[variable].map { Array($0.utf8) }
                if value == nil {
                    return .failure(LanesError(.notFound, stage: "credentials", "lane \(lane.name): credential \(c.name): the supervisor's environment has no \(variable)"))
                }
            case let .file(path):
                value = FileManager.default.contents(atPath: path).map { Array($0) }
                if value == nil {
                    return .failure(LanesError(.notFound, stage: "credentials", "lane \(lane.name): credential \(c.name): cannot read \(path)"))
                }
            }
            out.append(CredentialValue(name: c.name, delivery: c.delivery, value: value ?? []))
        }
        return .success(out)
    }
}
