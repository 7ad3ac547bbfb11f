import LaneModel

/// The keys of the filesystem transaction (docs/filesystem.md): `filesystem.commit` in a
/// profile, `writable_direct` and `max_undo_bytes` in a lane (`filesystem.protected` is read
/// by `ProfileParser`). Kept apart so the parsers only call in.
enum ChangeKeysParser {
    /// `[filesystem] commit = "direct"|"auto"|"review"`.
    static func parseProfile(_ fs: TableReader, into filesystem: inout Profile.Filesystem) {
        if let c = fs.string("commit", allowed: CommitMode.allCases.map(\.rawValue)) {
            filesystem.commit = CommitMode(rawValue: c) ?? .direct
        }
        if filesystem.commit != .direct && filesystem.workspace == .readOnly {
            fs.error("commit", "expected \"direct\" with workspace = \"read-only\" (a read-only workspace has nothing to commit), found \"\(filesystem.commit.rawValue)\"")
        }
    }

    /// `writable_direct = ["target", …]`, `max_undo_bytes = "256M"` at a lane's top level.
    static func parseLane(_ root: TableReader, into lane: inout Lane) {
        if let dirs = root.strings("writable_direct") {
            for d in dirs where !isWorkspaceRelative(d) {
                root.error("writable_direct", "expected a directory inside the workspace (relative, no `.` or `..`), found \"\(d)\"")
            }
            lane.writableDirect = dirs.filter(isWorkspaceRelative)
        }
        if let v = root.quantity("max_undo_bytes", units: Units.bytes, what: "a size") {
            if v < 0 || v != v.rounded() { root.error("max_undo_bytes", "expected a whole size ≥ 0, found \(v)") } else { lane.maxUndoBytes = UInt64(v) }
        }
    }

    /// A relative path with no empty, `.` or `..` component.
    static func isWorkspaceRelative(_ p: String) -> Bool {
        !p.isEmpty && !p.hasPrefix("/") && !p.split(separator: "/", omittingEmptySubsequences: false).contains { $0.isEmpty || $0 == "." || $0 == ".." }
    }
}
