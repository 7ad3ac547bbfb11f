import LaneConfig
@testable import LaneEgress
import LaneModel
import Testing

@Suite("Egress policy, request parsing and profile keys (issue 12)")
struct EgressPolicyTests {
    func rule(_ text: String) throws -> EgressRule { try EgressRule.parse(text).get() }

    func policy(allow: [String], deny: [String] = []) throws -> EgressPolicy {
        EgressPolicy(allow: try allow.map(rule), deny: try deny.map(rule), lane: "eng")
    }

    @Test("exact names, *. subdomains (not the apex), ports (default 80 and 443), deny wins")
    func names() throws {
        let p = try policy(allow: ["pypi.org", "*.github.com", "api.example.com:8443"], deny: ["uploads.github.com"])
        #expect(p.decide(host: "pypi.org", port: 443).allowed)
        #expect(p.decide(host: "PyPI.org.", port: 80).allowed)
        #expect(!p.decide(host: "pypi.org", port: 8080).allowed)
        #expect(!p.decide(host: "evil.pypi.org", port: 443).allowed)
        #expect(p.decide(host: "api.github.com", port: 443).rule == "*.github.com")
        #expect(p.decide(host: "a.b.github.com", port: 443).allowed)
        #expect(!p.decide(host: "github.com", port: 443).allowed, "a wildcard is not the apex")
        #expect(!p.decide(host: "evilgithub.com", port: 443).allowed)
        #expect(p.decide(host: "uploads.github.com", port: 443) == .init(allowed: false, rule: "deny uploads.github.com in lane eng"))
        #expect(!p.decide(host: "uploads.github.com", port: 22).allowed, "a deny without a port covers every port")
        #expect(p.decide(host: "api.example.com", port: 8443).allowed)
        #expect(!p.decide(host: "api.example.com", port: 443).allowed)
        #expect(p.decide(host: "other.example", port: 443).rule == "no allow rule in lane eng")
    }

    @Test("IP literals and CIDRs; special addresses refused unless allowed by address")
    func addresses() throws {
        let p = try policy(allow: ["10.1.2.0/24", "203.0.113.7", "[2001:db8::1]:8443", "*.example.com"], deny: ["203.0.113.0/28:22"])
        #expect(p.decide(host: "10.1.2.9", port: 80).allowed)
        #expect(!p.decide(host: "10.1.3.9", port: 80).allowed)
        #expect(p.decide(host: "203.0.113.7", port: 443).allowed)
        #expect(!p.decide(host: "203.0.113.7", port: 22).allowed)
        #expect(p.decide(host: "[2001:db8::1]", port: 8443).allowed)
        let ip = { (s: String) in IPAddress(s)! }
        #expect(p.refusal(address: ip("10.0.0.5"), port: 443)?.contains("private address 10.0.0.5") == true, "no DNS rebinding to private space")
        #expect(p.refusal(address: ip("10.1.2.5"), port: 443) == nil, "an allowed CIDR covers the address")
        #expect(p.refusal(address: ip("169.254.169.254"), port: 80)?.contains("cloud metadata") == true)
        #expect(p.refusal(address: ip("fd00:ec2::254"), port: 80)?.contains("cloud metadata") == true)
        #expect(p.refusal(address: ip("::ffff:127.0.0.1"), port: 80)?.contains("loopback") == true)
        #expect(p.refusal(address: ip("224.0.0.1"), port: 80)?.contains("multicast") == true)
        #expect(p.refusal(address: ip("fe80::1"), port: 80)?.contains("link-local") == true)
        #expect(p.refusal(address: ip("93.184.216.34"), port: 443) == nil)
        #expect(p.refusal(address: ip("203.0.113.3"), port: 22)?.contains("deny 203.0.113.0/28:22") == true)
    }

    @Test("bad patterns are refused with what was expected", arguments: ["", "*.", "a..b", "ex ample.com", "host:0", "host:70000", "10.0.0.0/33", "*", "-a.com", "[::1"])
    func badPatterns(_ text: String) {
        guard case let .failure(e) = EgressRule.parse(text) else { Issue.record("\(text) must be refused"); return }
        #expect(e.message.contains("expected") && e.message.contains("found \"\(text)\""))
    }

