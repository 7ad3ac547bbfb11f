import Foundation
import Glibc
import LaneTestSupport
import Testing

/// Test hosts in a network namespace of the test's own (Probes/egress-fixture.sh): HTTP on :80
/// and :8080, TLS on :443, a pip index and a git repository, reachable from the host at
/// 10.212.ID.2, with names from a private hosts file the test bind-mounts on /etc/hosts in a
/// mount namespace of its own (`unshare -m`), so the supervisor's resolver sees them.
final class EgressFixture {
    let id: Int
    let dir: String
    var address: String { "10.212.\(id).2" }
    static let script = Escape.probeSources.appendingPathComponent("egress-fixture.sh").path
    static let probes = Escape.probeSources.appendingPathComponent("egress-probes.sh").path

    /// Why these tests cannot run here (they need root for `ip netns` and `unshare -m`), or nil.
    static var unavailable: String? {
        if geteuid() != 0 { return "needs root to create network namespaces (ip netns) and a private /etc/hosts (unshare -m)" }
        for tool in ["/usr/bin/unshare", "/usr/bin/curl", "/usr/bin/openssl", "/usr/bin/git", "/usr/bin/python3"] where access(tool, X_OK) != 0 {
            return "needs \(tool)"
        }
        if access("/usr/sbin/ip", X_OK) != 0 && access("/usr/bin/ip", X_OK) != 0 && access("/sbin/ip", X_OK) != 0 { return "needs ip (iproute2)" }
        return nil
    }

    /// `slot` keeps concurrently running tests on different namespaces and subnets.
    init(slot: Int) throws {
        id = Int(getpid() % 40) * 6 + slot + 1
        dir = try LanesCLI.temporaryDirectory("ln12-fixture")
        let up = try Escape.host("/bin/sh", [Self.script, "up", dir, String(id)])
        guard up.status == 0 else {
            down()
            throw FixtureError(description: "egress fixture failed: \(up)")
        }
    }

    func down() {
        _ = try? Escape.host("/bin/sh", [Self.script, "down", dir, String(id)])
        Escape.remove(dir)
    }

    /// A config directory with a proxy-mode profile and a lane `t` that adds the test host's
    /// address to the profile's allow-list (a lane's `[network] allow`).
    func config(extraProfile: String = "", extraLane: String = "") throws -> String {
        let cfg = try LanesCLI.temporaryDirectory("ln12-config")
        try FileManager.default.createDirectory(atPath: cfg + "/Profiles", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: cfg + "/Lanes", withIntermediateDirectories: true)
        try """
        description = "egress test"
        [filesystem]
        workspace = "read-write"
        [network]
        mode = "proxy"
        allow = ["*.ln12.test"]
        deny = ["blocked.ln12.test"]
        \(extraProfile)
        """.write(toFile: cfg + "/Profiles/net.toml", atomically: true, encoding: .utf8)
        try """
        description = "egress test lane"
        owner = "tests"
        profile = "net"
        \(extraLane)
        [network]
        allow = ["\(address)/32"]
        """.write(toFile: cfg + "/Lanes/t.toml", atomically: true, encoding: .utf8)
        return cfg
    }

    /// A workspace with the probe script and the TLS host's certificate.
    func workspace() throws -> String {
        let ws = try LanesCLI.temporaryDirectory("ln12-ws")
        try FileManager.default.copyItem(atPath: Self.probes, toPath: ws + "/egress-probes.sh")
        try FileManager.default.copyItem(atPath: dir + "/tls.pem", toPath: ws + "/tls.pem")
        _ = chmod(ws, 0o777)
        return ws
    }

