import LaneModel

/// What `lanes check` knows about a profile beyond its syntax: its limits must fit under the
/// host's hard limits (where that is knowable: the caller passes them). A lane's reference to
/// its profile is resolved by `ConfigStore.profileSource`.
public enum ConfigReferences {
    /// Problems of `profile` on a host whose hard limits are `hard`.
    public static func check(profile: Profile, file: String, text: String, hard: HostLimits.Hard) -> [ConfigDiagnostic] {
        HostLimits.excesses(profile.limits, hard: hard).map { excess in
            let key = String(excess.key.dropFirst("limits.".count))
            return ConfigDiagnostic(file: file, line: lineOf(key: key, in: text), keyPath: excess.key,
                                    message: "cannot be granted on this host: \(excess)")
        }
    }

    /// The 1-based line where `key = …` is written (first match), if any.
    static func lineOf(key: String, in text: String) -> Int? {
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.drop { $0 == " " || $0 == "\t" }
            guard line.hasPrefix(key) else { continue }
            let rest = line.dropFirst(key.count).drop { $0 == " " || $0 == "\t" }
            if rest.hasPrefix("=") { return i + 1 }
        }
        return nil
    }
}
