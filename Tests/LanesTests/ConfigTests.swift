import Foundation
import LaneConfig
import LaneModel
@testable import LaneSupervisor
import LaneSys
import Testing

@Suite("Profiles and lanes")
struct ConfigTests {
    let parser = ProfileParser(knownSyscall: SeccompCompiler.isKnown)

    @Test("the shipped profiles and lanes parse", arguments: ["read-only", "workspace-write", "workspace-net"])
    func shippedProfiles(name: String) throws {
        let file = LanesCLIPaths.root + "/Profiles/\(name).toml"
        let profile = try parser.parse(name: name, file: file, text: try String(contentsOfFile: file, encoding: .utf8))
        #expect(profile.name == name)
        #expect(profile.environment["PATH"] != nil)
        _ = try CompiledProfile(profile)
    }

    @Test("shipped lanes name an owner and an existing profile", arguments: ["engineering", "extraction"])
    func shippedLanes(name: String) throws {
        let store = ConfigStore(root: LanesCLIPaths.root, origin: "test")
        let (lane, profile) = try store.load(lane: name, parser: parser)
        #expect(!lane.owner.isEmpty)
        #expect(profile.name == lane.profile)
    }

    @Test("a misspelled key, a wrong type, a relative bind path and a syntax error are four errors with lines")
    func fourErrors() throws {
        let text = """
            description = "bad"
            [filesystem]
            workspace = "read-write"
            read_only = ["etc/ssl"]
            [limits]
            wall_clock = true
            open_file = 10
            """
        do {
            _ = try parser.parse(name: "bad", file: "bad.toml", text: text)
            Issue.record("expected errors")
        } catch {
            let lines = error.diagnostics.map(\.description)
            #expect(lines.contains { $0.hasPrefix("bad.toml:4:") && $0.contains("absolute path") })
            #expect(lines.contains { $0.hasPrefix("bad.toml:6:") && $0.contains("expected a duration") })
            #expect(lines.contains { $0.hasPrefix("bad.toml:7:") && $0.contains("unknown key") && $0.contains("open_files") })
        }
        do {
            _ = try parser.parse(name: "bad", file: "bad.toml", text: "a = [\n")
            Issue.record("expected a syntax error")
        } catch {
            #expect(error.diagnostics.count == 1)
            #expect(error.diagnostics[0].line != nil)
            #expect(error.diagnostics[0].message.contains("syntax"))
        }
    }

    @Test("sizes and durations accept units")
    func units() throws {
        let text = """
            [filesystem]
            tmpfs = { "/tmp" = "64M", "/var/tmp" = 1024 }
            [limits]
            wall_clock = "2m"
            output = "1K"
            kill_grace = "250ms"
            """
        let p = try parser.parse(name: "u", file: "u.toml", text: text)
        #expect(p.limits.wallSeconds == 120)
        #expect(p.limits.outputBytes == 1024)
        #expect(p.limits.killGraceSeconds == 0.25)
        #expect(p.filesystem.tmpfs.contains(.init(path: "/tmp", sizeBytes: 64 << 20)))
        #expect(p.filesystem.tmpfs.contains(.init(path: "/var/tmp", sizeBytes: 1024)))
    }

    @Test("unknown syscalls and never-allowed syscalls are refused")
    func syscalls() throws {
        #expect(throws: ConfigErrors.self) {
            try parser.parse(name: "s", file: "s.toml", text: "[seccomp]\nallow = [\"no_such_call\"]\n")
        }
        // The parser knows the never-list (LaneModel.SeccompRules), so `lanes check` refuses it
        // with FILE:LINE; the compiler still refuses a profile built in code.
        #expect(throws: ConfigErrors.self) {
            try parser.parse(name: "s", file: "s.toml", text: "[seccomp]\nallow = [\"ptrace\"]\n")
        }
        var p = Profile(name: "s")
        p.seccomp.allow = ["ptrace"]
        #expect(throws: LanesError.self) { try CompiledProfile(p) }
    }

    @Test("the network key is a mode, so allow-lists can come later; other modes are refused")
    func networkMode() {
        #expect(throws: ConfigErrors.self) {
            try parser.parse(name: "n", file: "n.toml", text: "[network]\nmode = \"host\"\n")
        }
    }

    @Test("cgroup limits reserved until supported, lanes reject unknown keys")
    func laneStrictness() {
        #expect(throws: ConfigErrors.self) {
            try LaneParser().parse(name: "l", file: "l.toml", text: "description = \"d\"\nowner = \"o\"\nprofile = \"p\"\ncolour = 1\n")
        }
        #expect(throws: ConfigErrors.self) {
            try LaneParser().parse(name: "l", file: "l.toml", text: "description = \"d\"\nprofile = \"p\"\n")
        }
    }

    @Test("the fingerprint changes when the policy changes and only then")
    func fingerprint() throws {
        let a = try CompiledProfile(Profile(name: "a"))
        let b = try CompiledProfile(Profile(name: "b"))
        var changed = Profile(name: "a")
        changed.seccomp.deny = ["chmod"]
        let c = try CompiledProfile(changed)
        #expect(a.fingerprint == b.fingerprint)
        #expect(a.fingerprint != c.fingerprint)
        #expect(a.fingerprint.count == 64)
    }

    @Test("the fingerprint's list text is exactly what interpolating the list printed (recorded fingerprints must not change)",
          arguments: [[], ["a"], ["/usr", "/etc/ssl/certs", "memory"], ["with space", "ünïcode"], ["quote\"d", "back\\slash"],
                      ["tab\there", "new\nline", "\u{7F}del"], ["*.example.com", "10.0.0.0/8:443"]])
    func fingerprintListText(_ names: [String]) {
        #expect(CompiledProfile.listText(names) == "\(names)")
    }
}

enum LanesCLIPaths {
    static var root: String {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        }
        return "."
    }
}

@Suite("Where configuration is found")
struct ConfigLocationTests {
    @Test("--config, then LANES_CONFIG, then ./Profiles+./Lanes, then XDG, then /etc/lanes, then installed")
    func order() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-locate-\(UUID().uuidString)").path
        let cwd = base + "/cwd", xdg = base + "/xdg", installed = base + "/installed"
        for dir in [cwd + "/Profiles", cwd + "/Lanes", xdg + "/lanes/Profiles", installed + "/Profiles"] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        defer { try? FileManager.default.removeItem(atPath: base) }
        let env = { (vars: [String: String]) in { (name: String) in vars[name] } }
        #expect(ConfigStore.locate(explicit: "/x", environment: env(["LANES_CONFIG": "/y"]), cwd: cwd, installed: installed)?.root == "/x")
        #expect(ConfigStore.locate(explicit: nil, environment: env(["LANES_CONFIG": "/y"]), cwd: cwd, installed: installed)?.root == "/y")
        #expect(ConfigStore.locate(explicit: nil, environment: env(["XDG_CONFIG_HOME": xdg]), cwd: cwd, installed: installed)?.root == cwd)
        #expect(ConfigStore.locate(explicit: nil, environment: env(["XDG_CONFIG_HOME": xdg]), cwd: base, installed: installed)?.root == xdg + "/lanes")
        let fallback = ConfigStore.locate(explicit: nil, environment: env([:]), cwd: base, installed: installed)?.root
        #expect(fallback == "/etc/lanes" || fallback == installed)
    }
}
