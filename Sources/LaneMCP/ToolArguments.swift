import MCP

/// A tool call's arguments, checked against the tool's schema by hand: an unknown key, a missing
/// one or a wrong type is a JSON-RPC invalid-params error (-32602) naming the tool, the key, what
/// was expected and what was found. Nothing runs then.
struct ToolArguments {
    let tool: String
    let values: [String: Value]

    init(tool: String, values: [String: Value]?, allowed: Set<String>) throws(MCPError) {
        self.tool = tool
        self.values = values ?? [:]
        for key in self.values.keys.sorted() where !allowed.contains(key) {
            throw MCPError.invalidParams("\(tool): unknown argument \"\(key)\"; expected one of \(allowed.sorted().joined(separator: ", "))")
        }
    }

    func fail(_ key: String, expected: String, found: Value) -> MCPError {
        .invalidParams("\(tool): argument \"\(key)\": expected \(expected), found \(Self.describe(found))")
    }

    func string(_ key: String, nonEmpty: Bool = false) throws(MCPError) -> String? {
        guard let v = values[key], !v.isNull else { return nil }
        guard case let .string(s) = v else { throw fail(key, expected: "a string", found: v) }
        if nonEmpty && s.isEmpty { throw fail(key, expected: "a non-empty string", found: v) }
        if s.utf8.contains(0) { throw fail(key, expected: "a string without NUL bytes", found: v) }
        return s
    }

    func requiredString(_ key: String, nonEmpty: Bool = true) throws(MCPError) -> String {
        guard let s = try string(key, nonEmpty: nonEmpty) else {
            throw MCPError.invalidParams("\(tool): missing the required argument \"\(key)\" (a string)")
        }
        return s
    }

    /// Text content: a string, taken as is (also when it looks like a data: URL, which the SDK
    /// decodes as binary data).
    func text(_ key: String) throws(MCPError) -> String? {
        guard let v = values[key], !v.isNull else { return nil }
        switch v {
        case let .string(s): return s
        case .data: throw fail(key, expected: "plain text (not a data: URL)", found: v)
        default: throw fail(key, expected: "a string", found: v)
        }
    }

    func stringArray(_ key: String) throws(MCPError) -> [String]? {
        guard let v = values[key], !v.isNull else { return nil }
        guard case let .array(items) = v, !items.isEmpty else { throw fail(key, expected: "a non-empty array of strings", found: v) }
        var out: [String] = []
        for item in items {
            guard case let .string(s) = item, !s.utf8.contains(0) else {
                throw fail(key, expected: "an array of strings (without NUL bytes)", found: v)
            }
            out.append(s)
        }
        guard !out[0].isEmpty else { throw fail(key, expected: "a non-empty program name first", found: v) }
        return out
    }

    func number(_ key: String, min: Double, exclusive: Bool) throws(MCPError) -> Double? {
        guard let v = values[key], !v.isNull else { return nil }
        let d: Double
        switch v {
        case let .int(i): d = Double(i)
        case let .double(x): d = x
        default: throw fail(key, expected: "a number", found: v)
        }
        guard d.isFinite, exclusive ? d > min : d >= min else {
            throw fail(key, expected: "a number \(exclusive ? ">" : "≥") \(min)", found: v)
        }
        return d
    }

    func int(_ key: String, range: ClosedRange<Int>) throws(MCPError) -> Int? {
        guard let v = values[key], !v.isNull else { return nil }
        guard case let .int(i) = v, range.contains(i) else { throw fail(key, expected: "an integer in \(range.lowerBound)…\(range.upperBound)", found: v) }
        return i
    }

    func bool(_ key: String) throws(MCPError) -> Bool? {
        guard let v = values[key], !v.isNull else { return nil }
        guard case let .bool(b) = v else { throw fail(key, expected: "true or false", found: v) }
        return b
    }

    static func describe(_ v: Value) -> String {
        switch v {
        case .null: return "null"
        case let .bool(b): return "\(b)"
        case let .int(i): return "the number \(i)"
        case let .double(d): return "the number \(d)"
        case let .string(s): return s.count > 40 ? "a string of \(s.utf8.count) bytes" : "\"\(s)\""
        case .data: return "binary data"
        case let .array(a): return "an array of \(a.count) items"
        case .object: return "an object"
        }
    }
}
