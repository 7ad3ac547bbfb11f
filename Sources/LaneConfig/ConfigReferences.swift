import LaneModel

/// The references between configuration files that `lanes check` resolves: a lane names a
/// profile, which must exist (next to the lane's `Lanes/`, in `Profiles/`) and be valid; and a
/// profile's limits must fit under the host's hard limits (where that is knowable: the caller
/// passes them).
public enum ConfigReferences {
    /// Problems of `lane` (parsed from `laneFile`, whose text is `text`) with what it refers to.
    /// `profiles` is the Profiles/ directory the lane is resolved against.
    public static func check(lane: Lane, laneFile: String, text: String, profiles: String,
                             parser: ProfileParser) -> [ConfigDiagnostic] {
        let line = lineOf(key: "profile", in: text)
        let file = profiles + "/" + lane.profile + ".toml"
        guard isSafeName(lane.profile), let profileText = readTextFile(file) else {
            let known = listDirectory(profiles).filter { $0.hasSuffix(".toml") }.map { String($0.dropLast(5)) }.sorted()
            return [ConfigDiagnostic(file: laneFile, line: line, keyPath: "profile",
                                     message: "no profile named \"\(lane.profile)\" in \(profiles); profiles there: \(known.isEmpty ? "none" : known.joined(separator: ", "))")]
        }
        do {
            _ = try parser.parse(name: lane.profile, file: file, text: profileText)
            return []
        } catch {
            return [ConfigDiagnostic(file: laneFile, line: line, keyPath: "profile",
                                     message: "profile \"\(lane.profile)\" (\(file)) is invalid: \(error.diagnostics.first?.description ?? "")")]
        }
    }

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
