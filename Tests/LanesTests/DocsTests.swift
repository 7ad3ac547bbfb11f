import Foundation
import LaneModel
import LaneTestSupport
import Testing

/// The documentation matches the project (issue 11): every relative link and anchor in README.md
/// and docs/*.md resolves, every markdown file named in prose exists, tables are not split by
/// blank lines, and the effects table is `InputSyntax.effects`.
@Suite("docs")
struct DocsTests {
    static let root = LanesCLI.packageRoot.path
    static var files: [String] {
        let docs = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/docs")) ?? []).filter { $0.hasSuffix(".md") }.sorted()
        return ["README.md"] + docs.map { "docs/" + $0 }
    }

    static func text(_ file: String) -> String { (try? String(contentsOfFile: root + "/" + file, encoding: .utf8)) ?? "" }

    /// GitHub's heading anchors: lower case; letters, digits, spaces, `-` and `_` kept; spaces → `-`.
    static func anchors(_ file: String) -> Set<String> {
        var seen: [String: Int] = [:]
        var out: Set<String> = []
        var inFence = false
        for line in text(file).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inFence.toggle(); continue }
            guard !inFence, line.hasPrefix("#") else { continue }
            let title = line.drop { $0 == "#" }.drop { $0 == " " }
            let slug = String(title.lowercased().unicodeScalars.filter {
                CharacterSet.alphanumerics.contains($0) || $0 == " " || $0 == "-" || $0 == "_"
            }.map { $0 == " " ? "-" : Character($0) })
            let n = seen[slug, default: 0]
            seen[slug] = n + 1
            out.insert(n == 0 ? slug : "\(slug)-\(n)")
        }
        return out
    }

    /// `[text](target)` links outside code fences and inline code.
    static func links(_ file: String) -> [String] {
        var out: [String] = []
        var inFence = false
        let regex = try? NSRegularExpression(pattern: #"\]\(([^)\s]+)\)"#)
        for line in text(file).split(separator: "\n") {
            if line.hasPrefix("```") { inFence.toggle(); continue }
            if inFence { continue }
            let s = String(line)
            for m in regex?.matches(in: s, range: NSRange(s.startIndex..., in: s)) ?? [] {
                if let r = Range(m.range(at: 1), in: s) { out.append(String(s[r])) }
            }
        }
        return out
    }

    @Test("the files exist") func present() { #expect(Self.files.count > 3 && Self.files.allSatisfy { !Self.text($0).isEmpty }) }

    @Test("every relative link and anchor resolves", arguments: files)
    func linksResolve(_ file: String) {
        let dir = (file as NSString).deletingLastPathComponent
        for link in Self.links(file) where !link.contains("://") && !link.hasPrefix("mailto:") {
            let parts = link.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let target = parts[0].isEmpty ? file : ((dir.isEmpty ? "" : dir + "/") + parts[0])
            let normalized = (target as NSString).standardizingPath
            #expect(FileManager.default.fileExists(atPath: Self.root + "/" + normalized), "\(file): link \(link): \(normalized) does not exist")
            if parts.count == 2, normalized.hasSuffix(".md") {
                #expect(Self.anchors(normalized).contains(parts[1]), "\(file): link \(link): no heading #\(parts[1]) in \(normalized)")
            }
        }
    }

    @Test("every markdown file named in the prose exists in the project", arguments: files)
    func namedFilesExist(_ file: String) throws {
        let regex = try NSRegularExpression(pattern: #"\b([A-Za-z0-9_./-]+\.md)\b"#)
        let s = Self.text(file)
        for m in regex.matches(in: s, range: NSRange(s.startIndex..., in: s)) {
            guard let r = Range(m.range(at: 1), in: s) else { continue }
            let name = String(s[r])
            let dir = (file as NSString).deletingLastPathComponent
            let candidates = [name, (dir.isEmpty ? "" : dir + "/") + name, "docs/" + (name as NSString).lastPathComponent]
            #expect(candidates.contains { FileManager.default.fileExists(atPath: Self.root + "/" + ($0 as NSString).standardizingPath) },
                    "\(file) names \(name), which is not in the project")
        }
    }

    @Test("no table is split by a blank line (the rows after it would not render)", arguments: files)
    func tablesContiguous(_ file: String) {
        let lines = Self.text(file).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for i in lines.indices.dropFirst().dropLast() where lines[i].trimmingCharacters(in: .whitespaces).isEmpty {
            let before = lines[i - 1], after = lines[i + 1]
            let continues = before.hasPrefix("|") && after.hasPrefix("|") && !after.contains("---")
                && !(i + 2 < lines.count && lines[i + 2].hasPrefix("|---"))
            #expect(!continues, "\(file):\(i + 1): a blank line inside a table; the rows below it do not render")
        }
    }

    @Test("the effects documented in governance.md are the ones lanes accepts")
    func effectsDocumented() {
        let doc = Self.text("docs/governance.md")
        for (effect, _) in InputSyntax.effects { #expect(doc.contains("| `\(effect)` |"), "\(effect) is not documented") }
    }
}
