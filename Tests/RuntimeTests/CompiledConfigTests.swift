import Foundation
import LaneConfig
@testable import LaneRuntime
import LaneModel
import LanePlan
import LaneSupervisor
import LaneTestSupport
import Testing

/// The compiled configuration cache (issue 13, the cold path): an entry is used only while it
/// matches the files byte for byte and the binary that wrote it; everything else parses again.
@Suite("Compiled configuration cache")
struct CompiledConfigTests {
    static func rule(_ text: String) -> EgressRule {
        guard case let .success(rule) = EgressRule.parse(text) else { fatalError("bad rule \(text)") }
        return rule
    }

    /// A lane and a profile with every stored property away from its default.
    static var everyField: (Lane, Profile) {
        var lane = Lane(name: "all", description: "every field", owner: "tests", profile: "custom",
                        workspace: "/srv/ws", writable: ["out"], retry: .safe,
                        credentials: [Lane.Credential(name: "A", source: .secret("a"), delivery: .env),
                                      Lane.Credential(name: "B", source: .environment("B_VAR"), delivery: .file),
                                      Lane.Credential(name: "C", source: .file("/etc/c"), delivery: .env)])
        lane.socketGroup = "agents"
        lane.review = Lane.Review(commands: ["git push *"], effects: ["irreversible"], credentials: ["A*"],
                                  inDoubt: true, timeoutSeconds: 90.5)
        lane.budget = Lane.Budget(limits: ["max_steps": 10, "max_wall": 2.5])
        lane.unprotected = [".git/hooks": "reason"]
        lane.haltOn = ["failed"]
        lane.writableDirect = ["logs"]
        lane.maxUndoBytes = 1 << 20
        lane.networkAllow = [rule("*.example.com"), rule("10.0.0.0/8:8080")]
        var fs = Profile.Filesystem(workspace: .readOnly, readOnly: ["/opt"], readWrite: ["/var/cache/x"],
                                    tmpfs: [Profile.Tmpfs(path: "/scratch", sizeBytes: 1 << 24)], protected: [".env"])
        fs.commit = .auto
        let profile = Profile(
            name: "custom", description: "a profile", filesystem: fs,
            network: Profile.Network(mode: .proxy, allow: [rule("pypi.org")], deny: [rule("[::1]:22")],
                                     maxConnections: 7, maxBytes: 1000),
            seccomp: Profile.Seccomp(defaultAction: .kill, allow: ["read", "write"], deny: ["ptrace"]),
            limits: Profile.Limits(wallSeconds: 5, cpuSeconds: 6, openFiles: 70, fileSizeBytes: 8, processes: 9,
                                   outputBytes: 10, killGraceSeconds: 1.5, memoryBytes: 12, pids: 13, cpuFraction: 0.5,
                                   optional: ["memory"]),
            environment: ["ONLY": "this"])
        return (lane, profile)
    }

    /// Paths of the stored properties of `value` equal to the same property of `defaults`
    /// (structs are walked; anything else is compared by its description).
    static func unchanged(_ value: Any, _ defaults: Any, path: String = "") -> [String] {
        let a = Mirror(reflecting: value), b = Mirror(reflecting: defaults)
        guard a.displayStyle == .struct else {
            return String(describing: value) == String(describing: defaults) ? [path] : []
        }
        return zip(a.children, b.children).flatMap { x, y in
            unchanged(x.value, y.value, path: path + "." + (x.label ?? "?"))
        }
    }

    @Test("every stored property of a lane and a profile survives the codec (a new field fails here)")
    func roundTrip() throws {
        let (lane, profile) = Self.everyField
        // The fixture must set every field, or a field the codec forgets would pass unnoticed.
        #expect(Self.unchanged(lane, Lane(name: "", description: "", owner: "", profile: "")) == [])
        #expect(Self.unchanged(profile, Profile(name: "")) == [])
        var w = ByteWriter()
        ConfigCodec.encode(lane, profile, into: &w)
        var r = ByteReader(input: w.out)
        let (lane2, profile2) = try ConfigCodec.decode(&r)
        #expect(lane2 == lane)
        #expect(profile2 == profile)
        #expect(r.atEnd)
        // Every cut of the bytes is refused, never read as a shorter configuration.
        for n in stride(from: 0, to: w.out.count, by: 7) {
            var cut = ByteReader(input: Array(w.out.prefix(n)))
            #expect(throws: PlanDecodingError.self) { _ = try ConfigCodec.decode(&cut) }
        }
    }

    /// A configuration directory with one lane on the real workspace-write profile.
    struct World {
        let root: String
        var store: ConfigStore { ConfigStore(root: root + "/config", origin: "test") }
        var laneFile: String { root + "/config/Lanes/cc.toml" }
        var profileFile: String { root + "/config/Profiles/workspace-write.toml" }
        var cacheDirectory: String { root + "/state/config-cache" }

        init() throws {
            root = try LanesCLI.temporaryDirectory("compiled-config")
            try FileManager.default.createDirectory(atPath: root + "/config/Lanes", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: root + "/state", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: LanesCLI.packageRoot.path + "/Profiles", toPath: root + "/config/Profiles")
            try writeLane(review: "deploy *")
        }

        func writeLane(review: String) throws {
            try "description = \"cache\"\nowner = \"tests\"\nprofile = \"workspace-write\"\n[review]\ncommands = [\"\(review)\"]\n"
                .write(toFile: laneFile, atomically: true, encoding: .utf8)
        }

