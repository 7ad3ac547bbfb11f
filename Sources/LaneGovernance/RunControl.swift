import Foundation
import LaneJournal
import LaneModel

/// What a person (through any front door) does to a run: answer an approval request, resume a
/// halted run. `RunStopper` stops one. Each is one decision record in the run's hash chain.
public enum RunControl {
    /// Approves or denies step `step`'s pending request. Throws `GovernanceError` (expired:
    /// recorded as expired) or `JournalError`.
    public static func answer(_ journal: SQLiteJournal, run: String, step: String, action: Decision.Action,
                              by: String, reason: String?) throws -> Decision {
        try journal.decide(run: run) { tx in
            guard tx.exists else { throw GovernanceError("no run \(run)") }
            return try Governance.answer(tx, step: step, action: action, by: by, reason: reason)
        }
    }

    /// Resumes a halted run, raising budget limits for it; returns the halt it lifted.
    public static func resume(_ journal: SQLiteJournal, run: String, by: String, reason: String?,
                              raises: [String: Double]) throws -> Decision {
        try journal.decide(run: run) { tx -> Decision in
            guard tx.exists else { throw GovernanceError("no run \(run)") }
            let state = tx.state.governance
            if let s = state.stopped {
                throw GovernanceError("run \(run) was stopped by \(s.decision.by) (\(s.decision.reason ?? "")); a stopped run is not resumed: start a new run")
            }
            guard let h = state.halted else { throw GovernanceError("run \(run) is not halted") }
            try tx.append(Decision(action: .resumed, by: by, reason: reason, raises: raises.isEmpty ? nil : raises), step: nil)
            return h.decision
        }
    }
}