    /// `lanes run --json` of lane `t` with this fixture's hosts file as /etc/hosts.
    func run(_ identity: LanesCLI.Identity, config: String, workspace: String, _ command: [String], options: [String] = []) throws -> Escape.Ran {
        let drop = identity == .unprivileged ? "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups -- " : ""
        let script = "mount --bind \"$1\" /etc/hosts && shift && exec \(drop)\"$@\""
        var env = Escape.environment(identity)
        env["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        env["HOME"] = "/tmp"
        return try Escape.host("/usr/bin/unshare", ["-m", "/bin/sh", "-c", script, "sh", dir + "/hosts", LanesCLI.lanesPath, "run", "--json",
                                                     "--config", config, "t", "--workspace", workspace] + options + ["--"] + command, environment: env)
    }

    /// The JSON result's `network` object and stdout.
    static func parse(_ ran: Escape.Ran) -> (network: [String: Any], stdout: String)? {
        guard let data = ran.stdout.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let network = object["network"] as? [String: Any] else { return nil }
        return (network, ((object["stdout"] as? String) ?? ""))
    }

    static func entries(_ network: [String: Any], _ key: String) -> [[String: Any]] {
        network[key] as? [[String: Any]] ?? []
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
}

@Suite("Escape: network egress by domain (issue 12)", .serialized)
struct EgressTests {
    @Test("allowed names work with curl, pip, git and Python; everything else fails and is recorded", arguments: Escape.identities)
    func battery(_ identity: LanesCLI.Identity) throws {
        if let why = EgressFixture.unavailable { print("SKIP egress battery: \(why)"); return }
        if Escape.skips(identity) { return }
        let fixture = try EgressFixture(slot: identity == .current ? 0 : 1)
        defer { fixture.down() }
        let cfg = try fixture.config(), ws = try fixture.workspace()
        defer { Escape.remove(cfg); Escape.remove(ws) }

        // Control: from the host, with no sandbox, the test host answers (by address; and the
        // probes below that must fail do work when the protection is off: see `direct_ip`).
        let control = try Escape.host("/usr/bin/curl", ["-sSf", "--noproxy", "*", "http://\(fixture.address)/index.html"])
        #expect(control.status == 0, "the test host must answer from the host: \(control)")

        let ran = try fixture.run(identity, config: cfg, workspace: ws, ["/bin/sh", "./egress-probes.sh", fixture.address])
        guard let (network, stdout) = EgressFixture.parse(ran) else {
            Issue.record("no JSON result with a network record: \(ran)")
            return
        }
        let results = Dictionary(stdout.split(separator: "\n").compactMap { line -> (String, Bool)? in
            let w = line.split(separator: " ")
            guard w.count >= 2, !line.hasPrefix(" "), w[1] == "ok" || w[1] == "failed" else { return nil }
            return (String(w[0]), w[1] == "ok")
        }, uniquingKeysWith: { a, _ in a })
        for name in ["curl_http", "curl_https", "curl_socks", "curl_cidr", "python_urllib", "python_https", "pip", "pip_import", "git_clone", "git_content"] {
            #expect(results[name] == true, "\(name) must work through the proxy:\n\(stdout)")
        }
        for name in ["not_allowed", "denied_subdomain", "wrong_port", "private_name", "metadata_name", "direct_ip",
                     "sni_mismatch", "raw_socket", "dns_udp", "dns_lookup"] {
            #expect(results[name] == false, "\(name) must fail inside the step:\n\(stdout)")
        }
        // Each denial is in the record with the rule that denied it, and on stderr.
        let denied = EgressFixture.entries(network, "denied")
        let expected: [(String, Int, String)] = [
            ("evil.example", 80, "no allow rule in lane t"),
            ("blocked.ln12.test", 80, "deny blocked.ln12.test in lane t"),
            ("web.ln12.test", 8080, "no allow rule in lane t"),
            ("inside.ln12.test", 80, "resolves to private address 10.213."),
            ("metadata.ln12.test", 80, "resolves to cloud metadata address 169.254.169.254"),
            ("tls.ln12.test", 443, "TLS SNI names evil.example, not tls.ln12.test"),
        ]
        for (host, port, rule) in expected {
            let hit = denied.contains { ($0["host"] as? String) == host && ($0["port"] as? Int) == port && (($0["rule"] as? String) ?? "").hasPrefix(rule) }
            #expect(hit, "denied must list \(host):\(port) (\(rule)): \(denied)")
            #expect(ran.stderr.contains("lanes: egress denied: \(host):\(port) (\(rule)"), "stderr must name \(host):\(port): \(ran.stderr)")
        }
        // Allowed connections: host, address, rule, bytes both ways, duration.
        let connections = EgressFixture.entries(network, "connections")
        let web = connections.first { ($0["host"] as? String) == "web.ln12.test" && ($0["via"] as? String) == "http" }
        #expect(web?["address"] as? String == fixture.address && web?["rule"] as? String == "*.ln12.test", "\(connections)")
        #expect((((web?["bytes_in"] as? Int) ?? 0)) > 0 && (((web?["bytes_out"] as? Int) ?? 0)) > 0 && web?["duration_ms"] != nil)
        #expect(connections.contains { ($0["via"] as? String) == "connect" && ($0["host"] as? String) == "tls.ln12.test" })
        #expect(connections.contains { ($0["via"] as? String) == "socks5" })
        #expect(connections.contains { ($0["host"] as? String) == fixture.address && ($0["rule"] as? String) == "\(fixture.address)/32" },
                "the lane's own allow rule (an address) must have let the CIDR probe through: \(connections)")
        // The direct connect never reached the proxy: no record names the address on port 80 as denied.
        #expect(!denied.contains { ($0["host"] as? String) == fixture.address })
    }

    @Test("5,000 connection attempts and a connection cap leave the supervisor's memory bounded and nothing behind")
    func manyConnections() throws {
        if let why = EgressFixture.unavailable { print("SKIP egress flood: \(why)"); return }
        let fixture = try EgressFixture(slot: 2)
        defer { fixture.down() }
        let cfg = try fixture.config(extraProfile: "max_connections = 16"), ws = try fixture.workspace()
        defer { Escape.remove(cfg); Escape.remove(ws) }
        // The supervisor's own peak RSS (ru_maxrss of `lanes`), for `count` denied attempts
        // followed by 64 connections held open at once (the cap is 16).
        func flood(_ count: Int) throws -> (rssKb: Int, network: [String: Any], ran: Escape.Ran) {
            let step = """
            import socket, time
            held = []
            for i in range(64):
                held.append(socket.create_connection(("127.0.0.1", 3128)))
            time.sleep(0.5)
            for s in held:
                s.close()
            time.sleep(0.2)
            answered = 0
            for i in range(\(count)):
                s = socket.create_connection(("127.0.0.1", 3128))
                try:
                    s.sendall(b"CONNECT evil-%d.example:443 HTTP/1.1\\r\\n\\r\\n" % i)
                    answered += s.recv(200).startswith(b"HTTP/1.1 403")
                except OSError:
                    pass
                s.close()
            print("answered", answered)
            print("flood-done")
            """
            try step.write(toFile: ws + "/flood.py", atomically: true, encoding: .utf8)
            let wrapper = """
            import os, subprocess, sys, resource
            p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = p.communicate()
            print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
            sys.stdout.write(out.decode()); sys.stderr.write(err.decode())
            """
            try wrapper.write(toFile: ws + "/rss.py", atomically: true, encoding: .utf8)
            // Under a wrapper that reports the peak RSS of its child, `lanes`.
            let drop = "mount --bind \"$1\" /etc/hosts && shift && exec \"$@\""
            var env = Escape.environment(.current)
            env["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
            let ran = try Escape.host("/usr/bin/unshare", ["-m", "/bin/sh", "-c", drop, "sh", fixture.dir + "/hosts", "/usr/bin/python3", ws + "/rss.py",
                                                      LanesCLI.lanesPath, "run", "--json", "--config", cfg, "t", "--workspace", ws, "--",
                                                      "/usr/bin/python3", "flood.py"], environment: env)
            let rss = Int(ran.stderr.split(separator: "\n").first.map(String.init) ?? "") ?? 0
            return (rss, EgressFixture.parse(ran)?.network ?? [:], ran)
        }
        let small = try flood(50)
        let large = try flood(5000)
        #expect(large.ran.stdout.contains("flood-done"), "\(large.ran)")
        #expect(large.ran.stdout.contains("answered 5000"), "after the held connections closed, every slot was free again: \(large.ran.stdout.prefix(300))")
        #expect(((large.network["attempts"] as? Int) ?? 0) >= 5000, "every attempt is counted: \(large.network["attempts"] ?? "none")")
        #expect(((large.network["denied_count"] as? Int) ?? 0) >= 5000)
        #expect(EgressFixture.entries(large.network, "denied").count <= 1000, "the kept records are capped")
        #expect(((large.network["omitted"] as? Int) ?? 0) > 0)
        let capped = EgressFixture.entries(large.network, "denied").contains { (($0["rule"] as? String) ?? "").hasPrefix("connection limit: 16") }
        #expect(capped, "connections beyond max_connections are refused")
        #expect(large.ran.stderr.contains("more attempts (see the step's network record)"), "denial lines are capped")
        print("egress flood: supervisor peak RSS \(small.rssKb) KiB after 50 attempts, \(large.rssKb) KiB after 5000")
        #expect(small.rssKb > 0 && large.rssKb - small.rssKb < 48 * 1024, "RSS must stay bounded: \(small.rssKb) → \(large.rssKb) KiB")
        // Nothing behind: no process of the step or its relay is left on the host.
        #expect(Escape.hostProcesses(containing: "flood.py").filter { !$0.contains("rss.py") }.isEmpty)
    }

    @Test("max_bytes cuts a step's download; a profile key error names file and line")
    func byteCap() throws {
        if let why = EgressFixture.unavailable { print("SKIP egress byte cap: \(why)"); return }
        let fixture = try EgressFixture(slot: 3)
        defer { fixture.down() }
        let big = fixture.dir + "/www/big.bin"
        #expect(FileManager.default.createFile(atPath: big, contents: Data(count: 4 << 20)))
        let cfg = try fixture.config(extraProfile: "max_bytes = \"1M\""), ws = try fixture.workspace()
        defer { Escape.remove(cfg); Escape.remove(ws) }
        // Control: the same download works without the cap.
        let uncapped = try fixture.config(), control = try fixture.run(.current, config: uncapped, workspace: ws,
                                                                         ["/usr/bin/curl", "-sSf", "-o", "/dev/null", "http://web.ln12.test/big.bin"])
        defer { Escape.remove(uncapped) }
        #expect(control.status == 0, "\(control)")
        let ran = try fixture.run(.current, config: cfg, workspace: ws, ["/usr/bin/curl", "-sSf", "-o", "/dev/null", "http://web.ln12.test/big.bin"])
        #expect(ran.status != 0, "the download must be cut: \(ran)")
        let network = EgressFixture.parse(ran)?.network ?? [:]
        let conn = EgressFixture.entries(network, "connections").first
        let error = (conn?["error"] as? String) ?? ""
        #expect(error.hasPrefix("max_bytes reached"), "\(network)")
        #expect((((network["bytes_in"] as? Int) ?? .max)) < 2 << 20)

        try "description = \"x\"\n[network]\nmode = \"proxy\"\nallow = [\"*.\", \"ok.example:99999\"]\n"
            .write(toFile: cfg + "/Profiles/net.toml", atomically: true, encoding: .utf8)
        let bad = try LanesCLI.run(["check", "--config", cfg], environment: Escape.environment(.current))
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("net.toml:4:") && bad.stderr.contains("*.") && bad.stderr.contains("99999"), "\(bad.stderr)")
    }

    @Test("halt_on = [\"egress_denied\"] stops the run after a denial; max_egress_bytes halts it")
    func governance() throws {
        if let why = EgressFixture.unavailable { print("SKIP egress governance: \(why)"); return }
        let fixture = try EgressFixture(slot: 4)
        defer { fixture.down() }
        #expect(FileManager.default.createFile(atPath: fixture.dir + "/www/mid.bin", contents: Data(count: 256 << 10)))
        let cfg = try fixture.config(extraLane: "halt_on = [\"egress_denied\"]\n[budget]\nmax_egress_bytes = \"200K\""), ws = try fixture.workspace()
        defer { Escape.remove(cfg); Escape.remove(ws) }
        let run1 = "egress-halt-\(getpid())", run2 = "egress-budget-\(getpid())"
        // An allowed request does not stop the run; a denied one does.
        #expect(try fixture.run(.current, config: cfg, workspace: ws, ["/usr/bin/curl", "-sSf", "http://web.ln12.test/index.html"], options: ["--run", run1]).status == 0)
        let denied = try fixture.run(.current, config: cfg, workspace: ws, ["/usr/bin/curl", "-sSf", "http://evil.example/"], options: ["--run", run1])
        #expect(denied.status != 0 && denied.stderr.contains("lanes: egress denied: evil.example:80"), "\(denied)")
        let next = try fixture.run(.current, config: cfg, workspace: ws, ["/bin/true"], options: ["--run", run1])
        #expect(next.status == 81 && next.stderr.contains("egress_denied"), "the run must be stopped by halt_on: \(next)")
        // 256 KiB through the proxy exhausts a 200K budget: the next step of the run is halted.
        let big = try fixture.run(.current, config: cfg, workspace: ws, ["/usr/bin/curl", "-sSf", "-o", "/dev/null", "http://web.ln12.test/mid.bin"], options: ["--run", run2])
        #expect(big.status == 0, "\(big)")
        let after = try fixture.run(.current, config: cfg, workspace: ws, ["/bin/true"], options: ["--run", run2])
        #expect(after.status == 80 && after.stderr.contains("max_egress_bytes"), "the budget must halt the run: \(after)")
    }
}
