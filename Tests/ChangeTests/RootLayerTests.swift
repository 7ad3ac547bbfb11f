import Foundation
import Glibc
import LaneTestSupport
import Testing

/// `lanes` as root under commit = auto: the step runs as an unprivileged identity (issue 10) that
/// cannot reach the root-only state directory or the workspace's parent, so the overlay's layers
/// are handed over as mount trees (docs/filesystem.md, "As root"). Both identities: a root-owned
/// workspace (id-mapped layers) and a user-owned one (layers chowned to the user).
@Suite("Root: overlay layers as mount trees")
struct RootLayerTests {
    /// The workspace's owner: root (id-mapped trees) or uid/gid 1000 (plain trees).
    static let owners: [UInt32] = [0, 1000]

    @Test("the step writes and deletes through the overlay; files land with the workspace's owner; the layers are not visible inside",
          arguments: owners)
    func layersAsTrees(owner: UInt32) throws {
        guard geteuid() == 0 else {
            print("SKIP: RootLayerTests: needs root (the layers are handed over as trees only when lanes runs as root)")
            return
        }
        if let why = sandboxUnavailable(.current) {
            print("SKIP: RootLayerTests: \(why)")
            return
        }
        let f = try SandboxFixture(.current)
        defer { f.cleanup() }
        // The workspace's parent is root's and closed: the step's identity cannot traverse it,
        // nor the state directory (created 0700 by lanes) beside it.
        chmod(f.root, 0o700)
        try f.write("gone.txt", "old\n")
        if owner != 0 {
            chown(f.workspace, owner, owner)
            chown(f.workspace + "/gone.txt", owner, owner)
        }
        // The probe lists the mount points the step sees: the workspace must be among them
        // (the probe works), and no layer mount may be.
        let out = try f.step("auto", run: "rl\(owner)", json: true, """
            echo hi > new.txt && rm gone.txt && mkdir d && echo x > d/f &&
            awk '{print "MP " $5}' /proc/self/mountinfo && ls -a / | sed 's/^/ROOT /'
            """)
        #expect(out.status == 0, "\(out.stderr)")
        let result = (try? JSONSerialization.jsonObject(with: Data((out.stdout.split(separator: "\n").last ?? "").utf8))) as? [String: Any]
        let lines = ((result?["stdout"] as? String) ?? "").split(separator: "\n").map(String.init)
        let mountPoints = lines.filter { $0.hasPrefix("MP ") }
        #expect(mountPoints.contains("MP " + f.workspace), "the probe did not see the workspace mount: \(mountPoints)")
        #expect(!mountPoints.contains { $0.contains("lane-overlay") || $0.contains("/state") }, "\(mountPoints)")
        #expect(!lines.contains { $0.hasPrefix("ROOT .lane") }, "\(lines)")
        let identity = result?["host_identity"] as? String
        #expect(identity != nil && identity != "0:0", "host_identity \(identity ?? "nil")")
        if owner != 0 { #expect(identity == "\(owner):\(owner)") }
        #expect(SandboxFixture.changes(out)?["state"] as? String == "applied", "\(out.stdout)")
        #expect(f.read("new.txt") == "hi\n" && f.read("d/f") == "x\n" && !f.exists("gone.txt"))
        for path in ["new.txt", "d", "d/f"] {
            var st = stat()
            #expect(lstat(f.workspace + "/" + path, &st) == 0 && st.st_uid == owner && st.st_gid == owner, "\(path): \(st.st_uid):\(st.st_gid)")
        }
        // The step's directory is closed again once the step is over.
        var st = stat()
        #expect(stat(f.state + "/changes/rl\(owner)/1", &st) == 0 && st.st_mode & 0o777 == 0o700, "mode \(String(st.st_mode & 0o777, radix: 8))")
    }
}
