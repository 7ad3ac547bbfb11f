import Glibc

/// One host pattern of `[network] allow` or `deny`: an exact name, a `*.` wildcard (any
/// subdomain, never the apex), an IP literal or a CIDR, with an optional `:port`.
public struct EgressRule: Sendable, Equatable, CustomStringConvertible {
    /// What the pattern matches.
    public enum Host: Sendable, Equatable {
        /// An exact name, lower-case, without a trailing dot.
        case name(String)
        /// `*.example.com`: the suffix `example.com`; matches `a.example.com`, not `example.com`.
        case wildcard(String)
        /// An address or a network (an address is a network with a full-length prefix).
        case network(IPAddress, prefix: Int)
    }
    public var host: Host
    /// The port; nil means 80 and 443 in `allow`, and every port in `deny`.
    public var port: UInt16?
    /// The pattern as written (the journal and denial lines quote it).
    public var text: String

    public var description: String { text }

    /// Parses a pattern; the error says what was expected and what was found.
    public static func parse(_ text: String) -> Result<EgressRule, EgressRuleError> {
        let fail = { (why: String) in Result<EgressRule, EgressRuleError>.failure(EgressRuleError(message: why + ", found \"\(text)\"")) }
        var hostPart = Substring(text), port: UInt16?
        if text.hasPrefix("[") {  // [v6]:port or [v6]/len:port
            guard let close = text.firstIndex(of: "]") else { return fail("expected a closing ] after an IPv6 address") }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let p = UInt16(rest.dropFirst()), p > 0 else { return fail("expected :PORT (1-65535) after ]") }
                port = p
            }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.lastIndex(of: ":") {
            guard let p = UInt16(text[text.index(after: colon)...]), p > 0 else { return fail("expected HOST:PORT with a port 1-65535") }
            port = p
            hostPart = text[..<colon]
        }
        let h = String(hostPart)
        if let slash = h.firstIndex(of: "/") {
            guard let addr = IPAddress(String(h[..<slash])), let len = Int(h[h.index(after: slash)...]),
                  len >= 0, len <= addr.bytes.count * 8 else {
                return fail("expected a CIDR such as 10.0.0.0/8 or fd00::/8")
            }
            return .success(EgressRule(host: .network(addr.masked(len), prefix: len), port: port, text: text))
        }
        if let addr = IPAddress(h) {
            return .success(EgressRule(host: .network(addr, prefix: addr.bytes.count * 8), port: port, text: text))
        }
        if h.hasPrefix("*.") {
            let suffix = String(h.dropFirst(2)).lowercased()
            guard isHostName(suffix) else { return fail("expected *.NAME with a valid host name after *.") }
            return .success(EgressRule(host: .wildcard(suffix), port: port, text: text))
        }
        guard isHostName(h) else {
            return fail("expected a host name, *.NAME, an IP address or a CIDR, with an optional :PORT")
        }
        return .success(EgressRule(host: .name(h.lowercased()), port: port, text: text))
    }

    /// Whether the rule covers `port` (`deny`: a rule without a port covers every port).
    func covers(port p: UInt16, isDeny: Bool) -> Bool {
        if let port { return port == p }
        return isDeny || p == 80 || p == 443
    }

    /// Whether the rule names this host (a name; IP rules match only IP literals).
    func matches(name: String) -> Bool {
        switch host {
        case let .name(n): return n == name
        case let .wildcard(suffix): return name.count > suffix.count + 1 && name.hasSuffix("." + suffix)
        case let .network(net, prefix):
            guard let addr = IPAddress(name) else { return false }
            return addr.isIn(net, prefix: prefix)
        }
    }

    /// Whether the rule is an IP rule that covers `address`.
    func matches(address: IPAddress) -> Bool {
        guard case let .network(net, prefix) = host else { return false }
        return address.isIn(net, prefix: prefix)
    }
}

/// A pattern that could not be parsed.
public struct EgressRuleError: Error, Equatable {
    public let message: String
}

/// A valid DNS host name: labels of letters, digits and `-` (not at either end), 1–63 each,
/// 253 in all; at least one letter somewhere (an all-digit name is a mistyped address).
public func isHostName(_ s: String) -> Bool {
    let name = s.hasSuffix(".") ? String(s.dropLast()) : s
    guard !name.isEmpty, name.utf8.count <= 253 else { return false }
    for label in name.split(separator: ".", omittingEmptySubsequences: false) {
        guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-" else { return false }
        guard label.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") }) else { return false }
    }
    return name.unicodeScalars.contains { $0.properties.isAlphabetic }
}

