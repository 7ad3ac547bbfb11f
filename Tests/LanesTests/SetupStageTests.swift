import CLaneSys
import Foundation
import LanePlan
import LaneTestSupport
import Testing

/// Issue 9 item 4: one set-up stage list (`CLaneSys/include/lane_stages.h`) for the C core,
/// lane-init and the supervisor, so a 125 names the same stage whichever layer failed.
@Suite("Set-up stages")
struct SetupStageTests {
    static let headerPath = LanesCLI.packageRoot.appendingPathComponent("Sources/CLaneSys/include/lane_stages.h").path

    /// The `X(IDENTIFIER, NUMBER, "name")` lines of the header, read as text.
    static func headerStages() throws -> [(code: Int32, name: String)] {
        let text = try String(contentsOfFile: headerPath, encoding: .utf8)
        let pattern = try NSRegularExpression(pattern: #"X\((LANE_STAGE_\w+), (\d+), "([^"]+)"\)"#)
        return pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { m in
            guard let code = Range(m.range(at: 2), in: text).flatMap({ Int32(text[$0]) }),
                  let name = Range(m.range(at: 3), in: text).map({ String(text[$0]) }) else { return nil }
            return (code, name)
        }
    }

    @Test("the names Swift sees are exactly the header's list, each number and name once")
    func namesComeFromTheHeader() throws {
        let header = try Self.headerStages()
        #expect(header.count > 30, "the header's list was not found in \(Self.headerPath)")
        let swift = SetupStage.all
        #expect(swift.map(\.code) == header.map(\.code))
        #expect(swift.map(\.name) == header.map(\.name))
        #expect(Set(header.map(\.name)).count == header.count, "two stages share a name")
        #expect(Int32(LANE_STAGE_MAX) == header.map(\.code).max())
        // The constants Swift imports are the same numbers (spot checks across the layers).
        #expect(SetupStage(LANE_STAGE_SPAWN).name == "spawn")
        #expect(SetupStage(LANE_STAGE_BIND).name == "bind")
        #expect(SetupStage(LANE_STAGE_NONDUMPABLE).name == "nondumpable init")
        #expect(SetupStage(code: 0) == nil && SetupStage(code: 9999) == nil)
    }

    @Test("lane-init and the spawner name no stage by a string of their own")
    func noPrivateStageNames() throws {
        let root = LanesCLI.packageRoot.appendingPathComponent("Sources").path
        var offenders: [String] = []
        for file in ["LaneInit/Support.swift", "LaneInit/SandboxFilesystem.swift", "LaneInit/InitLoop.swift",
                     "LaneInit/ToolLauncher.swift", "LaneInit/main.swift", "LaneSupervisor/Spawner.swift"] {
            let text = try String(contentsOfFile: root + "/" + file, encoding: .utf8)
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where line.contains("SetupFailure(\"") || line.contains("stage: \"") || line.contains("InitReport(kind: .setupFailed, errno: errno, stage: \"") {
                offenders.append("\(file):\(n + 1): \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        #expect(offenders.isEmpty, "stages named outside lane_stages.h:\n\(offenders.joined(separator: "\n"))")
    }

    /// A configuration directory with one lane `t` on profile `t`, whose `[filesystem]` and
    /// `[limits]` sections are given.
    static func config(profile: String) throws -> String {
        let dir = try LanesCLI.temporaryDirectory("lanes-stage")
        try FileManager.default.createDirectory(atPath: dir + "/Profiles", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/Lanes", withIntermediateDirectories: true)
        try ("description = \"stage test\"\n" + profile).write(toFile: dir + "/Profiles/t.toml", atomically: true, encoding: .utf8)
        try "description = \"stage test\"\nowner = \"tests\"\nprofile = \"t\"\n".write(toFile: dir + "/Lanes/t.toml", atomically: true, encoding: .utf8)
        return dir
    }

    @Test("a failing stage reports its name from the list, whichever layer failed",
          arguments: [
            // lane-init cannot bind a path that does not exist (SandboxFilesystem).
            ("[filesystem]\nread_only = [\"/nonexistent-lanes-stage-test\"]\n", LANE_STAGE_BIND, "/nonexistent-lanes-stage-test"),
            // RLIMIT_NOFILE above the kernel's nr_open (1048576 here): setrlimit fails in lane-init.
            ("[limits]\nopen_files = 3000000\n", LANE_STAGE_RLIMITS, "RLIMIT_NOFILE"),
          ])
    func failingStage(profile: String, stage: lane_stage, detail: String) throws {
        if stage == LANE_STAGE_RLIMITS {
            let nrOpen = (try? String(contentsOfFile: "/proc/sys/fs/nr_open", encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
            if nrOpen >= 3_000_000 { print("SKIP rlimit stage: fs.nr_open is \(nrOpen), so 3000000 open files can be set"); return }
        }
        let config = try Self.config(profile: profile)
        // Root and (when this runs as root) an unprivileged uid take different paths through
        // the spawner; both must name the same stage.
        var identities: [LanesCLI.Identity] = [.current]
        if LanesCLI.canDropPrivileges { identities.append(.unprivileged) } else { print("SKIP unprivileged stage run: not root or no setpriv") }
        for identity in identities {
            let ws = try LanesCLI.temporaryDirectory()
            let state = try LanesCLI.temporaryDirectory("lanes-stage-state") + "/state"  // made by lanes, owned by the uid
            let out = try LanesCLI.run(["run", "t", "--workspace", ws, "--", "true"], as: identity, config: config,
                                       environment: ["LANES_STATE": state])
            #expect(out.status == 125, "\(identity): \(out.stderr)")
            let name = SetupStage(stage).name
            #expect(out.stderr.contains("lanes: \(name): \(detail)"), "\(identity): expected the stage '\(name)' from lane_stages.h: \(out.stderr)")
        }
    }
}
