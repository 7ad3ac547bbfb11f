import Foundation
import LaneModel

/// What a path in the workspace was when a change set was computed or applied: enough to tell
/// that it changed since (type, size, mode, mtime, ctime, inode), and its content hash when it
/// is a file whose content the change set depends on.
public struct PathState: Codable, Sendable, Equatable {
    public enum FileType: String, Codable, Sendable { case file, directory, symlink, other }
    public var type: FileType
    public var size: UInt64
    public var mode: UInt32
    public var mtimeNs: Int64
    public var ctimeNs: Int64
    public var ino: UInt64
    public var sha256: String?
    public var linkTarget: String?

    init(_ st: stat) {
        switch st.st_mode & S_IFMT {
        case S_IFREG: type = .file
        case S_IFDIR: type = .directory
        case S_IFLNK: type = .symlink
        default: type = .other
        }
        size = UInt64(st.st_size)
        mode = UInt32(st.st_mode & 0o7777)
        mtimeNs = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        ctimeNs = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
        ino = UInt64(st.st_ino)
    }

    /// Same object, unchanged since (inode, type, size, mode and mtime).
    /// A directory's size and mtime change with its entries, so only its identity and mode count.
    func unchanged(comparedTo other: PathState) -> Bool {
        if type == .directory { return other.type == .directory && ino == other.ino && mode == other.mode }
        return type == other.type && size == other.size && mode == other.mode && mtimeNs == other.mtimeNs && ino == other.ino
    }

    /// Same content (type, size, mode bits without setuid/setgid, hash or link target).
    func sameContent(as other: PathState) -> Bool {
        type == other.type && (type == .directory || size == other.size) && (mode & 0o1777) == (other.mode & 0o1777)
            && sha256 == other.sha256 && linkTarget == other.linkTarget
    }
}

/// One change of a change set. Paths are workspace-relative, `/`-separated, never empty and
/// without `.` or `..` components (checked again before anything is applied).
public struct ChangeEntry: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case added, modified, deleted, renamed, modeChanged = "mode_changed" }
    public var kind: Kind
    public var path: String
    /// What the upper directory holds at `path` (nil for a deletion).
    public var type: PathState.FileType?
    public var size: UInt64?
    public var sha256: String?
    /// Permission bits as written by the step (setuid/setgid are stripped when applied).
    public var mode: UInt32?
    public var linkTarget: String?
    /// The workspace at `path` when the change set was computed (nil: absent).
    public var before: PathState?
    /// renamed: where the content came from, and what was there.
    public var from: String?
    public var fromBefore: PathState?

    public init(kind: Kind, path: String) {
        self.kind = kind
        self.path = path
    }

    /// The workspace paths this entry changes.
    public var touched: [String] { [path] + (from.map { [$0] } ?? []) }
}

/// An entry that is never applied, and why.
public struct Refusal: Codable, Sendable, Equatable {
    public var path: String
    public var reason: String
}

/// A workspace path as it was before an apply, so it can be put back (`lanes revert`).
public struct PreImage: Codable, Sendable, Equatable {
    public var path: String
    /// nil: the path did not exist.
    public var state: PathState?
    public var uid: UInt32?
    public var gid: UInt32?
}

/// Everything known about one step's change set; stored as `changeset.json` next to the
/// step's upper directory (`ChangeStore`).
public struct ChangeSet: Codable, Sendable {
    public enum State: String, Codable, Sendable {
        case pending, applied, discarded, reverted, conflict, failed
    }
    public var run: String
    public var step: String
    public var lane: String
    public var workspace: String
    public var commit: String
    public var state: State
    /// CLOCK_REALTIME in ns when the step started: a workspace path whose ctime is later was
    /// changed by someone else while the step ran.
    public var startedNs: Int64
    public var entries: [ChangeEntry] = []
    public var refused: [Refusal] = []
    public var conflicts: [String] = []
    /// Paths under filesystem.protected the change set touches (held for review).
    public var held: [String] = []
    public var protected: [String] = []
    public var writableDirect: [String] = []
    public var maxUndoBytes: UInt64
    /// Set by apply: what was there before, and whether its content was kept for revert.
    public var preImages: [PreImage]?
    public var undoKept: Bool?
    public var undoBytes: UInt64?
    /// Set by apply: what each touched path is right after (the revert check compares).
    public var postImages: [PreImage]?
    public var appliedAt: Double?
    /// False until the change set was computed from the upper directory (a step whose
    /// supervisor died leaves it false: it is computed when someone looks).
    public var computed: Bool = false
    /// How long computing and applying took (ms; for `scripts/bench` and curious reviewers).
    public var computeMs: Double?
    public var applyMs: Double?
    public var error: String?

    public init(run: String, step: String, lane: String, workspace: String, commit: String, startedNs: Int64,
                protected: [String], writableDirect: [String], maxUndoBytes: UInt64) {
        self.run = run
        self.step = step
        self.lane = lane
        self.workspace = workspace
        self.commit = commit
        self.state = .pending
        self.startedNs = startedNs
        self.protected = protected
        self.writableDirect = writableDirect
        self.maxUndoBytes = maxUndoBytes
    }

    /// Every workspace path the applicable entries change.
    public var touchedPaths: [String] { entries.flatMap(\.touched) }

    /// Bytes of file content carried.
    public var bytes: UInt64 { entries.reduce(0) { $0 + ($1.type == .file ? ($1.size ?? 0) : 0) } }

    /// The summary for the step's result.
    public var summary: StepChanges {
        var s = StepChanges(state: state.rawValue)
        for e in entries {
            switch e.kind {
            case .added: s.added.append(e.path)
            case .modified: s.modified.append(e.path)
            case .deleted: s.deleted.append(e.path)
            case .renamed: s.renamed.append(.init(from: e.from ?? "", to: e.path))
            case .modeChanged: s.modeChanged.append(e.path)
            }
        }
        s.bytes = bytes
        s.conflicts = conflicts
        s.refused = refused.map { "\($0.path): \($0.reason)" }
        s.held = held
        s.error = error
        return s
    }
}
