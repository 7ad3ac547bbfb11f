import Foundation
import Glibc
import LaneJournal
import LaneModel
import LaneState
import LaneSys

/// Finds and kills every in-flight step of a run, in any `lanes` process, through the journal.
public enum RunStopper {
    /// What a stop did.
    public struct Report: Sendable {
        /// The steps that were in flight when the stop began.
        public var steps: [String] = []
        /// The steps whose `stopped` close `lanes stop` wrote itself (their supervisor was killed).
        public var recordedByStop: [String] = []
        /// What is still running after the bound (named), or why the stop could not be finished.
        public var survivors: [String] = []
        public var seconds = 0.0
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
    public static func stop(journal: SQLiteJournal, run: String, by: String, reason: String, record: Bool = true,
                            grace: Double = 0.5, bound: Double = 10) throws(JournalError) -> Report {
        var report = Report()
        let start = Date()
        let me = getpid()
        // A run that does not exist is a plain "no such run", not a failed stop.
        guard try journal.head(run: run) != nil else { throw JournalError(.notFound, "no run \(run)") }
        let targets = try journal.transact(run: run) { tx -> [Target] in
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
                    var result = StepResult(
                        lane: i?.lane ?? "", profile: i?.profile ?? "", profileFingerprint: i?.profileFingerprint ?? "",
                        outcome: .stopped, exitCode: GovernanceExitStatus.stopped, signal: SIGKILL,
                        wallMs: (Date().timeIntervalSince1970 - (last?.at ?? 0)) * 1000)
                    result.error = "stopped by \(by): \(reason); its supervisor (pid \(t.supervisor.pid)) was killed before it recorded a result"
                    try tx.close(step: t.step, intentSeq: t.intentSeq, result: result)
                    done.append(t.step)
                }
                return done
            }
        } catch {
            report.survivors.append("(the stopped records could not be written: \(error))")
        }
        for t in targets {
            if running(t.supervisor) { report.survivors.append("step \(t.step): supervisor pid \(t.supervisor.pid)") }
            for (pid, st) in t.processes where alive(pid, st) { report.survivors.append("step \(t.step): pid \(pid) (\(command(pid)))") }
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    /// A supervisor that still runs (a zombie waiting for its parent does not).
    static func running(_ s: Supervisor) -> Bool { s.isAlive }

    static func alive(_ pid: Int32, _ start: UInt64) -> Bool { ProcessStat.isRunning(pid: pid, startTime: start) }

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
