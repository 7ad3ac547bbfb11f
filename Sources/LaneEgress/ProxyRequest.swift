/// What a client asked the proxy for, parsed from its first bytes: an HTTP CONNECT, a plain
/// HTTP request in absolute form, or a SOCKS5 CONNECT. Pure functions over bytes (tested alone).
enum ProxyRequest: Equatable {
    /// `CONNECT host:port`: a tunnel; the reply is `200` once the upstream is connected.
    case connect(host: String, port: UInt16, consumed: Int)
    /// `GET http://host[:port]/path`: `head` is the request rewritten to origin form with
    /// `Connection: close` (one request per connection, so every request is checked).
    case http(host: String, port: UInt16, head: [UInt8], consumed: Int)
    /// SOCKS5 CONNECT (after the greeting was answered); `consumed` is the request's length.
    case socks(host: String, port: UInt16, consumed: Int)

    var host: String {
        switch self {
        case let .connect(h, _, _), let .http(h, _, _, _), let .socks(h, _, _): return h
        }
    }
    var port: UInt16 {
        switch self {
        case let .connect(_, p, _), let .http(_, p, _, _), let .socks(_, p, _): return p
        }
    }
    var via: String {
        switch self {
        case .connect: return "connect"
        case .http: return "http"
        case .socks: return "socks5"
        }
    }
}

/// The result of looking at the bytes so far.
enum ParseStep: Equatable {
    case needMore
    /// The SOCKS5 greeting (`05 n methods`) of this length: answer `05 00`, then parse again.
    case socksGreeting(length: Int)
    case request(ProxyRequest)
    /// Malformed or unsupported; the message goes back to the client.
    case invalid(String)
}

enum ProxyParser {
    /// The most a request head may take before it is refused.
    static let maxHead = 32 * 1024

    /// Parses `bytes`; `greeted` says whether the SOCKS5 greeting was already answered.
    static func parse(_ bytes: [UInt8], greeted: Bool) -> ParseStep {
        guard let first = bytes.first else { return .needMore }
        if greeted || first == 5 { return socks(bytes, greeted: greeted) }
        return http(bytes)
    }

    static func socks(_ b: [UInt8], greeted: Bool) -> ParseStep {
        if !greeted {
            guard b.count >= 2 else { return .needMore }
            let n = Int(b[1])
            guard b.count >= 2 + n else { return .needMore }
            guard b[2..<2 + n].contains(0) else { return .invalid("SOCKS5: only the no-authentication method is offered") }
            return .socksGreeting(length: 2 + n)
        }
        guard b.count >= 4 else { return .needMore }
        guard b[0] == 5 else { return .invalid("SOCKS5: bad version") }
        guard b[1] == 1 else { return .invalid("SOCKS5: only CONNECT is supported") }
        var host: String, at: Int
        switch b[3] {
        case 1:
            guard b.count >= 10 else { return .needMore }
            host = b[4..<8].map(String.init).joined(separator: ".")
            at = 8
        case 3:
            guard b.count >= 5 else { return .needMore }
            let n = Int(b[4])
            guard b.count >= 5 + n + 2 else { return .needMore }
            host = String(decoding: b[5..<5 + n], as: UTF8.self)
            at = 5 + n
        case 4:
            guard b.count >= 22 else { return .needMore }
            host = IPText.v6(Array(b[4..<20]))
            at = 20
        default:
            return .invalid("SOCKS5: unknown address type")
        }
        let port = UInt16(b[at]) << 8 | UInt16(b[at + 1])
        return .request(.socks(host: host, port: port, consumed: at + 2))
    }

