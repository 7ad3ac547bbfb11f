import CLaneSys
import Glibc
import LaneChanges
import LaneModel
import LaneSyscall

/// Where a step's change set lives: the state directory and the step's journal identity.
public struct ChangeStaging: Sendable {
    public var stateDirectory: String
    public var run: String
    public var step: String
    public init(stateDirectory: String, run: String, step: String) {
        self.stateDirectory = stateDirectory
        self.run = run
        self.step = step
    }
}

/// The step's side of filesystem.commit = auto | review (docs/filesystem.md): checks that an
/// overlay can be mounted (or refuses the step, 125), prepares the upper directory before the
/// spawn, and computes (and under auto applies) the change set after the step.
public enum WorkspaceChanges {
    struct Staged {
        var set: ChangeSet
        var store: ChangeStore
        var upper: String
        var work: String
    }

    /// nil under commit = direct. Throws (the step does not run) when the overlay cannot be had.
    static func prepare(_ request: StepRequest) throws(LanesError) -> Staged? {
        let fs = request.profile.filesystem
        guard fs.commit != .direct else { return nil }
        let mode = fs.commit.rawValue
        guard let staging = request.changeStaging else {
            throw LanesError(.unsupported, stage: "overlay", "filesystem.commit = \"\(mode)\" needs a journaled step (its change set is kept in the state directory)")
        }
        if let reason = overlayUnavailableReason() {
            throw LanesError(.unsupported, stage: "overlay", "filesystem.commit = \"\(mode)\" cannot be honoured: \(reason)")
        }
        let store = ChangeStore(stateDirectory: staging.stateDirectory)
        for (what, path) in [("workspace", request.workspace), ("state directory", staging.stateDirectory)]
        where path.contains(where: { $0 == "," || $0 == ":" || $0 == "\\" }) {
            throw LanesError(.unsupported, stage: "overlay", "the \(what) path \(path) holds `,`, `:` or `\\`, which overlay mount options cannot carry; use commit = \"direct\" or another path")
        }
        if SandboxLayout.isInside(staging.stateDirectory, request.workspace) || SandboxLayout.isInside(request.workspace, staging.stateDirectory) {
            throw LanesError(.unsupported, stage: "overlay", "the state directory \(staging.stateDirectory) and the workspace \(request.workspace) overlap; an overlay's upper directory cannot lie in its lower one (use --state elsewhere)")
        }
        settleOwnChanges(request)
        let set = ChangeSet(run: staging.run, step: staging.step, lane: request.lane.name, workspace: request.workspace,
                            commit: mode, startedNs: ChangeEngine.realtimeNs(), protected: fs.protected,
                            writableDirect: request.lane.writableDirect, maxUndoBytes: request.lane.maxUndoBytes)
        let (upper, work) = try store.prepare(set)
        // The overlay's root takes the upper directory's mode: make it the workspace's, so the
        // step sees its workspace as it is (the step directory around it stays 0700).
        var st = stat()
        if stat(request.workspace, &st) == 0 { chmod(upper, st.st_mode & 0o1777) }
        return Staged(set: set, store: store, upper: upper, work: work)
    }

    /// A root `lanes` hands the overlay's layers to the step as mount trees (`SandboxLayout.trees`),
    /// since its identity cannot reach the state directory by path. Id-mapped with the workspace,
    /// root-owned layers already belong to that identity. Otherwise the identity must own the upper
    /// and work directories to write them, and traverse the step directory (0711: search only;
    /// the run directory above stays 0700, so no other host user reaches it; `finish` makes it
    /// 0700 again).
    static func handOver(_ staged: Staged, to identity: StepIdentity) throws(LanesError) {
        let layers = SandboxLayout.overlayLayers(upper: staged.upper, work: staged.work)
        guard !layers.upper.isEmpty, !layers.upper.contains("/"), !layers.work.isEmpty, !layers.work.contains("/"),
              staged.work == layers.directory + "/" + layers.work else {
            throw Spawner.failure(LANE_STAGE_OVERLAY_OWNER, errno: EINVAL, "\(staged.upper) and \(staged.work) are not in one directory")
        }
        guard !identity.idmapWorkspace else { return }
        for path in [staged.upper, staged.work] where lchown(path, identity.uid, identity.gid) != 0 {
            let err = errno
            throw Spawner.failure(LANE_STAGE_OVERLAY_OWNER, errno: err, "chown \(path): \(Errno(rawValue: err).reason)")
        }
        if chmod(layers.directory, 0o711) != 0 {
            let err = errno
            throw Spawner.failure(LANE_STAGE_OVERLAY_OWNER, errno: err, "chmod \(layers.directory): \(Errno(rawValue: err).reason)")
        }
    }

