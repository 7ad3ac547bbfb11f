import ArgumentParser
import Foundation
import Glibc
import LaneChanges
import LaneJournal
import LaneModel
import LaneState

/// `lanes diff | apply | discard | revert | gc`: a step's workspace change set (filesystem.commit
/// = auto or review; docs/filesystem.md). Apply, discard and revert are decisions recorded in the
/// run's hash chain (who, when, why).
enum ChangeExitStatus {
    /// The workspace changed under a path since the change set was computed: nothing applied.
    static let conflict: Int32 = 82
    /// No change set is kept for that run and step.
    static let notFound: Int32 = 66
}

/// Shared by the change commands: the state directory, the store, the stored set.
struct ChangeTarget {
    let store: ChangeStore
    let journal: SQLiteJournal?
    var set: ChangeSet

    static func load(_ state: StateOptions, run: String, step: String, journal needsJournal: Bool) throws -> ChangeTarget {
        let dir = try state.open()
        let store = ChangeStore(stateDirectory: dir.path)
        let loaded: ChangeSet?
        do { loaded = try store.load(run: run, step: step) } catch { throw changeFailure(error.message, 1) }
        guard var set = loaded else {
            throw changeFailure("no change set for step \(step) of run \(run) (its lane's profile has filesystem.commit = \"direct\", or it was collected)", ChangeExitStatus.notFound)
        }
        // A step whose supervisor died left its upper directory: its change set is computed now.
        if !set.computed && set.state == .pending {
            do { try ChangeEngine.compute(&set, store: store) } catch { throw changeFailure(error.message, 1) }
        }
        return ChangeTarget(store: store, journal: needsJournal ? try state.journal() : nil, set: set)
    }

    /// Appends the decision to the run's hash chain.
    func record(_ action: Decision.Action, by: String, reason: String?) throws {
        guard let journal else { return }
        let (run, step) = (set.run, set.step)
        do {
            _ = try journal.transact(run: run) { tx in
                try tx.append(Decision(action: action, step: step, by: by, reason: reason), step: step)
            }
        } catch {
            throw changeFailure("the change set is \(set.state.rawValue) but the decision could not be recorded: \(error.description)", JournalExitStatus.journalError)
        }
    }
}

func changeFailure(_ message: String, _ status: Int32) -> ExitCode {
    printError("lanes: \(message)")
    return ExitCode(status)
}

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff", abstract: "Show what a step changed in the workspace (unified diff for text, sizes and hashes for binary).",
        discussion: "Exit 0; 66 when no change set is kept for RUN STEP.")
    @OptionGroup var stateOptions: StateOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN")) var runID: String
    @Argument(help: ArgumentHelp("The step id.", valueName: "STEP")) var step: String
    @Flag(help: "One line per changed path with its kind and size.") var stat = false
    @Flag(help: "The whole change set as JSON (entries with sizes, SHA-256, modes, conflicts, refusals).") var json = false

    func run() throws {
        let target = try ChangeTarget.load(stateOptions, run: runID, step: step, journal: false)
        let set = target.set
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            printOut(String(decoding: try encoder.encode(set), as: UTF8.self) + "\n")
            return
        }
        printOut("# step \(set.step) of run \(set.run): \(set.state.rawValue), \(set.entries.count) change\(set.entries.count == 1 ? "" : "s") in \(set.workspace)\n")
        for c in set.conflicts { printOut("# conflict: \(c) changed in the workspace meanwhile\n") }
        for r in set.refused { printOut("# refused: \(r.path): \(r.reason)\n") }
        for h in set.held { printOut("# held for review (protected): \(h)\n") }
        for e in set.entries {
            if stat {
                let size = e.type == .file ? " \(e.size ?? 0) B" : e.type.map { " (\($0.rawValue))" } ?? ""
                printOut("\(e.kind.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) \(e.from.map { "\($0) → " } ?? "")\(e.path)\(size)\n")
            } else {
                printOut(render(e, set, target.store))
            }
        }
    }

    private func render(_ e: ChangeEntry, _ set: ChangeSet, _ store: ChangeStore) -> String {
        let oldName = e.kind == .added ? "/dev/null" : "a/" + (e.from ?? e.path)
        let newName = e.kind == .deleted ? "/dev/null" : "b/" + e.path
        var out = "diff --lanes \(oldName) \(newName)\n"
        if let from = e.from { out += "rename from \(from)\nrename to \(e.path)\n" }
        switch e.kind {
        case .modeChanged:
            return out + "old mode \(String(e.before?.mode ?? 0, radix: 8))\nnew mode \(String(e.mode ?? 0, radix: 8))\n"
        case .deleted:
            out += "deleted \(e.before?.type.rawValue ?? "path")\n"
        default:
            if e.type == .symlink { return out + "symlink → \(e.linkTarget ?? "")\n" }
            if e.type == .directory { return out + "new directory, mode \(String(e.mode ?? 0, radix: 8))\n" }
            if let before = e.before, before.mode != e.mode { out += "old mode \(String(before.mode, radix: 8))\nnew mode \(String(e.mode ?? 0, radix: 8))\n" }
        }
        let (before, after) = ChangeInspection.sides(set, e, store: store)
        let oldBytes = e.kind == .added ? [] : before, newBytes = e.kind == .deleted ? [] : after
        if let oldBytes, let newBytes, TextDiff.isText(oldBytes), TextDiff.isText(newBytes),
           let hunks = TextDiff.unified(String(decoding: oldBytes, as: UTF8.self), String(decoding: newBytes, as: UTF8.self)) {
            if hunks.isEmpty { return out }
            return out + "--- \(oldName)\n+++ \(newName)\n" + hunks.joined(separator: "\n") + "\n"
        }
        let old = e.kind == .added ? "-" : "\(e.before?.size ?? 0) B sha256:\(e.before?.sha256 ?? e.fromBefore?.sha256 ?? "?")"
        let new = e.kind == .deleted ? "-" : "\(e.size ?? 0) B sha256:\(e.sha256 ?? "?")"
        return out + "binary (or too large to show): \(old) → \(new)\n"
    }
}

