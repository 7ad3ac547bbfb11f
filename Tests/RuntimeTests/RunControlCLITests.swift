import Foundation
import LaneTestSupport
import Testing

/// Run control answers honestly: a run that does not exist is named as such.
@Suite("Run control messages")
struct RunControlCLITests {
    @Test("lanes stop of a run that does not exist says so (exit 1), and writes nothing")
    func stopNoSuchRun() throws {
        let dir = try LanesCLI.temporaryDirectory("stop-nosuch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let env = ["LANES_STATE": dir + "/state"]
        // A journal with one real run, so "nosuch" is looked up in a journal that exists.
        let ran = try LanesCLI.run(["run", "engineering", "--run", "real", "--", "true"], cwd: dir, environment: env)
        #expect(ran.status == 0, "\(ran.stderr)")
        let out = try LanesCLI.run(["stop", "nosuch", "--by", "me", "--reason", "test"], cwd: dir, environment: env)
        #expect(out.status == 1)
        #expect(out.stderr.contains("run nosuch does not exist"), "\(out.stderr)")
        #expect(!out.stderr.contains("conflict") && !out.stderr.contains("still running"), "\(out.stderr)")
        #expect(try LanesCLI.run(["runs"], cwd: dir, environment: env).stdout.contains("nosuch") == false)
    }
}
