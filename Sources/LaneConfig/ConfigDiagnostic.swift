/// One problem in a profile or lane file, printed as `FILE:LINE: message`, or
/// `FILE: key.path: message` when the line is unknown.
public struct ConfigDiagnostic: Error, Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int?
    public let keyPath: String
    public let message: String

    public init(file: String, line: Int?, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.keyPath = keyPath
        self.message = message
    }

    public var description: String {
        let key = keyPath.isEmpty ? "" : "`\(keyPath)`: "
        if let line { return "\(file):\(line): \(key)\(message)" }
        return "\(file): \(key)\(message)"
    }
}

/// All the problems of one or more files; thrown when loading fails.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public let diagnostics: [ConfigDiagnostic]
    public init(_ diagnostics: [ConfigDiagnostic]) { self.diagnostics = diagnostics }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
