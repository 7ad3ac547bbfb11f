import Foundation
import Glibc
import LaneChanges
import LaneModel
import LaneTestSupport

/// A workspace, a state directory and a real overlay (mounted in a throwaway user and mount
/// namespace by `unshare`, the way lane-init mounts it) to produce upper directories.
struct ChangeFixture {
    let root: String
    let workspace: String
    let state: String
    var store: ChangeStore { ChangeStore(stateDirectory: state) }

    init() throws {
        root = try LanesCLI.temporaryDirectory("lanes-changes")
        workspace = root + "/ws"
        state = root + "/state"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
    }

    /// Whether overlay mounts in a user namespace work here (printed when not).
    static var overlayAvailable: Bool {
        let out = try? LanesCLI.execute("/usr/bin/unshare", ["-Urm", "true"])
        if out?.status != 0 { print("ChangeTests: skipped: unshare -Urm fails here (\(out?.stderr ?? "no unshare"))") }
        return out?.status == 0
    }

    func write(_ path: String, _ text: String, mode: Int = 0o644) throws {
        let full = workspace + "/" + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: false, encoding: .utf8)
        chmod(full, mode_t(mode))
    }

    func read(_ path: String) -> String? { try? String(contentsOfFile: workspace + "/" + path, encoding: .utf8) }

    /// Runs `script` (sh) with the workspace overlaid, as a step would; returns the pending set.
    func step(_ name: String, _ script: String, run: String = "r1", startedNs: Int64? = nil) throws -> ChangeSet {
        // The start is taken 10 ms early (ChangeEngine.realtimeNs): setup writes just made by the
        // test would count as concurrent changes.
        if startedNs == nil { usleep(25_000) }
        var set = ChangeSet(run: run, step: name, lane: "test", workspace: workspace, commit: "review",
                            startedNs: startedNs ?? ChangeEngine.realtimeNs(), protected: [], writableDirect: [], maxUndoBytes: 1 << 30)
        let (upper, work) = try store.prepare(set)
        let mount = "mount -t overlay overlay -o lowerdir=\(workspace),upperdir=\(upper),workdir=\(work),userxattr \(workspace)"
        let out = try LanesCLI.execute("/usr/bin/unshare", ["-Urm", "sh", "-c", "\(mount) && cd \(workspace) && \(script)"])
        guard out.status == 0 else { throw FixtureError("step failed: \(out.stderr)") }
        try ChangeEngine.compute(&set, store: store)
        return set
    }

    /// A digest of the workspace tree (names, types, modes, contents, link targets).
    func treeDigest() throws -> String {
        let out = try LanesCLI.execute("/bin/sh", ["-c", "cd \(workspace) && find . -printf '%p %y %m %l\\n' | sort && find . -type f -print0 | sort -z | xargs -0r sha256sum"])
        return out.stdout
    }

    func cleanup() { _ = try? LanesCLI.execute("/bin/rm", ["-rf", root]) }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