/// A step's egress policy: the profile's allow and deny rules plus the lane's extra allows.
/// Deny wins over allow. Pure: the proxy asks it twice, once by name and once per address.
public struct EgressPolicy: Sendable, Equatable {
    public var allow: [EgressRule]
    public var deny: [EgressRule]
    /// The lane the step runs in (denial messages name it).
    public var lane: String

    public init(allow: [EgressRule], deny: [EgressRule], lane: String) {
        self.allow = allow
        self.deny = deny
        self.lane = lane
    }

    /// A decision and the rule (or reason) behind it.
    public struct Decision: Sendable, Equatable {
        public var allowed: Bool
        /// The allow rule, the deny rule (`deny uploads.github.com`), or why nothing matched.
        public var rule: String
        public init(allowed: Bool, rule: String) {
            self.allowed = allowed
            self.rule = rule
        }
    }

    /// The decision for a host (a name or an IP literal) and port, before any resolution.
    public func decide(host rawHost: String, port: UInt16) -> Decision {
        let host = Self.normalize(rawHost)
        if let d = deny.first(where: { $0.covers(port: port, isDeny: true) && $0.matches(name: host) }) {
            return Decision(allowed: false, rule: "deny \(d.text) in lane \(lane)")
        }
        if let a = allow.first(where: { $0.covers(port: port, isDeny: false) && $0.matches(name: host) }) {
            return Decision(allowed: true, rule: a.text)
        }
        return Decision(allowed: false, rule: "no allow rule in lane \(lane)")
    }

    /// The decision for one resolved address of an allowed name: an IP deny rule refuses it; a
    /// special address (loopback, private, link-local, metadata, multicast...) is refused unless
    /// an IP allow rule names it. Nil means the address may be used.
    public func refusal(address: IPAddress, port: UInt16) -> String? {
        if let d = deny.first(where: { $0.covers(port: port, isDeny: true) && $0.matches(address: address) }) {
            return "address \(address) matches deny \(d.text) in lane \(lane)"
        }
        guard let kind = address.specialKind else { return nil }
        if allow.contains(where: { $0.covers(port: port, isDeny: false) && $0.matches(address: address) }) { return nil }
        return "resolves to \(kind) address \(address) (allow it by address to reach it)"
    }

    /// Lower-case, without a trailing dot or IPv6 brackets.
    public static func normalize(_ host: String) -> String {
        var h = host.lowercased()
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h.hasSuffix(".") { h.removeLast() }
        return h
    }
}

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses dotted-quad IPv4 or any IPv6 text form (inet_pton: strict, no shorthand like `10.1`).
    public init?(_ text: String) {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    public var description: String {
        var buf = [CChar](repeating: 0, count: 64)
        var b = bytes
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard b.withUnsafeMutableBytes({ inet_ntop(family, $0.baseAddress, &buf, 64) }) != nil else { return "?" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The address with every bit after `prefix` cleared.
    public func masked(_ prefix: Int) -> IPAddress {
        var out = bytes
        for i in out.indices {
            let keep = max(0, min(8, prefix - i * 8))
            out[i] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
        }
        return IPAddress(bytes: out) ?? self
    }

    /// Whether the address lies in `net/prefix` (IPv4-mapped IPv6 addresses count as IPv4).
    public func isIn(_ net: IPAddress, prefix: Int) -> Bool {
        let me = unmapped
        guard me.bytes.count == net.bytes.count else { return false }
        return me.masked(prefix) == net.masked(prefix)
    }

    /// `::ffff:a.b.c.d` as the IPv4 address it is.
    public var unmapped: IPAddress {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return self }
        return IPAddress(bytes: Array(bytes[12...])) ?? self
    }

    /// Networks a step may not reach through a name: they are the host's and its neighbours'.
    static let special: [(String, String)] = [
        ("169.254.169.254/32", "cloud metadata"), ("fd00:ec2::254/128", "cloud metadata"),
        ("0.0.0.0/8", "unspecified"), ("10.0.0.0/8", "private"), ("100.64.0.0/10", "shared (CGNAT)"),
        ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"), ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol"), ("192.168.0.0/16", "private"), ("198.18.0.0/15", "benchmarking"),
        ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"), ("::1/128", "loopback"), ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"), ("ff00::/8", "multicast"), ("64:ff9b::/96", "NAT64"),
        ("2001:db8::/32", "documentation"),
    ]
    static let specialNetworks: [(IPAddress, Int, String)] = special.compactMap { cidr, kind in
        let parts = cidr.split(separator: "/")
        guard let a = IPAddress(String(parts[0])), let len = Int(parts[1]) else { return nil }
        return (a, len, kind)
    }

    /// Why a step may not reach this address by name (nil: a public address).
    public var specialKind: String? {
        Self.specialNetworks.first { isIn($0.0, prefix: $0.1) }?.2
    }
}
