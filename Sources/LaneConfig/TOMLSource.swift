import TOMLKit

/// A parsed TOML file and its text, so diagnostics can name the line of a key. TOMLKit gives
/// lines for syntax errors only; for keys, `line(of:)` scans the text for the table header and
/// the `key =` line (dotted and quoted keys included).
struct TOMLSource {
    let file: String
    let text: String
    let table: TOMLTable

    init(file: String, text: String) throws(ConfigDiagnostic) {
        self.file = file
        self.text = text
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigDiagnostic(file: file, line: error.source.begin.line, keyPath: "",
                                   message: "TOML syntax error: \(error.description)")
        } catch {
            throw ConfigDiagnostic(file: file, line: nil, keyPath: "", message: "cannot parse: \(error)")
        }
    }

    /// Parses `text`; on a syntax error also parses the lines before it, so the keys there are
    /// still checked and every problem is reported in one pass.
    static func load(file: String, text: String) -> (TOMLSource?, ConfigDiagnostic?) {
        do {
            return (try TOMLSource(file: file, text: text), nil)
        } catch {
            guard let line = error.line, line > 1 else { return (nil, error) }
            let prefix = text.split(separator: "\n", omittingEmptySubsequences: false).prefix(line - 1).joined(separator: "\n")
            return (try? TOMLSource(file: file, text: prefix), error)
        }
    }

    /// The line where `path` is defined, or where its nearest defined parent is.
    func line(of path: [String]) -> Int? {
        var path = path
        while !path.isEmpty {
            if let line = index[path.joined(separator: "\u{0}")] { return line }
            path.removeLast()
        }
        return nil
    }

    private var index: [String: Int] {
        var found: [String: Int] = [:]
        var header: [String] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingWhitespace()
            if line.hasPrefix("#") || line.isEmpty { continue }
            if line.hasPrefix("[") {
                let inner = line.drop { $0 == "[" }.prefix { $0 != "]" }
                header = Self.splitKey(Substring(inner))
                found[header.joined(separator: "\u{0}"), default: number + 1] = number + 1
                continue
            }
            guard let eq = Self.assignment(line) else { continue }
            let key = header + Self.splitKey(line[..<eq])
            found[key.joined(separator: "\u{0}"), default: number + 1] = number + 1
        }
        return found
    }

    /// The index of the `=` of a `key = value` line (outside quotes).
    private static func assignment(_ line: Substring) -> Substring.Index? {
        var quote: Character?
        for i in line.indices {
            let c = line[i]
            if let q = quote { if c == q { quote = nil } } else if c == "\"" || c == "'" { quote = c } else if c == "=" { return i }
        }
        return nil
    }

    private static func splitKey(_ key: Substring) -> [String] {
        var parts: [String] = []
        var current = ""
        var quote: Character?
        for c in key {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "." {
                parts.append(current.trimmingWhitespaceString())
                current = ""
            } else {
                current.append(c)
            }
        }
        parts.append(current.trimmingWhitespaceString())
        return parts
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().reduce(into: Substring()) { $0.append($1) }
    }
}

extension String {
    func trimmingWhitespaceString() -> String { String(Substring(self).trimmingWhitespace()) }
}
