import LaneModel

/// `Profiles/NAME.toml` → `Profile`, strictly (see docs/configuration.md for every key).
public struct ProfileParser {
    /// Says whether a syscall name exists (injected: libseccomp lives in LaneSys).
    public var knownSyscall: (String) -> Bool

    public init(knownSyscall: @escaping (String) -> Bool = { _ in true }) {
        self.knownSyscall = knownSyscall
    }

    /// Parses one profile; throws every problem found.
    public func parse(name: String, file: String, text: String) throws(ConfigErrors) -> Profile {
        let (loaded, syntaxError) = TOMLSource.load(file: file, text: text)
        guard let source = loaded else { throw ConfigErrors(syntaxError.map { [$0] } ?? []) }
        let root = TableReader(source: source)
        var profile = Profile(name: name)
        profile.description = root.string("description") ?? ""

        if let fs = root.table("filesystem") {
            if let w = fs.string("workspace", allowed: ["read-only", "read-write"]) {
                profile.filesystem.workspace = Profile.Filesystem.Access(rawValue: w) ?? .readWrite
            }
            profile.filesystem.readOnly = absolutePaths(fs, "read_only")
            profile.filesystem.readWrite = absolutePaths(fs, "read_write")
            let protected = fs.strings("protected") ?? []
            for path in protected where !isRelativeClean(path) {
                fs.error("protected", "expected a workspace-relative path (no leading /, no `.` or `..`), found \"\(path)\"")
            }
            profile.filesystem.protected = protected.filter(isRelativeClean)
            if let t = fs.table("tmpfs") {
                var mounts: [Profile.Tmpfs] = []
                for path in t.table.keys.sorted() {
                    t.markKnown(path)
                    if !isAbsoluteClean(path) { t.error(path, "expected an absolute path without `..`, found \"\(path)\"") }
                    if let size = t.quantity(path, units: Units.bytes, what: "a size") {
                        mounts.append(.init(path: path, sizeBytes: UInt64(size)))
                    }
                }
                profile.filesystem.tmpfs = mounts
                fs.finish(t)
            }
            ChangeKeysParser.parseProfile(fs, into: &profile.filesystem)
            root.finish(fs)
        }
        if let net = root.table("network") {
            if let mode = net.string("mode", allowed: ["none"]) { profile.network.mode = .init(rawValue: mode) ?? .none }
            root.finish(net)
        }
        if let sc = root.table("seccomp") {
            if let a = sc.string("default_action", allowed: ["errno", "kill"]) { profile.seccomp.defaultAction = .init(rawValue: a) ?? .errno }
            profile.seccomp.allow = sc.strings("allow") ?? []
            profile.seccomp.deny = sc.strings("deny") ?? []
            // The same rules the compiler applies at `lanes run`, so `lanes check` agrees.
            for problem in SeccompRules.problems(allow: profile.seccomp.allow, deny: profile.seccomp.deny, known: knownSyscall) {
                sc.error(problem.key, problem.message)
            }
            root.finish(sc)
        }
        if let lim = root.table("limits") {
            var l = profile.limits
            if let v = lim.quantity("wall_clock", units: Units.seconds, what: "a duration") { l.wallSeconds = v }
            if let v = lim.quantity("cpu", units: Units.seconds, what: "a duration") { l.cpuSeconds = UInt64(v.rounded(.up)) }
            if let v = lim.quantity("open_files", units: Units.count, what: "a count") { l.openFiles = UInt64(v) }
            if let v = lim.quantity("file_size", units: Units.bytes, what: "a size") { l.fileSizeBytes = UInt64(v) }
            if let v = lim.quantity("processes", units: Units.count, what: "a count") { l.processes = UInt64(v) }
            if let v = lim.quantity("output", units: Units.bytes, what: "a size") { l.outputBytes = UInt64(v) }
            if let v = lim.quantity("kill_grace", units: Units.seconds, what: "a duration") { l.killGraceSeconds = v }
            if l.wallSeconds <= 0 { lim.error("wall_clock", "expected a duration > 0") }
            // Known before any step runs: below the minimum lane-init cannot make the tool's
            // pipe (run refuses at stage "pipe"); above the kernel's ceiling no host can set it.
            if lim.table["open_files"] != nil && !Profile.Limits.openFilesRange.contains(l.openFiles) {
                lim.error("open_files", "expected a count from \(Profile.Limits.openFilesRange.lowerBound) (lane-init and the tool's stdio need them) to \(Profile.Limits.openFilesRange.upperBound) (the kernel's ceiling), found \(l.openFiles)")
            }
            // cgroup limits (see docs/cgroups.md): enforced per step, or the step is refused.
            if let v = lim.quantity("memory", units: Units.bytes, what: "a size") {
                if v < 4 * 1_048_576 { lim.error("memory", "expected a size of at least 4M (the sandbox's own processes need it)") } else { l.memoryBytes = UInt64(v) }
            }
            if let v = lim.quantity("pids", units: Units.count, what: "a count") {
                if v < 4 || v != v.rounded() { lim.error("pids", "expected a whole number ≥ 4 (PID 1 of the sandbox and the tool count too)") } else { l.pids = UInt64(v) }
            }
            if let v = lim.quantity("cpu_fraction", units: Units.count, what: "a fraction of cores") {
                if v < 0.01 { lim.error("cpu_fraction", "expected a fraction of cores ≥ 0.01 (0.5 = half a core, 2 = two cores)") } else { l.cpuFraction = v }
            }
            if let names = lim.strings("optional") {
                let set: [String: Bool] = ["memory": l.memoryBytes != nil, "pids": l.pids != nil, "cpu_fraction": l.cpuFraction != nil]
                for name in names {
                    guard let isSet = set[name] else {
                        lim.error("optional", "expected cgroup limit names (\"memory\", \"pids\", \"cpu_fraction\"), found \"\(name)\""); continue
                    }
                    if !isSet { lim.error("optional", "\"\(name)\" is marked optional but limits.\(name) is not set") }
                }
                l.optional = names
            }
            profile.limits = l
            root.finish(lim)
        }
        if let env = root.table("environment") {
            var vars: [String: String] = [:]
            for key in env.table.keys.sorted() {
                if !isEnvironmentName(key) { env.error(key, "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), found \"\(key)\"") }
                if let value = env.string(key) { vars[key] = value }
            }
            if vars["PATH"] == nil { vars["PATH"] = Profile.defaultEnvironment["PATH"] }
            profile.environment = vars
            root.finish(env)
        }
        root.reportUnknown()
        let all = root.diagnostics + (syntaxError.map { [$0] } ?? [])
        if !all.isEmpty { throw ConfigErrors(all.sorted { ($0.line ?? 0) < ($1.line ?? 0) }) }
        return profile
    }

    private func absolutePaths(_ reader: TableReader, _ key: String) -> [String] {
        let paths = reader.strings(key) ?? []
        for path in paths where !isAbsoluteClean(path) {
            reader.error(key, "expected an absolute path without `..`, found \"\(path)\"")
        }
        return paths.filter(isAbsoluteClean)
    }
}

/// An absolute path with no empty, `.` or `..` component (binds are never relative).
/// A relative path without empty, `.` or `..` components.
public func isRelativeClean(_ path: String) -> Bool {
    !path.isEmpty && !path.hasPrefix("/") && !path.split(separator: "/", omittingEmptySubsequences: false)
        .contains { $0.isEmpty || $0 == "." || $0 == ".." }
}

public func isAbsoluteClean(_ path: String) -> Bool {
    guard path.hasPrefix("/") else { return false }
    if path == "/" { return true }
    let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
    return !parts.contains { $0.isEmpty || $0 == "." || $0 == ".." }
}

func isEnvironmentName(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
    return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
}