struct ApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply", abstract: "Apply a step's pending workspace changes, all or nothing (recorded: who, when, why).",
        discussion: """
            Exit 0 applied; 82 conflict: a path changed in the workspace since the step started
            (named; nothing applied); 66 no change set; 1 not pending or the apply failed (rolled
            back); 74 the decision could not be journaled.
            """)
    @OptionGroup var stateOptions: StateOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN")) var runID: String
    @Argument(help: ArgumentHelp("The step id.", valueName: "STEP")) var step: String
    @Option(help: ArgumentHelp("Who applies it (recorded).", valueName: "NAME")) var by: String
    @Option(help: ArgumentHelp("Why (recorded).", valueName: "TEXT")) var reason: String?

    func validate() throws { if by.isEmpty { throw ValidationError("--by needs a name") } }

    func run() throws {
        var target = try ChangeTarget.load(stateOptions, run: runID, step: step, journal: true)
        let outcome: ChangeEngine.ApplyOutcome
        do { outcome = try ChangeEngine.apply(&target.set, store: target.store) } catch { throw changeFailure(error.message, 1) }
        switch outcome {
        case let .conflict(paths):
            throw changeFailure("conflict: \(paths.joined(separator: ", ")) changed in the workspace since step \(step) of run \(runID) started; nothing applied", ChangeExitStatus.conflict)
        case .applied:
            try target.record(.changesApplied, by: by, reason: reason)
            let s = target.set.summary
            printOut("applied \(s.count) change\(s.count == 1 ? "" : "s") of step \(step) of run \(runID)\(target.set.undoKept == false ? " (too large to keep for revert)" : "")\n")
        }
    }
}

struct DiscardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "discard", abstract: "Discard a step's pending workspace changes (recorded: who, when, why).",
        discussion: "Exit 0 discarded; 66 no change set; 1 not pending; 74 the decision could not be journaled.")
    @OptionGroup var stateOptions: StateOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN")) var runID: String
    @Argument(help: ArgumentHelp("The step id.", valueName: "STEP")) var step: String
    @Option(help: ArgumentHelp("Who discards it (recorded).", valueName: "NAME")) var by: String
    @Option(help: ArgumentHelp("Why (recorded).", valueName: "TEXT")) var reason: String?

    func validate() throws { if by.isEmpty { throw ValidationError("--by needs a name") } }

    func run() throws {
        var target = try ChangeTarget.load(stateOptions, run: runID, step: step, journal: true)
        do { try ChangeEngine.discard(&target.set, store: target.store) } catch { throw changeFailure(error.message, 1) }
        try target.record(.changesDiscarded, by: by, reason: reason)
        printOut("discarded the changes of step \(step) of run \(runID)\n")
    }
}

