import Foundation
import LaneGovernance
import LaneJournal
import LaneModel
import LaneState

/// The journal's and governance's part of one step: intent before the spawn (after governance
/// decided in the same transaction), close after, replay and the refusals. The result goes back
/// to the caller only after the close record is durable.
struct JournaledStep {
    let journal: SQLiteJournal
    let run: String
    let step: String?
    let lane: Lane
    let effect: String?
    let retryAllowed: Bool
    /// Lines for the caller (`lanes: run … is now halted …`).
    let notify: (String) -> Void

    /// What the step came to.
    enum Report {
        /// The step ran (or was replayed) with this result; `json` is the result as reported.
        case result(StepResult, json: String, step: String, replayed: Bool, retried: Bool)
        /// Nothing ran: why, and the step it concerns.
        case refused(RefusalReason, step: String?, message: String)
    }

    /// `execute` runs the step; it gets the step's id (its change set is kept under run/step).
    func perform(intent: StepIntent, execute: (String) -> StepResult) -> Report {
        // The store checks the run's chain before it appends (the tail always, the whole chain when
        // the journal was changed outside lanes) and refuses a broken one (74).
        let decision: BeginDecision
        do {
            let journal = self.journal, lane = self.lane, effect = self.effect
            let request = BeginRequest(run: run, step: step, intent: intent, retryAllowed: retryAllowed, isAlive: { journal.isAlive($0) })
            switch try journal.transact(run: run, { tx in try Governance.begin(tx, request: request, lane: lane, effect: effect) }) {
            case let .refused(id, status, message): return .refused(Self.reason(status), step: id, message: message)
            case let .journal(d): decision = d
            }
        } catch {
            return .refused(.journalError, step: step, message: error.description)
        }
        switch decision {
        case let .replay(id, result, json):
            var r = result
            if r.lane.isEmpty { r.lane = intent.lane }
            return .result(r, json: json, step: id, replayed: true, retried: false)
        case let .nondeterministic(id, differences):
            return .refused(.nondeterministic, step: id,
                            message: "nondeterminism: step \(id) of run \(run) was recorded with a different intent (differs in: \(differences.joined(separator: ", "))); nothing was run")
        case let .inDoubt(id, _):
            return .refused(.inDoubt, step: id,
                            message: "step \(id) of run \(run) is in doubt: needs review (its supervisor died after the intent and before the result; the lane does not allow retrying — set retry = \"safe\" or pass --idempotent if running it again is harmless)")
        case let .inFlight(id, supervisor):
            return .refused(.inFlight, step: id,
                            message: "step \(id) of run \(run) is in flight: supervisor pid \(supervisor.pid) is still running it")
        case let .started(id, intentSeq, retried):
            var result = execute(id)
            do {
                result = try close(step: id, intentSeq: intentSeq, result: result)
            } catch {
                return .refused(.journalError, step: id,
                                message: "step \(id) of run \(run) ran but its result could not be recorded: \(error.description)")
            }
            return .result(result, json: result.json(), step: id, replayed: false, retried: retried)
        }
    }

    /// Records the close and, in the same transaction, a halt or stop the step caused (loops,
    /// budgets, halt_on); then reports it and, for a stop, stops the run's other steps. A step
    /// that ended because the run was stopped reports the stop (81 and its reason).
    private func close(step id: String, intentSeq: Int, result original: StepResult) throws(JournalError) -> StepResult {
        let lane = self.lane
        let (result, verdict) = try journal.transact(run: run) { tx -> (StepResult, Governance.Verdict?) in
            var result = original.asReported
            if result.outcome == .stopped, let stop = tx.state.governance.stopped {
                result.exitCode = GovernanceExitStatus.stopped
                result.error = "stopped by \(stop.decision.by): \(stop.decision.reason ?? "no reason given")"
            }
            try tx.close(step: id, intentSeq: intentSeq, result: result)
            return (result, try Governance.afterStep(tx, lane: lane))
        }
        switch verdict {
        case let .halt(d)?:
            notify("run \(run) is now halted: \(d.reason ?? ""); further steps are refused until `lanes resume \(run) --by NAME`")
        case let .stop(d)?:
            notify("run \(run) is stopped: \(d.reason ?? ""); stopping its other steps")
            let report = try RunStopper.stop(journal: journal, run: run, by: "lanes", reason: d.reason ?? "halt_on", record: false)
            if !report.survivors.isEmpty { notify("still running after the stop: \(report.survivors.joined(separator: ", "))") }
        case nil:
            break
        }
        return result
    }

    static func reason(_ status: Int32) -> RefusalReason {
        RefusalReason.allCases.first { $0.exitStatus == status } ?? .journalError
    }
}
