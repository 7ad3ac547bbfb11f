/// The syntax of values a user types on the command line and in files: run and step ids,
/// declared effects, and quantities with units (durations, sizes, counts). One parser for each,
/// shared by the profile parser and the CLI, so `--timeout 5m` and `wall_clock = "5m"` mean the
/// same thing. Pure functions: every one returns the value or a one-line message saying what
/// was expected and what was found.
public enum InputSyntax {
    /// Longest run or step id.
    public static let maxIDLength = 64

    /// A run id (or step id): 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`
    /// (it is used in file names and shown in tables; `..` or an option look-alike would be
    /// a trap). `newRunID()` makes ids of this syntax (`20261122-231500-3fa9c1`).
    public static func checkID(_ text: String, what: String = "run id") -> String? {
        if text.isEmpty { return "\(what) is empty; expected 1 to \(maxIDLength) of A-Z a-z 0-9 . _ -" }
        if text.utf8.count > maxIDLength {
            return "\(what) is \(text.utf8.count) characters long; expected at most \(maxIDLength)"
        }
        if let bad = text.unicodeScalars.first(where: { !isIDCharacter($0) }) {
            return "\(what) \"\(text)\" contains \(describe(bad)); expected only A-Z a-z 0-9 . _ -"
        }
        if text.hasPrefix(".") || text.hasPrefix("-") {
            return "\(what) \"\(text)\" starts with \"\(text.prefix(1))\"; expected a letter, a digit or _ first"
        }
        return nil
    }

    static func isIDCharacter(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "." || c == "_" || c == "-"
    }

    static func describe(_ c: Unicode.Scalar) -> String {
        switch c {
        case " ": return "a space"
        case "/": return "a slash"
        default:
            return c.value < 0x20 || c.value == 0x7f ? "a control character" : "\"\(Character(c))\""
        }
    }

    /// The effects `lanes run --effect` may declare and a lane's `[review] effects` may gate
    /// (documented in docs/governance.md). A closed list: a typo must not silently declare
    /// nothing that a gate would have caught.
    public static let effects: [String: String] = [
        "changes_records": "changes records others rely on (tickets, ledgers, customer data)",
        "irreversible": "cannot be undone (a push, a deletion outside the workspace, a payment)",
        "destructive": "deletes or overwrites data that is not in the workspace",
        "external": "acts on a system outside the sandbox (a message, a remote API call)",
        "production": "touches a production system or production data",
        "spend": "costs money or consumes a paid quota",
    ]

    /// nil when `text` is a documented effect, else the message.
    public static func checkEffect(_ text: String) -> String? {
        if effects[text] != nil { return nil }
        return "unknown effect \"\(text)\"; expected one of: \(effects.keys.sorted().joined(separator: ", "))"
    }

    /// Duration units (seconds per unit). A bare number is seconds.
    public static let durationUnits: [String: Double] = ["": 1, "s": 1, "ms": 0.001, "m": 60, "min": 60, "h": 3600]
    /// Size units (bytes per unit). A bare number is bytes.
    public static let sizeUnits: [String: Double] = [
        "": 1, "B": 1, "K": 1024, "KB": 1024, "KiB": 1024, "M": 1_048_576, "MB": 1_048_576,
        "MiB": 1_048_576, "G": 1_073_741_824, "GB": 1_073_741_824, "GiB": 1_073_741_824]
    /// A count has no unit.
    public static let countUnits: [String: Double] = ["": 1]

    /// A non-negative number followed by an optional unit from `units` (`"1.5h"`, `"500ms"`,
    /// `"64K"`); nil when it is not one.
    public static func quantity(_ text: String, units: [String: Double]) -> Double? {
        let t = trimmed(text)
        let digits = t.prefix { ("0"..."9").contains($0) || $0 == "." }
        guard !digits.isEmpty, let number = Double(digits), number.isFinite else { return nil }
        let unit = trimmed(String(t.dropFirst(digits.count)))
        guard let factor = units[unit] ?? units[unit.uppercased()] ?? units[unit.lowercased()] else { return nil }
        return number * factor
    }

    /// How to write a quantity of these units, for messages: `a number or a string like "10s" or "10m"`;
    /// just `a number` when there are no units (a count).
    public static func example(units: [String: Double]) -> String {
        let suffixes = units.keys.filter { !$0.isEmpty }.sorted()
        if suffixes.isEmpty { return "a number" }
        let preferred = ["s", "m", "h", "K", "M", "G"].filter { suffixes.contains($0) }
        let shown = (preferred.isEmpty ? suffixes : preferred).prefix(2)
        return "a number or a string like " + shown.map { "\"10\($0)\"" }.joined(separator: " or ")
    }

    /// A duration > 0 in seconds, as `--timeout` and the profiles' duration keys take it.
    public static func parseDuration(_ text: String) -> Result<Double, InputError> {
        guard let seconds = quantity(text, units: durationUnits) else {
            return .failure(InputError("expected a duration (\(example(units: durationUnits)), e.g. \"90\", \"500ms\", \"5m\", \"1h\"), found \"\(text)\""))
        }
        guard seconds > 0 else { return .failure(InputError("expected a duration > 0, found \"\(text)\"")) }
        return .success(seconds)
    }

    static func trimmed(_ s: String) -> String {
        var v = Substring(s)
        while let f = v.first, f == " " || f == "\t" { v = v.dropFirst() }
        while let l = v.last, l == " " || l == "\t" { v = v.dropLast() }
        return String(v)
    }
}

/// A value typed by a user that does not have the expected syntax; `message` says what was
/// expected and what was found.
public struct InputError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
