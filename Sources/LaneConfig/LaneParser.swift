import LaneModel

/// `Lanes/NAME.toml` → `Lane`, strictly.
public struct LaneParser {
    public init() {}

    public func parse(name: String, file: String, text: String) throws(ConfigErrors) -> Lane {
        let (loaded, syntaxError) = TOMLSource.load(file: file, text: text)
        guard let source = loaded else { throw ConfigErrors(syntaxError.map { [$0] } ?? []) }
        let root = TableReader(source: source)
        let description = root.string("description")
        let owner = root.string("owner")
        let profile = root.string("profile")
        let workspace = root.string("workspace")
        let writable = root.strings("writable") ?? []
        if description == nil { root.error("description", "missing: say what this lane is for") }
        if owner == nil { root.error("owner", "missing: name the person or team who answers for this lane") }
        if profile == nil { root.error("profile", "missing: name a profile from Profiles/") }
        if let workspace, !isAbsoluteClean(workspace) {
            root.error("workspace", "expected an absolute path without `..`, found \"\(workspace)\"")
        }
        for dir in writable where dir.hasPrefix("/") || dir.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) || dir.isEmpty {
            root.error("writable", "expected a path inside the workspace (relative, no `..`), found \"\(dir)\"")
        }
        let retry = root.string("retry", allowed: ["never", "safe"]).flatMap(Lane.Retry.init(rawValue:)) ?? .never
        let socketGroup = root.string("socket_group")
        if let g = socketGroup, !Self.isGroupName(g) {
            root.error("socket_group", "expected a group name ([a-z_][a-z0-9_-]*, at most 32 characters), found \"\(g)\"")
        }
        var credentials: [Lane.Credential] = []
        if let t = root.table("credentials") {
            for key in t.table.keys.sorted() {
                guard Lane.Credential.isVariableName(key) else {
                    t.markKnown(key)
                    t.error(key, "a credential name must be a valid variable name ([A-Za-z_][A-Za-z0-9_]*)")
                    continue
                }
                guard let entry = t.table(key) else { continue }
                let from = entry.string("from")
                let delivery = entry.string("as", allowed: ["env", "file"]).flatMap(Lane.Credential.Delivery.init(rawValue:))
                if from == nil { entry.error("from", "missing: say where the value comes from (\"secret:NAME\", \"env:VAR\" or \"file:/PATH\")") }
                if entry.table["as"] == nil { entry.error("as", "missing: \"env\" or \"file\"") }
                let source = from.flatMap(Lane.Credential.Source.parse)
                if let from, source == nil {
                    entry.error("from", "expected \"secret:NAME\", \"env:VAR\" or \"file:/ABSOLUTE/PATH\", found \"\(from)\"")
                }
                if let source, let delivery { credentials.append(.init(name: key, source: source, delivery: delivery)) }
                t.finish(entry)
            }
            root.finish(t)
        }
        var unprotected: [String: String] = [:]
        if let t = root.table("unprotect") {
            for key in t.table.keys.sorted() {
                guard isRelativeClean(key) else {
                    t.markKnown(key)
                    t.error(key, "expected a workspace-relative path from the profile's filesystem.protected, found \"\(key)\"")
                    continue
                }
                let reason = t.string(key)
                if let reason, reason.allSatisfy(\.isWhitespace) {
                    t.error(key, "expected the reason this lane may write it, found an empty string")
                } else if let reason { unprotected[key] = reason }
            }
            root.finish(t)
        }
        var networkAllow: [EgressRule] = []
        if let net = root.table("network") {
            networkAllow = parseEgressRules(net, "allow")
            root.finish(net)
        }
        var governance = Lane(name: name, description: "", owner: "", profile: "")
        GovernanceParser.parse(root, into: &governance)
        ChangeKeysParser.parseLane(root, into: &governance)
        root.reportUnknown()
        let all = root.diagnostics + (syntaxError.map { [$0] } ?? [])
        if !all.isEmpty { throw ConfigErrors(all.sorted { ($0.line ?? 0) < ($1.line ?? 0) }) }
        var lane = Lane(name: name, description: description ?? "", owner: owner ?? "", profile: profile ?? "",
                        workspace: workspace, writable: writable, retry: retry, credentials: credentials)
            .governed(like: governance).allowing(networkAllow).withSocketGroup(socketGroup)
        lane.unprotected = unprotected
        return lane
    }

    /// A POSIX-portable group name.
    static func isGroupName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, s.unicodeScalars.count <= 32,
              first == "_" || ("a"..."z").contains(first) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || $0 == "-" || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
    }
}

extension Lane {
    func allowing(_ rules: [EgressRule]) -> Lane {
        var l = self
        l.networkAllow = rules
        return l
    }

    /// This lane with the group allowed on `lanes mcp --listen`'s socket.
    func withSocketGroup(_ g: String?) -> Lane {
        var l = self
        l.socketGroup = g
        return l
    }

    /// This lane with the review gates, budget and halt_on of `other`.
    func governed(like other: Lane) -> Lane {
        var l = self
        l.review = other.review
        l.budget = other.budget
        l.haltOn = other.haltOn
        l.writableDirect = other.writableDirect
        l.maxUndoBytes = other.maxUndoBytes
        return l
    }
}
