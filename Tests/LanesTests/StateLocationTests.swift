import LaneConfig
import LaneModel
import Testing

/// Where the state directory goes (issue 11: a user without a writable home got 125).
@Suite("state location")
struct StateLocationTests {
    typealias Facts = StateLocation.PathFacts
    static func dir(_ owner: UInt32, _ mode: UInt32) -> Facts { Facts(isDirectory: true, owner: owner, mode: mode) }

    func host(_ env: [String: String], uid: UInt32 = 1000, paths: [String: Facts] = ["/": Self.dir(0, 0o755)],
              writable: Set<String> = []) -> StateLocation.Host {
        StateLocation.Host(environment: env, uid: uid, facts: { paths[$0] }, writable: { writable.contains($0) })
    }

    func resolve(_ h: StateLocation.Host, explicit: String? = nil) -> StateLocation.Choice? {
        try? StateLocation.resolve(explicit: explicit, host: h).get()
    }

    @Test("explicit, LANES_STATE, XDG_STATE_HOME, root, a usable HOME: in that order, no notice")
    func order() {
        let env = ["LANES_STATE": "/s", "XDG_STATE_HOME": "/x", "HOME": "/home/u"]
        #expect(resolve(host(env), explicit: "/e")?.path == "/e")
        #expect(resolve(host(env))?.path == "/s")
        #expect(resolve(host(["XDG_STATE_HOME": "/x", "HOME": "/home/u"]))?.path == "/x/lanes")
        #expect(resolve(host(["XDG_STATE_HOME": "relative", "HOME": "/h"], uid: 0))?.path == "/var/lib/lanes")
        let home = host(["HOME": "/home/u"], paths: ["/": Self.dir(0, 0o755), "/home": Self.dir(0, 0o755), "/home/u": Self.dir(1000, 0o700)],
                        writable: ["/home/u"])
        let choice = resolve(home)
        #expect(choice?.path == "/home/u/.local/state/lanes")
        #expect(choice?.notice == nil)
    }

    @Test("no home: /run/user/UID when it is the user's, else /var/tmp/lanes-UID, with a notice")
    func fallbacks() {
        let runtime = host(["HOME": "/nonexistent"], uid: 65534,
                           paths: ["/": Self.dir(0, 0o755), "/run/user/65534": Self.dir(65534, 0o700)])
        #expect(resolve(runtime)?.path == "/run/user/65534/lanes")
        #expect(resolve(runtime)?.notice?.contains("HOME (/nonexistent) does not exist") == true)
        let foreignRuntime = host(["HOME": "/nonexistent"], uid: 65534,
                                  paths: ["/": Self.dir(0, 0o755), "/run/user/65534": Self.dir(0, 0o700)])
        let shared = resolve(foreignRuntime)
        #expect(shared?.path == "/var/tmp/lanes-65534")
        #expect(shared?.mustVerifyOwnership == true)
        #expect(shared?.notice?.contains("/var/tmp/lanes-65534") == true)
        // A HOME that exists but cannot be written (e.g. "/").
        #expect(resolve(host(["HOME": "/"], uid: 5))?.path == "/var/tmp/lanes-5")
        #expect(resolve(host([:], uid: 5))?.notice?.contains("HOME is not set") == true)
    }

    @Test("a /var/tmp/lanes-UID of someone else, or open to others, is refused")
    func sharedOwnership() {
        let taken = host(["HOME": "/nonexistent"], uid: 7, paths: ["/": Self.dir(0, 0o755), "/var/tmp/lanes-7": Self.dir(8, 0o700)])
        #expect(throws: InputError.self) { try StateLocation.resolve(explicit: nil, host: taken).get() }
        let open = host(["HOME": "/nonexistent"], uid: 7, paths: ["/": Self.dir(0, 0o755), "/var/tmp/lanes-7": Self.dir(7, 0o777)])
        #expect(throws: InputError.self) { try StateLocation.resolve(explicit: nil, host: open).get() }
        let mine = host(["HOME": "/nonexistent"], uid: 7, paths: ["/": Self.dir(0, 0o755), "/var/tmp/lanes-7": Self.dir(7, 0o700)])
        #expect(resolve(mine)?.path == "/var/tmp/lanes-7")
    }
}
