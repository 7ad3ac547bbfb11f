/// A minimal JSON writer for results. Hand-written because the model links no Foundation; it
/// only renders, it never parses.
public enum JSONValue: Sendable, Equatable {
    case string(String), int(Int), double(Double), bool(Bool), null, array([JSONValue]), object(JSONObject)

    public var rendered: String {
        var out: [UInt8] = []
        render(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the JSON text to `out`. Works on UTF-8 bytes, so a large captured output is
    /// escaped in one pass into one buffer instead of through many intermediate strings.
    public func render(into out: inout [UInt8]) {
        switch self {
        case let .string(s): JSONValue.quote(s, into: &out)
        case let .int(i): out.append(contentsOf: String(i).utf8)
        case let .double(d): out.append(contentsOf: (d.isFinite ? String(Self.reported(d)) : "null").utf8)
        case let .bool(b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        case let .array(a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.render(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .object(o): o.render(into: &out)
        }
    }

    /// A number as JSON results state it: three decimals (milliseconds to the microsecond).
    public static func reported(_ d: Double) -> Double { d.isFinite ? (d * 1000).rounded() / 1000 : d }

    static func quote(_ s: String) -> String {
        var out: [UInt8] = []
        quote(s, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `s` as a JSON string literal (quote, backslash and control characters escaped;
    /// `/` and non-ASCII as they are).
    public static func quote(_ s: String, into out: inout [UInt8]) {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        out.reserveCapacity(out.count + s.utf8.count + 2)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// An ordered JSON object.
public struct JSONObject: Sendable, Equatable {
    public private(set) var fields: [(String, JSONValue)] = []
    public init() {}
    public mutating func add(_ key: String, _ value: JSONValue) { fields.append((key, value)) }
    public var rendered: String {
        var out: [UInt8] = []
        render(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public func render(into out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (i, field) in fields.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONValue.quote(field.0, into: &out)
            out.append(UInt8(ascii: ":"))
            field.1.render(into: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
    public static func == (a: JSONObject, b: JSONObject) -> Bool { a.rendered == b.rendered }
}
