import LaneModel

/// `Lanes/NAME.toml` → `Lane`, strictly.
public struct LaneParser {
    public init() {}

    public func parse(name: String, file: String, text: String) throws(ConfigErrors) -> Lane {
        let source: TOMLSource
        do { source = try TOMLSource(file: file, text: text) } catch { throw ConfigErrors([error]) }
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
        for (section, issue) in [("credentials", "credentials"), ("review", "review gates"), ("budget", "budgets")] {
            if let t = root.table(section) {
                for key in t.table.keys {
                    t.markKnown(key)
                    t.error(key, "the [\(section)] section is reserved for \(issue), which this version of Lanes does not support yet; leave it empty")
                }
                root.finish(t)
            }
        }
        root.reportUnknown()
        if !root.diagnostics.isEmpty { throw ConfigErrors(root.diagnostics) }
        return Lane(name: name, description: description ?? "", owner: owner ?? "", profile: profile ?? "",
                    workspace: workspace, writable: writable)
    }
}
