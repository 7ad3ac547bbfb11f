/// How a step's writes to the workspace reach it (`filesystem.commit`, docs/filesystem.md).
public enum CommitMode: String, Sendable, Equatable, CaseIterable {
    /// The workspace is bound; writes land at once (the default).
    case direct
    /// The workspace is an overlay; the change set is applied right after the step.
    case auto
    /// The workspace is an overlay; the change set waits for `lanes apply` or `lanes discard`.
    case review
}

/// What one step changed in the workspace (commit = auto or review), as reported in the step's
/// result (`changes` in `--json`). The full change set, with sizes and hashes, lives in the
/// state directory (`lanes diff RUN STEP --json`).
public struct StepChanges: Sendable, Equatable {
    /// pending, applied, discarded, reverted, conflict (nothing applied) or failed.
    public var state: String
    public var added: [String] = []
    public var modified: [String] = []
    public var deleted: [String] = []
    /// Renames detected from a deletion and an addition with the same content.
    public var renamed: [Rename] = []
    /// Paths whose permission bits changed (content unchanged).
    public var modeChanged: [String] = []
    /// Bytes of file content the change set carries.
    public var bytes: UInt64 = 0
    /// Paths changed in the workspace since the step started (nothing was applied).
    public var conflicts: [String] = []
    /// Entries never applied, with the reason (device node, FIFO, socket, symlink leaving the workspace…).
    public var refused: [String] = []
    /// Paths under `filesystem.protected` that wait for review even under auto.
    public var held: [String] = []
    /// Why computing or applying failed, when it did.
    public var error: String?

    public struct Rename: Sendable, Equatable {
        public var from: String
        public var to: String
        public init(from: String, to: String) { self.from = from; self.to = to }
    }

    public init(state: String) { self.state = state }

    /// The number of paths the change set touches.
    public var count: Int { added.count + modified.count + deleted.count + renamed.count + modeChanged.count }

    public func json() -> JSONValue {
        var o = JSONObject()
        o.add("state", .string(state))
        o.add("added", .array(added.map { .string($0) }))
        o.add("modified", .array(modified.map { .string($0) }))
        o.add("deleted", .array(deleted.map { .string($0) }))
        o.add("renamed", .array(renamed.map { r in
            var e = JSONObject()
            e.add("from", .string(r.from))
            e.add("to", .string(r.to))
            return .object(e)
        }))
        o.add("mode_changed", .array(modeChanged.map { .string($0) }))
        o.add("bytes", .int(Int(clamping: bytes)))
        o.add("conflicts", .array(conflicts.map { .string($0) }))
        o.add("refused", .array(refused.map { .string($0) }))
        o.add("held", .array(held.map { .string($0) }))
        if let error { o.add("error", .string(error)) }
        return .object(o)
    }
}
