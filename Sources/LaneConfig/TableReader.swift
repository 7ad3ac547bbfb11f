import LaneModel
import TOMLKit

/// Reads one TOML table strictly: every key must be known and of the expected type; every
/// problem is collected (never the first only) with the line it is on.
final class TableReader {
    let source: TOMLSource
    let path: [String]
    let table: TOMLTable
    private(set) var diagnostics: [ConfigDiagnostic]
    private var known: Set<String> = []

    init(source: TOMLSource, path: [String] = [], table: TOMLTable? = nil, diagnostics: [ConfigDiagnostic] = []) {
        self.source = source
        self.path = path
        self.table = table ?? source.table
        self.diagnostics = diagnostics
    }

    func error(_ key: String?, _ message: String) {
        let full = key.map { path + [$0] } ?? path
        diagnostics.append(ConfigDiagnostic(file: source.file, line: source.line(of: full),
                                            keyPath: full.joined(separator: "."), message: message))
    }

    /// A sub-table (absent → nil). Its diagnostics flow back through `finish(_:)`.
    func table(_ key: String) -> TableReader? {
        known.insert(key)
        guard let value = table[key] else { return nil }
        guard let sub = value.table else {
            error(key, "expected a table, found \(describe(value))")
            return nil
        }
        return TableReader(source: source, path: path + [key], table: sub)
    }

    /// Merges a sub-reader's findings, including its unknown keys.
    func finish(_ sub: TableReader?) {
        guard let sub else { return }
        sub.reportUnknown()
        diagnostics += sub.diagnostics
    }

    func string(_ key: String, allowed: [String]? = nil) -> String? {
        known.insert(key)
        guard let value = table[key] else { return nil }
        guard let s = value.string else {
            error(key, "expected a string, found \(describe(value))")
            return nil
        }
        if let allowed, !allowed.contains(s) {
            error(key, "expected one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", ")), found \"\(s)\"")
            return nil
        }
        return s
    }

    func strings(_ key: String) -> [String]? {
        known.insert(key)
        guard let value = table[key] else { return nil }
        guard let array = value.array else {
            error(key, "expected an array of strings, found \(describe(value))")
            return nil
        }
        var out: [String] = []
        for item in array {
            guard let s = item.string else {
                error(key, "expected an array of strings, found an element that is \(describe(item))")
                return nil
            }
            out.append(s)
        }
        return out
    }

    /// A non-negative whole number, or a string with a unit (`units` maps suffix → factor).
    func quantity(_ key: String, units: [String: Double], what: String) -> Double? {
        known.insert(key)
        guard let value = table[key] else { return nil }
        if let i = value.int {
            if i < 0 { error(key, "expected \(what) ≥ 0, found \(i)"); return nil }
            return Double(i)
        }
        if let d = value.double {
            if d < 0 || !d.isFinite { error(key, "expected \(what) ≥ 0, found \(d)"); return nil }
            return d
        }
        if let s = value.string, let q = Self.parse(s, units: units) { return q }
        error(key, "expected \(what) (\(InputSyntax.example(units: units))), found \(describe(value))")
        return nil
    }

    /// Declares keys as reserved for a later version: present → error naming it.
    func reserved(_ key: String, _ why: String) {
        known.insert(key)
        if table[key] != nil { error(key, why) }
    }

    /// Every key not read is an error (TOMLKit would silently ignore it).
    func reportUnknown() {
        for key in table.keys where !known.contains(key) {
            let hint = Self.closest(key, in: known).map { " (did you mean `\($0)`?)" } ?? ""
            error(key, "unknown key\(hint); expected one of: \(known.sorted().joined(separator: ", "))")
        }
    }

    /// Marks keys as read without a type (the caller walks them itself).
    func markKnown(_ key: String) { known.insert(key) }

    /// The one quantity parser (`InputSyntax.quantity`), shared with the CLI.
    static func parse(_ text: String, units: [String: Double]) -> Double? {
        InputSyntax.quantity(text, units: units)
    }

    static func closest(_ key: String, in candidates: Set<String>) -> String? {
        candidates.map { ($0, distance($0, key)) }.filter { $0.1 <= 2 }.min { $0.1 < $1.1 }?.0
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var prev = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let cur = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                prev = cur
            }
        }
        return row[b.count]
    }
}

func describe(_ value: TOMLValueConvertible) -> String {
    switch value.type {
    case .string: return "a string \"\(value.string ?? "")\""
    case .int: return "an integer \(value.int ?? 0)"
    case .double: return "a number \(value.double ?? 0)"
    case .bool: return "a boolean \(value.bool == true)"
    case .array: return "an array"
    case .table: return "a table"
    default: return "a date or time"
    }
}

/// The unit tables of `InputSyntax`, by the names the parsers use.
enum Units {
    static let bytes = InputSyntax.sizeUnits
    static let seconds = InputSyntax.durationUnits
    static let count = InputSyntax.countUnits
}
