/// Replaces credential values in a byte stream with `[redacted:NAME]`: the value itself, its
/// base64 forms (standard and URL-safe, with and without padding, and — for values of six
/// bytes or more — inside a larger base64 text at any alignment, where up to three characters
/// on each side of the match, which mix in neighbouring bytes, stay) and its URL-encoded forms
/// (upper- and lower-case hex). It works on a stream: a value split across two reads is still
/// found, because bytes that could be the start of a match are held back until the next chunk
/// (or `finish()`) decides.
public struct Redactor: Sendable {
    /// One byte pattern and what replaces it.
    struct Pattern: Sendable {
        let bytes: [UInt8]
        let replacement: [UInt8]
    }

    private let patterns: [Pattern]
    private let longest: Int
    private var pending: [UInt8] = []

    /// `secrets` maps a credential name to its value. Empty values are ignored.
    public init(secrets: [(name: String, value: [UInt8])]) {
        var patterns: [Pattern] = []
        for (name, value) in secrets where !value.isEmpty {
            let replacement = Array("[redacted:\(name)]".utf8)
            var forms: [[UInt8]] = [value]
            let b64 = Redactor.base64(value)
            forms.append(b64)
            forms.append(Array(b64.prefix { $0 != UInt8(ascii: "=") }))
            let url = b64.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: "-") : $0 == UInt8(ascii: "/") ? UInt8(ascii: "_") : $0 }
            forms.append(url)
            forms.append(Array(url.prefix { $0 != UInt8(ascii: "=") }))
            // The value inside a larger base64 text (`printf 'x%s' "$TOKEN" | base64`): at each of
            // the three alignments the characters that depend on the value alone. Only long
            // enough cores, so short values do not redact unrelated base64.
            for start in 0..<3 where value.count - start >= 6 {
                let core = Redactor.base64(Array(value[start..<(start + (value.count - start) / 3 * 3)]))
                forms.append(core)
                forms.append(core.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: "-") : $0 == UInt8(ascii: "/") ? UInt8(ascii: "_") : $0 })
            }
            forms.append(Redactor.percentEncoded(value, upper: true))
            forms.append(Redactor.percentEncoded(value, upper: false))
            var seen: Set<[UInt8]> = []
            for form in forms where !form.isEmpty && seen.insert(form).inserted {
                patterns.append(Pattern(bytes: form, replacement: replacement))
            }
        }
        // Longest first, so a value that contains another value is replaced whole.
        self.patterns = patterns.sorted { $0.bytes.count > $1.bytes.count }
        self.longest = patterns.map(\.bytes.count).max() ?? 0
    }

    /// Whether there is anything to redact.
    public var isEmpty: Bool { patterns.isEmpty }

    /// Feeds a chunk; returns what can be passed on now.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer) -> [UInt8] {
        if patterns.isEmpty { return Array(chunk) }
        pending.append(contentsOf: chunk)
        return drain(final: false)
    }

    /// Feeds a chunk given as an array.
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] {
        chunk.withUnsafeBytes { feed($0) }
    }

    /// The end of the stream: whatever is still held back.
    public mutating func finish() -> [UInt8] { drain(final: true) }

    /// Redacts a whole buffer at once.
    public func redact(_ bytes: [UInt8]) -> [UInt8] {
        var copy = self
        copy.pending = []
        return copy.feed(bytes) + copy.finish()
    }

    private mutating func drain(final: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(pending.count)
        var i = 0
        let n = pending.count
        scan: while i < n {
            for p in patterns where pending[i] == p.bytes[0] {
                let available = n - i
                if available >= p.bytes.count {
                    if matches(p.bytes, at: i) {
                        out.append(contentsOf: p.replacement)
                        i += p.bytes.count
                        continue scan
                    }
                } else if !final && matches(p.bytes[0..<available], at: i) {
                    // Could become a match with the next chunk: hold back from here.
                    pending.removeFirst(i)
                    return out
                }
            }
            out.append(pending[i])
            i += 1
        }
        pending.removeAll(keepingCapacity: true)
        return out
    }

    private func matches<C: Collection>(_ pattern: C, at i: Int) -> Bool where C.Element == UInt8 {
        var j = i
        for b in pattern {
            if pending[j] != b { return false }
            j += 1
        }
        return true
    }

    /// Standard base64 with padding.
    public static func base64(_ bytes: [UInt8]) -> [UInt8] {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = Int(bytes[i]), b1 = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? Int(bytes[i + 2]) : 0
            out.append(table[b0 >> 2])
            out.append(table[((b0 & 3) << 4) | (b1 >> 4)])
            out.append(i + 1 < bytes.count ? table[((b1 & 15) << 2) | (b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? table[b2 & 63] : UInt8(ascii: "="))
            i += 3
        }
        return out
    }

    /// Percent-encoding of everything but RFC 3986 unreserved characters.
    public static func percentEncoded(_ bytes: [UInt8], upper: Bool) -> [UInt8] {
        let hex = Array((upper ? "0123456789ABCDEF" : "0123456789abcdef").utf8)
        var out: [UInt8] = []
        for b in bytes {
            let unreserved = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~")
            if unreserved { out.append(b) } else { out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]] }
        }
        return out
    }
}
