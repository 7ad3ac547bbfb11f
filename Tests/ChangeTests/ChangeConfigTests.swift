import LaneConfig
import LaneModel
import Testing

@Suite("commit, protected, writable_direct and max_undo_bytes keys")
struct ChangeConfigTests {
    @Test("a profile's commit and protected parse; wrong values name file, line and what was expected")
    func profileKeys() throws {
        let ok = try ProfileParser().parse(name: "p", file: "p.toml", text: """
            [filesystem]
            workspace = "read-write"
            commit = "review"
            protected = [".git", "secrets/keys"]
            """)
        #expect(ok.filesystem.commit == .review)
        #expect(ok.filesystem.protected == [".git", "secrets/keys"])
        #expect(try ProfileParser().parse(name: "p", file: "p.toml", text: "").filesystem.commit == .direct, "direct stays the default")
        do {
            _ = try ProfileParser().parse(name: "bad", file: "bad.toml", text: """
                [filesystem]
                commit = "sometimes"
                protected = ["/etc", "../up"]
                """)
            Issue.record("expected errors")
        } catch {
            let lines = error.diagnostics.map(\.description)
            #expect(lines.contains { $0.hasPrefix("bad.toml:2:") && $0.contains("direct") && $0.contains("sometimes") }, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("bad.toml:3:") && $0.contains("/etc") }, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("bad.toml:3:") && $0.contains("../up") }, "\(lines)")
        }
        do {
            _ = try ProfileParser().parse(name: "bad", file: "bad.toml", text: "[filesystem]\nworkspace = \"read-only\"\ncommit = \"auto\"\n")
            Issue.record("a read-only workspace has nothing to commit")
        } catch {
            #expect(error.diagnostics.map(\.description).contains { $0.hasPrefix("bad.toml:") && $0.contains("read-only") })
        }
    }

    @Test("a lane's writable_direct and max_undo_bytes parse; bad ones are FILE:LINE errors")
    func laneKeys() throws {
        let head = "description = \"d\"\nowner = \"o\"\nprofile = \"p\"\n"
        let lane = try LaneParser().parse(name: "l", file: "l.toml", text: head + "writable_direct = [\"target\", \".build\"]\nmax_undo_bytes = \"64M\"\n")
        #expect(lane.writableDirect == ["target", ".build"])
        #expect(lane.maxUndoBytes == 64 << 20)
        #expect(try LaneParser().parse(name: "l", file: "l.toml", text: head).maxUndoBytes == 256 << 20)
        do {
            _ = try LaneParser().parse(name: "l", file: "l.toml", text: head + "writable_direct = [\"../out\"]\nmax_undo_bytes = \"lots\"\n")
            Issue.record("expected errors")
        } catch {
            let lines = error.diagnostics.map(\.description)
            #expect(lines.contains { $0.hasPrefix("l.toml:4:") && $0.contains("../out") }, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("l.toml:5:") && $0.contains("lots") }, "\(lines)")
        }
    }
}