struct RevertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revert", abstract: "Undo a step's applied workspace changes from the pre-images kept at apply time.",
        discussion: """
            Refused (exit 1) when a later step (named) or a person changed the same paths since:
            revert the later steps first, latest first. Exit 0 reverted; 66 no change set; 74 the
            decision could not be journaled.
            """)
    @OptionGroup var stateOptions: StateOptions
    @Argument(help: ArgumentHelp("The run id.", valueName: "RUN")) var runID: String
    @Argument(help: ArgumentHelp("The step id.", valueName: "STEP")) var step: String
    @Option(help: ArgumentHelp("Who reverts it (recorded).", valueName: "NAME")) var by: String
    @Option(help: ArgumentHelp("Why (recorded).", valueName: "TEXT")) var reason: String?

    func validate() throws { if by.isEmpty { throw ValidationError("--by needs a name") } }

    func run() throws {
        var target = try ChangeTarget.load(stateOptions, run: runID, step: step, journal: true)
        do { try ChangeEngine.revert(&target.set, store: target.store) } catch { throw changeFailure(error.message, 1) }
        try target.record(.changesReverted, by: by, reason: reason)
        printOut("reverted the changes of step \(step) of run \(runID)\n")
    }
}

struct GCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Remove the change-set state (upper directories, pre-images) of runs older than AGE.",
        discussion: "AGE: seconds, or a number with s, m, h or d (\"7d\"). Exit 0; 64 for a bad AGE.")
    @OptionGroup var stateOptions: StateOptions
    @Option(name: .customLong("older-than"), help: ArgumentHelp("The age.", valueName: "AGE")) var olderThan: String

    static func seconds(_ text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var number = Substring(text), unit = 1.0
        if let last = text.last, let u = units[last] { number = text.dropLast(); unit = u }
        guard let v = Double(number), v >= 0, v.isFinite else { return nil }
        return v * unit
    }

    func validate() throws {
        if Self.seconds(olderThan) == nil { throw ValidationError("--older-than expects an age like 3600, 90m, 12h or 7d, found \"\(olderThan)\"") }
    }

    func run() throws {
        let dir = try stateOptions.open()
        let removed = ChangeStore(stateDirectory: dir.path).collect(olderThan: Self.seconds(olderThan) ?? .infinity)
        printOut("removed the change sets of \(removed.count) run\(removed.count == 1 ? "" : "s")\(removed.isEmpty ? "" : ": " + removed.joined(separator: " "))\n")
    }
}

/// The CHANGES column of `lanes show` (and its JSON), computing a dead step's change set from
/// what its upper directory holds.
enum ChangesColumn {
    static func summary(state: StateOptions, run: String, step: String) -> StepChanges? {
        guard let dir = try? StateDirectory(path: state.resolved) else { return nil }
        let store = ChangeStore(stateDirectory: dir.path)
        guard var set = try? store.load(run: run, step: step) else { return nil }
        if !set.computed && set.state == .pending { try? ChangeEngine.compute(&set, store: store) }
        return set.summary
    }

    /// Under the table: what a step's waiting change set holds (an in-doubt step's evidence).
    static func printWaiting(state: StateOptions, run: String, step: String) {
        guard let s = summary(state: state, run: run, step: step), s.state == "pending" || s.state == "conflict", s.count > 0 else { return }
        var parts: [String] = []
        for (kind, paths) in [("added", s.added), ("modified", s.modified), ("deleted", s.deleted),
                              ("renamed", s.renamed.map { "\($0.from) → \($0.to)" }), ("mode changed", s.modeChanged)] where !paths.isEmpty {
            parts.append("\(kind) " + paths.prefix(10).joined(separator: ", ") + (paths.count > 10 ? ", … (\(paths.count))" : ""))
        }
        printOut("step \(step): \(s.state) changes: \(parts.joined(separator: "; ")) (lanes diff \(run) \(step))\n")
    }

    static func text(_ s: StepChanges?) -> String {
        guard let s else { return "-" }
        return "\(s.state) \(s.count)" + (s.conflicts.isEmpty ? "" : " conflict") + (s.held.isEmpty ? "" : " held")
    }
}
