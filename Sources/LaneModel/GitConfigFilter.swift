/// Keeps only the git configuration keys that never make git run a command, for repositories a
/// step created (their config is written by the step, so nothing in it is trusted). Everything
/// else (`core.fsmonitor`, `core.hooksPath`, `core.sshCommand`, `core.pager`, `core.editor`,
/// `filter.*`, `diff.*.textconv`, `alias.*`, `include.*`, `remote.*.uploadpack`, …) is dropped.
/// An allow-list, not a deny-list: git grows new command-running keys, and an unknown key costs
/// only a setting the person can restore.
public enum GitConfigFilter {
    /// `section.key` or `section.*.key` (any subsection), lower-cased.
    public static let safeKeys: Set<String> = [
        "core.repositoryformatversion", "core.filemode", "core.bare", "core.logallrefupdates",
        "core.ignorecase", "core.precomposeunicode", "core.symlinks", "core.worktree", "core.autocrlf",
        "extensions.objectformat", "extensions.refstorage", "extensions.worktreeconfig", "extensions.noop",
        "remote.*.url", "remote.*.fetch", "remote.*.pushurl", "remote.*.mirror", "remote.*.tagopt",
        "branch.*.remote", "branch.*.merge", "branch.*.rebase", "submodule.*.url", "submodule.*.active",
        "user.name", "user.email", "init.defaultbranch",
    ]

    /// The filtered text and the keys removed (empty: the config was already safe). A config
    /// git would read differently from this parser (continuation lines, quotes in headers) is
    /// replaced whole by a minimal one.
    public static func filter(_ text: String) -> (text: String, removed: [String]) {
        var out: [String] = []
        var removed: [String] = []
        var section: String?
        var header = ""
        var headerWritten = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if line.hasSuffix("\\") || line.contains("\r") { return (minimal, ["(unparsable config)"]) }
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard let close = line.firstIndex(of: "]"), line[line.index(after: close)...].allSatisfy({ $0 == " " || $0 == "\t" }) else {
                    return (minimal, ["(unparsable config)"])
                }
                let inner = line[line.index(after: line.startIndex)..<close]
                section = sectionName(inner)
                if section == nil { return (minimal, ["(unparsable config)"]) }
                header = String(line[...close])
                headerWritten = false
                continue
            }
            guard let section else { return (minimal, ["(unparsable config)"]) }
            let name = line.prefix { $0.isLetter || $0.isNumber || $0 == "-" }.lowercased()
            let key = section + "." + name
            if name.isEmpty || !isSafe(key) {
                removed.append(key)
                continue
            }
            if !headerWritten {
                out.append(header)
                headerWritten = true
            }
            out.append("\t" + line)
        }
        return removed.isEmpty ? (text, []) : (out.joined(separator: "\n") + "\n", removed)
    }

    public static let minimal = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"

    /// `core` → "core"; `remote "origin"` → "remote.*"; `branch.main` → "branch.*".
    static func sectionName(_ inner: Substring) -> String? {
        let trimmed = inner.trimmingBlanks
        if let space = trimmed.firstIndex(of: " ") {
            let sub = trimmed[space...].trimmingBlanks
            guard sub.hasPrefix("\""), sub.hasSuffix("\""), sub.count >= 2 else { return nil }
            return trimmed[..<space].lowercased() + ".*"
        }
        if trimmed.contains("\"") { return nil }
        if let dot = trimmed.firstIndex(of: ".") { return trimmed[..<dot].lowercased() + ".*" }
        return trimmed.lowercased()
    }

    static func isSafe(_ key: String) -> Bool { safeKeys.contains(key) }
}

private extension Substring {
    var trimmingBlanks: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}