    /// After the step: the change set, applied under auto; one stderr line when it waits.
    static func finish(_ staged: inout Staged, request: StepRequest) -> StepChanges {
        // The step is over: its directory goes back to 0700 (`handOver` may have opened it to search).
        _ = chmod(SandboxLayout.overlayLayers(upper: staged.upper, work: staged.work).directory, 0o700)
        let summary = ChangeEngine.finishStep(&staged.set, store: staged.store, auto: staged.set.commit == CommitMode.auto.rawValue)
        let id = "\(staged.set.run) \(staged.set.step)"
        var line: String?
        if let error = summary.error {
            line = "lanes: the step's workspace changes could not be \(summary.state == "pending" ? "computed" : "applied"): \(error); they wait (lanes diff \(id))"
        } else if summary.state == "conflict" {
            line = "lanes: the step's workspace changes conflict with changes made meanwhile (\(summary.conflicts.prefix(3).joined(separator: ", "))); nothing applied (lanes diff \(id); lanes discard \(id) --by NAME)"
        } else if summary.state == "pending" && summary.count > 0 {
            let why = summary.held.isEmpty ? "review" : "review (protected: \(summary.held.prefix(3).joined(separator: ", ")))"
            line = "lanes: \(summary.count) workspace change\(summary.count == 1 ? "" : "s") pending \(why): lanes diff \(id); lanes apply|discard \(id) --by NAME"
        }
        if !summary.refused.isEmpty {
            let refused = "lanes: not applied (refused): \(summary.refused.prefix(3).joined(separator: "; "))"
            line = line.map { $0 + "\n" + refused } ?? refused
        }
        if let line { writeLine(line) }
        return summary
    }

    /// The step's start is taken 10 ms early (ChangeEngine.realtimeNs), so the writable and
    /// writable_direct directories Lanes itself just created would make the directories holding
    /// them look changed during the step (a false conflict for paths the step adds there). When
    /// one of those directories changed within the window, wait it out (first step only: later
    /// steps find the directories in place).
    private static func settleOwnChanges(_ request: StepRequest) {
        var dirs = [request.workspace]
        for d in request.lane.writable + request.lane.writableDirect {
            var path = request.workspace
            for part in d.split(separator: "/") {
                path += "/" + part
                dirs.append(path)
            }
        }
        // Wait until every such ctime is before the start the step will record. Loop rather
        // than sleep once: ctimes can be fine-grained (multigrain timestamps) and run ahead of
        // the coarse clock the start is read from by up to a tick. Bounded: 40 × 5 ms.
        func changedWithinWindow() -> Bool {
            let window = ChangeEngine.realtimeNs()
            return dirs.contains { dir in
                var st = stat()
                return lstat(dir, &st) == 0 && Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec) >= window
            }
        }
        var tries = 0
        while tries < 40 && changedWithinWindow() {
            usleep(5_000)
            tries += 1
        }
    }

    /// Why overlay mounts in a user namespace cannot be used here, or nil (`lanes doctor`).
    public static func overlayUnavailableReason() -> String? {
        let fd = open("/proc/filesystems", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "cannot read /proc/filesystems" }
        defer { close(fd) }
        var bytes: [UInt8] = [], buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buf[0..<n]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        if !text.split(separator: "\n").contains(where: { $0.hasSuffix("\toverlay") }) {
            return "the kernel has no overlay filesystem (none in /proc/filesystems)"
        }
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let parts = release.split(separator: ".").prefix(2).map { Int($0.prefix { $0.isNumber }) ?? 0 }
        if parts.count == 2, (parts[0], parts[1]) < (5, 11) {
            return "kernel \(release) cannot mount overlayfs in a user namespace with userxattr (5.11 or later needed)"
        }
        return nil
    }

    private static func writeLine(_ s: String) {
        let bytes = Array((s + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}
