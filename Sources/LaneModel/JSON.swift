/// A minimal JSON writer for results. Hand-written because the model links no Foundation; it
/// only renders, it never parses.
public enum JSONValue: Sendable, Equatable {
    case string(String), int(Int), double(Double), bool(Bool), null, array([JSONValue]), object(JSONObject)

    public var rendered: String {
        switch self {
        case let .string(s): return JSONValue.quote(s)
        case let .int(i): return String(i)
        case let .double(d): return d.isFinite ? String((d * 1000).rounded() / 1000) : "null"
        case let .bool(b): return b ? "true" : "false"
        case .null: return "null"
        case let .array(a): return "[" + a.map(\.rendered).joined(separator: ",") + "]"
        case let .object(o): return o.rendered
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

/// An ordered JSON object.
public struct JSONObject: Sendable, Equatable {
    public private(set) var fields: [(String, JSONValue)] = []
    public init() {}
    public mutating func add(_ key: String, _ value: JSONValue) { fields.append((key, value)) }
    public var rendered: String {
        "{" + fields.map { JSONValue.quote($0.0) + ":" + $0.1.rendered }.joined(separator: ",") + "}"
    }
    public static func == (a: JSONObject, b: JSONObject) -> Bool { a.rendered == b.rendered }
}
