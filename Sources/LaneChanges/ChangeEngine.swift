import Foundation
import Glibc
import LaneModel

/// The change-set lifecycle: compute after the step, then apply, discard or revert
/// (docs/filesystem.md). Every function loads nothing itself; callers pass the stored set and
/// save what comes back through `ChangeStore`.
public enum ChangeEngine {
    /// What an apply did.
    public enum ApplyOutcome: Sendable, Equatable {
        case applied
        /// These paths changed in the workspace since the change set was computed: nothing applied.
        case conflict([String])
    }

    static func monotonicNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// The start of a step as inode ctimes see it, in ns. The kernel stamps ctime from the coarse
    /// clock (one tick, up to 4 ms at HZ=250, behind the fine one), so a change made just after a
    /// fine-clock start could carry an earlier ctime and be missed. The start is therefore taken
    /// from CLOCK_REALTIME_COARSE, 10 ms early: a change made up to 10 ms before the step started
    /// counts as a conflict too (the safe direction).
    public static func realtimeNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec) - 10_000_000
    }

    /// Computes the change set from the step's upper directory and records conflicts (a touched
    /// workspace path, or the directory an added path goes into, whose ctime is later than the
    /// step's start: someone else changed it while the step ran) and held paths (protected).
    public static func compute(_ set: inout ChangeSet, store: ChangeStore, durable: Bool = true) throws(LanesError) {
        let t0 = monotonicNs()
        let ws = try DirectoryFD.open(absolute: set.workspace)
        let upperPath = try store.upper(run: set.run, step: set.step)
        var st = stat()
        if lstat(upperPath, &st) == 0 {
            let upper = try DirectoryFD.open(absolute: upperPath)
            let scan = try UpperScanner(upper: upper, workspace: ws, skipped: set.writableDirect).scan()
            set.entries = scan.entries
            set.refused = scan.refused
        }
        var conflicts: [String] = []
        for e in set.entries {
            for (path, before) in [(e.path, e.before)] + (e.from.map { [($0, e.fromBefore)] } ?? []) {
                if let before {
                    if before.ctimeNs > set.startedNs { conflicts.append(path) }
                } else {
                    let (dir, _) = splitPath(path)
                    if let parent = try ws.state(of: dir.isEmpty ? "." : dir, hash: false), parent.ctimeNs > set.startedNs,
                       !set.entries.contains(where: { $0.path == dir }) {
                        conflicts.append(path)
                    }
                }
            }
        }
        set.conflicts = conflicts
        set.held = set.touchedPaths.filter { path in
            set.protected.contains { isInsideRelative(path, $0) || isInsideRelative($0, path) }
        }
        set.computed = true
        if !conflicts.isEmpty { set.state = .conflict }
        set.computeMs = Double(monotonicNs() - t0) / 1e6
        try store.save(set, durable: durable)
    }

    /// Applies a pending change set, all or nothing. Pre-images are kept (up to the lane's
    /// max_undo_bytes) for `revert`; a failure half-way is rolled back from them.
    /// `durable: false` (auto, right after a step) skips the flush of changeset.json: the
    /// workspace writes of a direct step are not flushed either.
    public static func apply(_ set: inout ChangeSet, store: ChangeStore, durable: Bool = true) throws(LanesError) -> ApplyOutcome {
        if !set.computed { try compute(&set, store: store) }
        if set.state == .conflict { return .conflict(set.conflicts) }
        let t0 = monotonicNs()
        guard set.state == .pending else {
            throw LanesError(.invalidArgument, stage: "changes", "step \(set.step) of run \(set.run) is \(set.state.rawValue), not pending")
        }
        let ws = try DirectoryFD.open(absolute: set.workspace)
        let upperPath = try store.upper(run: set.run, step: set.step)
        let upper = try DirectoryFD.open(absolute: upperPath)
        let objects = ObjectStore(directory: try store.undo(run: set.run, step: set.step))
        var applier = try ChangeApplier(workspace: ws, upper: upper, objects: objects)
        applier.rehashMoves = durable
        let conflicts = try applier.conflicts(set)
        if !conflicts.isEmpty { return .conflict(conflicts) }
        let (images, bytes) = try applier.preImages(set)
        try applier.keep(images)
        let copied: Int
        do {
            copied = try applier.applyEntries(set)
        } catch {
            do { try applier.restore(images) } catch {
                set.error = "apply failed (\(error.message)) and the rollback failed too (\(error.message)); the pre-images are in \(objects.directory)"
                try? store.save(set)
                throw LanesError(.setupFailed, stage: "changes", set.error ?? "")
            }
            throw LanesError(.setupFailed, stage: "changes", "nothing applied (rolled back): \(error.message)")
        }
        set.preImages = images
        // What each touched path is now; a file's hash is the one the apply just checked or
        // wrote (not read again: for a large file that would be another full pass).
        let written = Dictionary(set.entries.compactMap { e in e.type == .file ? e.sha256.map { (e.path, $0) } : nil },
                                 uniquingKeysWith: { a, _ in a })
        set.postImages = try set.touchedPaths.map { path throws(LanesError) in
            var state = try ws.state(of: path, hash: written[path] == nil)
            if state?.type == .file, let hash = written[path] { state?.sha256 = hash }
            return PreImage(path: path, state: state)
        }
        set.undoBytes = bytes
        set.undoKept = bytes <= set.maxUndoBytes
        if bytes > set.maxUndoBytes { objects.remove() }
        set.state = .applied
        set.appliedAt = Date().timeIntervalSince1970
        set.applyMs = Double(monotonicNs() - t0) / 1e6
        try store.save(set, durable: durable)
        // Right after an auto step, when every file was moved, what is left (directories and
        // whiteouts) is set aside with two renames and removed by `lanes gc`.
        store.removeOverlay(run: set.run, step: set.step, deferred: !durable && copied == 0)
        return .applied
    }

    /// Drops a pending (or conflicting) change set: the upper directory is removed.
    public static func discard(_ set: inout ChangeSet, store: ChangeStore) throws(LanesError) {
        guard set.state == .pending || set.state == .conflict || set.state == .failed else {
            throw LanesError(.invalidArgument, stage: "changes", "step \(set.step) of run \(set.run) is \(set.state.rawValue): only a pending change set can be discarded")
        }
        if !set.computed { try? compute(&set, store: store) }
        set.state = .discarded
        try store.save(set)
        store.removeOverlay(run: set.run, step: set.step)
    }

    /// Puts back what an applied change set replaced. Refused when a touched path no longer
    /// holds what the apply left (a later step or a person changed it), naming the later step
    /// when one is known; reverting later steps first (in order) makes it possible again.
    public static func revert(_ set: inout ChangeSet, store: ChangeStore) throws(LanesError) {
        guard set.state == .applied else {
            throw LanesError(.invalidArgument, stage: "changes", "step \(set.step) of run \(set.run) is \(set.state.rawValue): only an applied change set can be reverted")
        }
        guard set.undoKept == true, let pre = set.preImages, let post = set.postImages else {
            throw LanesError(.invalidArgument, stage: "changes",
                             "step \(set.step) of run \(set.run) cannot be reverted: its pre-images (\(set.undoBytes ?? 0) bytes) exceeded the lane's max_undo_bytes (\(set.maxUndoBytes))")
        }
        let ws = try DirectoryFD.open(absolute: set.workspace)
        var changed: [String] = []
        for image in post {
            let now = try ws.state(of: image.path, hash: true)
            switch (image.state, now) {
            case (nil, nil): continue
            case let (a?, b?) where a.sameContent(as: b): continue
            default: changed.append(image.path)
            }
        }
        if !changed.isEmpty {
            let later = store.all().filter { other in
                other.workspace == set.workspace && other.state == .applied && (other.appliedAt ?? 0) > (set.appliedAt ?? 0)
                    && other.touchedPaths.contains { changed.contains($0) }
            }
            let who = later.map { "step \($0.step) of run \($0.run)" }
            throw LanesError(.invalidArgument, stage: "changes",
                             "cannot revert step \(set.step) of run \(set.run): \(changed.joined(separator: ", ")) changed since it was applied"
                             + (who.isEmpty ? " (by hand?)" : " by \(who.joined(separator: ", ")); revert \(who.count == 1 ? "it" : "them") first, latest first"))
        }
        let objects = ObjectStore(directory: try store.undo(run: set.run, step: set.step))
        let applier = try ChangeApplier(workspace: ws, upper: nil, objects: objects)
        try applier.restore(pre)
        set.state = .reverted
        try store.save(set)
        objects.remove()
    }

    /// After a step: computes its change set and, under auto, applies it unless it touches a
    /// protected path, conflicts or holds refused entries (then it waits for review).
    public static func finishStep(_ set: inout ChangeSet, store: ChangeStore, auto: Bool) -> StepChanges {
        do {
            // Under auto the set is saved durably right after, applied or not.
            try compute(&set, store: store, durable: !auto)
            if auto && set.held.isEmpty && set.state == .pending {
                switch try apply(&set, store: store, durable: false) {
                case .applied: break
                case let .conflict(paths):
                    set.conflicts = paths
                    set.state = .conflict
                    try store.save(set)
                }
            }
        } catch {
            set.error = error.message
            try? store.save(set)
        }
        return set.summary
    }
}