        /// A new process's first load: a fresh in-memory cache over the same files and state.
        func load(identity: String = "binary-1") throws -> (Lane, CompiledProfile) {
            let file = CompiledConfigFile(directory: cacheDirectory, identity: identity)
            let cache = ConfigCache(store: store, policyCache: PolicyCache(directory: root + "/state/policy-cache"), compiledFile: file)
            return try cache.load(lane: "cc")
        }

        func entries() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: cacheDirectory)) ?? []).filter { $0.hasSuffix(".bin") }.sorted()
        }

        /// Replaces the entry of `identity` with one whose lane says `description`, for the files
        /// as they are: a load that returns it read the entry.
        func plant(description: String, identity: String = "binary-1") throws {
            var (lane, compiled) = try load(identity: identity)
            lane.description = description
            CompiledConfigFile(directory: cacheDirectory, identity: identity).store(
                lane: lane, compiled: compiled, laneText: Array(try String(contentsOfFile: laneFile, encoding: .utf8).utf8),
                profileText: Array(try String(contentsOfFile: profileFile, encoding: .utf8).utf8), store: store)
        }
    }

    @Test("an entry is written by a parse, used while the files are unchanged, and gives what parsing gives")
    func hitAndMiss() throws {
        let w = try World()
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        let (parsed, compiled) = try w.load()
        #expect(w.entries().count == 1)
        let (cachedLane, cachedCompiled) = try w.load()
        #expect(cachedLane == parsed)
        #expect(cachedCompiled.profile == compiled.profile)
        #expect(cachedCompiled.seccompFilter == compiled.seccompFilter)
        #expect(cachedCompiled.fingerprint == compiled.fingerprint)
        #expect(cachedCompiled.rlimits == compiled.rlimits)
        // A hit really reads the entry.
        try w.plant(description: "planted")
        #expect(try w.load().0.description == "planted")
        // Another binary (a rebuilt lanes, or lanes-mcp) never reads this binary's entry.
        #expect(try w.load(identity: "binary-2").0.description == "cache")
    }

    @Test("a changed lane or profile file is parsed again, even with the same size and modification time")
    func changedFiles() throws {
        let w = try World()
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        _ = try w.load()
        try w.plant(description: "planted")
        // Same length, same mtime: only the content tells (an identity-keyed cache would miss it).
        let attributes = try FileManager.default.attributesOfItem(atPath: w.laneFile)
        try w.writeLane(review: "deploy ?")  // the same length as "deploy *"
        try FileManager.default.setAttributes([.modificationDate: attributes[.modificationDate]!], ofItemAtPath: w.laneFile)
        let (lane, _) = try w.load()
        #expect(lane.description == "cache" && lane.review.commands == ["deploy ?"])
        // The profile: one more denied syscall changes the program and the fingerprint.
        let before = try w.load().1
        try w.plant(description: "planted")
        var text = try String(contentsOfFile: w.profileFile, encoding: .utf8)
        text = text.replacingOccurrences(of: "default_action = \"errno\"", with: "default_action = \"kill\"")
        try text.write(toFile: w.profileFile, atomically: true, encoding: .utf8)
        let (lane2, after) = try w.load()
        #expect(lane2.description == "cache")
        #expect(after.profile.seccomp.defaultAction == .kill)
        #expect(after.fingerprint != before.fingerprint)
    }

    @Test("a damaged entry is ignored and replaced; a file that does not parse is an error, never a cached result")
    func damagedAndInvalid() throws {
        let w = try World()
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        let (good, _) = try w.load()
        let path = w.cacheDirectory + "/" + w.entries()[0]
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for damaged in [bytes.prefix(bytes.count - 3), bytes + Data([0]), Data([0x31, 0x43]) + bytes.dropFirst(2), Data()] {
            try damaged.write(to: URL(fileURLWithPath: path))
            #expect(try w.load().0 == good)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)  // written again
        }
        // A lane file that no longer parses: the parser's FILE:LINE error, not the old entry.
        try "description = \"cache\"\nowner = \"tests\"\nprofile = \"workspace-write\"\nbogus = 1\n"
            .write(toFile: w.laneFile, atomically: true, encoding: .utf8)
        #expect { _ = try w.load() } throws: { error in
            "\(error)".contains(w.laneFile) && "\(error)".contains("bogus")
        }
        #expect(w.entries().count == 1)
        // A name that is not a safe file name never reaches the cache directory.
        let file = CompiledConfigFile(directory: w.cacheDirectory, identity: "binary-1")
        let escaped = file.load(lane: "../cc", store: w.store) != nil
        #expect(!escaped)
    }

    @Test("lanes run: a later one-shot reads the entry, and an edited profile takes effect on the next step")
    func oneShots() throws {
        let w = try World()
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        let workspace = w.root + "/ws"
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        func lang() throws -> String {
            let out = try LanesCLI.run(["run", "cc", "--state", w.root + "/state", "--workspace", workspace, "--",
                                        "/usr/bin/printenv", "LANG"], config: w.root + "/config")
            #expect(out.status == 0, "\(out.stderr)")
            return out.stdout
        }
        #expect(try lang() == "C.UTF-8\n")
        #expect(w.entries().count == 1)
        let entry = try Data(contentsOf: URL(fileURLWithPath: w.cacheDirectory + "/" + w.entries()[0]))
        #expect(try lang() == "C.UTF-8\n")
        #expect(try Data(contentsOf: URL(fileURLWithPath: w.cacheDirectory + "/" + w.entries()[0])) == entry)
        let text = try String(contentsOfFile: w.profileFile, encoding: .utf8)
        try text.replacingOccurrences(of: "LANG = \"C.UTF-8\"", with: "LANG = \"C.utf8\"")
            .write(toFile: w.profileFile, atomically: true, encoding: .utf8)
        #expect(try lang() == "C.utf8\n")
    }
}