    @Test("profile keys: strict, FILE:LINE errors; a lane adds to allow; the fingerprint changes")
    func profileKeys() throws {
        let parser = ProfileParser()
        let good = try parser.parse(name: "n", file: "n.toml", text: "[network]\nmode = \"proxy\"\nallow = [\"pypi.org\"]\ndeny = [\"x.pypi.org\"]\nmax_connections = 8\nmax_bytes = \"1G\"\n")
        #expect(good.network.mode == .proxy && good.network.allow.map(\.text) == ["pypi.org"] && good.network.maxConnections == 8 && good.network.maxBytes == 1 << 30)
        #expect(throws: ConfigErrors.self) { try parser.parse(name: "n", file: "n.toml", text: "[network]\nmode = \"none\"\nallow = [\"pypi.org\"]\n") }
        do {
            _ = try parser.parse(name: "n", file: "n.toml", text: "[network]\nmode = \"proxy\"\n\nallow = [\"bad host\"]\nbogus = 1\n")
            Issue.record("must fail")
        } catch {
            let text = error.description
            #expect(text.contains("n.toml:4:") && text.contains("bad host"), "\(text)")
            #expect(text.contains("bogus"))
        }
        let lane = try LaneParser().parse(name: "l", file: "l.toml", text: "description = \"d\"\nowner = \"o\"\nprofile = \"n\"\n[network]\nallow = [\"files.pythonhosted.org\"]\n")
        #expect(lane.networkAllow.map(\.text) == ["files.pythonhosted.org"])
    }

    @Test("HTTP CONNECT, absolute-form HTTP (rewritten, Connection: close) and SOCKS5 requests")
    func requests() {
        let connect = Array("CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\nXX".utf8)
        #expect(ProxyParser.parse(connect, greeted: false) == .request(.connect(host: "pypi.org", port: 443, consumed: connect.count - 2)))
        #expect(ProxyParser.parse(Array("CONNECT pypi.org:443 HTTP/1.1\r\n".utf8), greeted: false) == .needMore)
        let get = Array("GET http://a.example:8080/x?y HTTP/1.1\r\nHost: a.example:8080\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n".utf8)
        guard case let .request(.http(host, port, head, _)) = ProxyParser.parse(get, greeted: false) else { Issue.record("http"); return }
        #expect(host == "a.example" && port == 8080)
        #expect(String(decoding: head, as: UTF8.self) == "GET /x?y HTTP/1.1\r\nHost: a.example:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n")
        #expect(ProxyParser.parse([5, 1, 0], greeted: false) == .socksGreeting(length: 3))
        #expect(ProxyParser.parse([5, 1, 2], greeted: false) == .invalid("SOCKS5: only the no-authentication method is offered"))
        let socks: [UInt8] = [5, 1, 0, 3, 8] + Array("pypi.org".utf8) + [1, 187]
        #expect(ProxyParser.parse(socks, greeted: true) == .request(.socks(host: "pypi.org", port: 443, consumed: socks.count)))
        #expect(ProxyParser.parse([5, 1, 0, 1, 10, 0, 0, 1, 0, 80], greeted: true) == .request(.socks(host: "10.0.0.1", port: 80, consumed: 10)))
        if case .invalid = ProxyParser.parse(Array("GET https://x/ HTTP/1.1\r\n\r\n".utf8), greeted: false) {} else { Issue.record("https absolute form must be refused") }
    }

    @Test("the SNI of a TLS ClientHello")
    func sni() {
        // A minimal ClientHello: record header, handshake header, version, random, no session,
        // one suite, null compression, one server_name extension.
        let name = Array("api.github.com".utf8)
        let sniExt: [UInt8] = [0, 0] + u16(name.count + 5) + u16(name.count + 3) + [0] + u16(name.count) + name
        let body: [UInt8] = [3, 3] + [UInt8](repeating: 7, count: 32) + [0] + u16(2) + [0x13, 0x01] + [1, 0] + u16(sniExt.count) + sniExt
        let hs: [UInt8] = [1, 0] + u16(body.count) + body
        let record: [UInt8] = [0x16, 3, 1] + u16(hs.count) + hs
        #expect(TLSClientHello.serverName(record) == .name("api.github.com"))
        #expect(TLSClientHello.serverName(Array(record.prefix(20))) == .needMore)
        #expect(TLSClientHello.serverName(Array("GET / HTTP/1.1".utf8)) == .noName)
    }

    func u16(_ n: Int) -> [UInt8] { [UInt8(n >> 8), UInt8(n & 0xFF)] }
}