    static func http(_ b: [UInt8]) -> ParseStep {
        guard let end = headEnd(b) else {
            return b.count > maxHead ? .invalid("request head larger than \(maxHead) bytes") : .needMore
        }
        let text = String(decoding: b[0..<end], as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        while lines.last == "" { lines.removeLast() }
        guard let requestLine = lines.first else { return .invalid("empty request") }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else { return .invalid("expected METHOD TARGET HTTP/1.x") }
        let (method, target, version) = (parts[0], parts[1], parts[2])
        if method.uppercased() == "CONNECT" {
            guard let (host, port) = splitHostPort(target, defaultPort: nil) else {
                return .invalid("CONNECT expects host:port, found \(target)")
            }
            return .request(.connect(host: host, port: port, consumed: end + 4))
        }
        let lower = target.lowercased()
        guard lower.hasPrefix("http://") else {
            return .invalid(lower.hasPrefix("https://") ? "use CONNECT for https URLs" : "expected an absolute http:// URL (this is a proxy)")
        }
        let rest = target.dropFirst(7)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var authority = String(rest[..<slash])
        if let at = authority.lastIndex(of: "@") { authority = String(authority[authority.index(after: at)...]) }
        guard let (host, port) = splitHostPort(authority, defaultPort: 80) else { return .invalid("bad URL authority \(authority)") }
        var path = String(rest[slash...])
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        var head = "\(method) \(path) \(version)\r\n"
        var sawHost = false
        let dropped: Set<String> = ["proxy-connection", "proxy-authorization", "connection", "keep-alive"]
        for line in lines.dropFirst() {
            let name = line.split(separator: ":", maxSplits: 1).first.map { $0.trimmingSpaces().lowercased() } ?? ""
            if dropped.contains(name) { continue }
            if name == "host" { sawHost = true }
            head += line + "\r\n"
        }
        if !sawHost { head += "Host: \(authority)\r\n" }
        head += "Connection: close\r\n\r\n"
        return .request(.http(host: host, port: port, head: Array(head.utf8), consumed: end + 4))
    }

    /// Index of the `\r\n\r\n` ending the head.
    static func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    /// `host:port`, `[v6]:port` or (with a default) `host`.
    static func splitHostPort(_ s: String, defaultPort: UInt16?) -> (String, UInt16)? {
        var host = s, portText: String?
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return nil }
            host = String(s[s.index(after: s.startIndex)..<close])
            let after = s[s.index(after: close)...]
            if after.hasPrefix(":") { portText = String(after.dropFirst()) } else if !after.isEmpty { return nil }
        } else if let colon = s.lastIndex(of: ":"), s.filter({ $0 == ":" }).count == 1 {
            host = String(s[..<colon])
            portText = String(s[s.index(after: colon)...])
        }
        guard !host.isEmpty else { return nil }
        if let portText {
            guard let p = UInt16(portText), p > 0 else { return nil }
            return (host, p)
        }
        guard let defaultPort else { return nil }
        return (host, defaultPort)
    }
}

/// The server name of a TLS ClientHello, if the bytes start one.
enum TLSClientHello {
    enum Peek: Equatable {
        case needMore
        /// Not TLS, or TLS without an SNI extension.
        case noName
        case name(String)
    }

    /// Looks at the first TLS record only (a ClientHello fits one record: up to 16 KiB).
    static func serverName(_ b: [UInt8]) -> Peek {
        guard let first = b.first else { return .needMore }
        guard first == 0x16 else { return .noName }
        guard b.count >= 5 else { return .needMore }
        let recordLength = Int(b[3]) << 8 | Int(b[4])
        guard b.count >= 5 + recordLength else { return .needMore }
        var r = ByteReader(bytes: Array(b[5..<5 + recordLength]))
        guard r.u8() == 1, r.skip(3), r.skip(2 + 32),  // type, length, version, random
              let sid = r.u8(), r.skip(Int(sid)),
              let suites = r.u16(), r.skip(Int(suites)),
              let comp = r.u8(), r.skip(Int(comp)),
              let extLength = r.u16() else { return .noName }
        let end = r.at + Int(extLength)
        while r.at + 4 <= end {
            guard let type = r.u16(), let len = r.u16() else { return .noName }
            if type == 0 {
                guard r.skip(2), r.u8() == 0, let n = r.u16(), let name = r.take(Int(n)) else { return .noName }
                return .name(String(decoding: name, as: UTF8.self))
            }
            guard r.skip(Int(len)) else { return .noName }
        }
        return .noName
    }

    struct ByteReader {
        let bytes: [UInt8]
        var at = 0
        mutating func take(_ n: Int) -> [UInt8]? {
            guard n >= 0, at + n <= bytes.count else { return nil }
            defer { at += n }
            return Array(bytes[at..<at + n])
        }
        mutating func skip(_ n: Int) -> Bool { take(n) != nil }
        mutating func u8() -> UInt8? { take(1)?.first }
        mutating func u16() -> UInt16? { take(2).map { UInt16($0[0]) << 8 | UInt16($0[1]) } }
    }
}

/// IPv6 bytes as text (for SOCKS5 address type 4).
enum IPText {
    static func v6(_ b: [UInt8]) -> String {
        stride(from: 0, to: 16, by: 2).map { String(UInt16(b[$0]) << 8 | UInt16(b[$0 + 1]), radix: 16) }.joined(separator: ":")
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
