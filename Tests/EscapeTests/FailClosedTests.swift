import Foundation
import Glibc
import LaneTestSupport
import Testing

/// Fail closed: when a layer cannot be applied the step is refused with 125 and a message that
/// names the layer. Layers are made unavailable from outside, without a test-only switch in
/// the product: `lanes` runs inside `unshare --user --map-root-user` after lowering
/// `user.max_user_namespaces` in that namespace, or with `LANES_INIT` pointing nowhere.
@Suite("Escape: fail closed")
struct FailClosedTests {
    /// user.max_user_namespaces inside the wrapper namespace, and what must fail then.
    /// 0: lanes' own clone3 with CLONE_NEWUSER fails. 1: lanes' namespace is the last one
    /// allowed, so the tool's own user namespace (made by lane-init) fails.
    static let limits: [(max: Int, stage: String)] = [(0, "spawn"), (1, "tool user namespace")]

    @Test("no user namespace for the sandbox or for the tool: refused with 125", arguments: Escape.identities, [0, 1])
    func userNamespaceUnavailable(_ identity: LanesCLI.Identity, max: Int) throws {
        if Escape.skips(identity) { return }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else {
            print("SKIP: userNamespaceUnavailable: /usr/bin/unshare is missing")
            return
        }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        let run = { (limit: String) in
            try Escape.shell(identity, """
                exec unshare --user --map-root-user sh -c '\(limit)exec "$LANES" run engineering --workspace "\(ws)" -- echo ran'
                """)
        }
        // Control: in the same wrapper, with the limit untouched, the step runs.
        let control = try run("")
        #expect(control.status == 0 && control.stdout == "ran\n", "control: \(control)")

        let step = try run("echo \(max) > /proc/sys/user/max_user_namespaces && ")
        #expect(step.status == 125, "\(step)")
        #expect(!step.stdout.contains("ran"), "the step ran without its user namespace: \(step)")
        let stage = Self.limits.first { $0.max == max }?.stage ?? "?"
        #expect(step.stderr.contains(stage) && step.stderr.contains("namespace"), "the message must name the layer: \(step.stderr)")
    }

    @Test("a missing lane-init helper: refused with 125", arguments: Escape.identities)
    func helperUnavailable(_ identity: LanesCLI.Identity) throws {
        if Escape.skips(identity) { return }
        let ws = try Escape.workspace()
        defer { Escape.remove(ws) }
        let missing = "/nonexistent/lane-init-" + UUID().uuidString.prefix(8)
        let step = try Escape.step(identity, in: ws, ["echo", "ran"], environment: ["LANES_INIT": missing])
        #expect(step.status == 125, "\(step)")
        #expect(!step.stdout.contains("ran"))
        #expect(step.stderr.contains("lane-init") && step.stderr.contains(missing), "the message must name the helper: \(step.stderr)")
    }
}
