import Glibc
import LaneModel
import LaneSyscall

/// Where profiles and lanes are found, in this order: `--config DIR` or `LANES_CONFIG` (a
/// directory holding Profiles/ and Lanes/); else `./Profiles` + `./Lanes`; else
/// `$XDG_CONFIG_HOME/lanes` (default `~/.config/lanes`); else `/etc/lanes`; else the ones
/// installed with the package.
public struct ConfigStore: Sendable {
    /// The directory holding Profiles/ and Lanes/.
    public let root: String
    /// How it was chosen (for `lanes doctor` and error messages).
    public let origin: String

    public init(root: String, origin: String) {
        self.root = root
        self.origin = origin
    }

    /// Picks the configuration directory. `installed` is the package's own copy, if known.
    public static func locate(explicit: String?, environment: (String) -> String?, cwd: String, installed: String?) -> ConfigStore? {
        if let explicit { return ConfigStore(root: explicit, origin: "--config") }
        if let env = environment("LANES_CONFIG"), !env.isEmpty { return ConfigStore(root: env, origin: "LANES_CONFIG") }
        if isDirectory(cwd + "/Profiles") && isDirectory(cwd + "/Lanes") { return ConfigStore(root: cwd, origin: "current directory") }
        let xdg = environment("XDG_CONFIG_HOME").flatMap { $0.isEmpty ? nil : $0 } ?? environment("HOME").map { $0 + "/.config" }
        if let xdg, isDirectory(xdg + "/lanes") { return ConfigStore(root: xdg + "/lanes", origin: "XDG_CONFIG_HOME") }
        if isDirectory("/etc/lanes") { return ConfigStore(root: "/etc/lanes", origin: "/etc/lanes") }
        if let installed, isDirectory(installed + "/Profiles") { return ConfigStore(root: installed, origin: "installed with lanes") }
        return nil
    }

    public var profilesDirectory: String { root + "/Profiles" }
    public var lanesDirectory: String { root + "/Lanes" }

    public func profileFile(_ name: String) -> String { profilesDirectory + "/" + name + ".toml" }
    public func laneFile(_ name: String) -> String { lanesDirectory + "/" + name + ".toml" }

    /// Names of the profiles and lanes present.
    public func profileNames() -> [String] { tomlNames(profilesDirectory) }
    public func laneNames() -> [String] { tomlNames(lanesDirectory) }

    /// Loads a lane and its profile, with every problem of both files.
    public func load(lane name: String, parser: ProfileParser) throws(ConfigErrors) -> (Lane, Profile) {
        let loaded = try loadWithSources(lane: name, parser: parser)
        return (loaded.lane, loaded.profile)
    }

    /// `load`, and the two files' texts exactly as they were parsed (the compiled configuration
    /// cache keys its entries by them).
    public func loadWithSources(lane name: String, parser: ProfileParser) throws(ConfigErrors)
        -> (lane: Lane, profile: Profile, laneText: String, profileText: String) {
        guard isSafeName(name) else {
            throw ConfigErrors([ConfigDiagnostic(file: "<command line>", line: nil, keyPath: "", message: "invalid lane name \"\(name)\": expected letters, digits, '-', '_' or '.'")])
        }
        let laneFile = self.laneFile(name)
        guard let text = readTextFile(laneFile) else {
            let known = laneNames().joined(separator: ", ")
            throw ConfigErrors([ConfigDiagnostic(file: laneFile, line: nil, keyPath: "", message: "no lane named \"\(name)\" in \(lanesDirectory) (\(origin)); lanes here: \(known.isEmpty ? "none" : known)")])
        }
        let lane = try LaneParser().parse(name: name, file: laneFile, text: text)
        let (profileFile, profileText) = try profileSource(of: lane, laneFile: laneFile, laneText: text)
        var profile = try parser.parse(name: lane.profile, file: profileFile, text: profileText)
        // A lane may add to its profile's allow-list; the merged list is what the step's
        // policy, fingerprint and intent carry.
        if !lane.networkAllow.isEmpty {
            guard profile.network.mode == .proxy else {
                throw ConfigErrors([ConfigDiagnostic(file: laneFile, line: nil, keyPath: "network.allow", message: "expected a profile with [network] mode = \"proxy\", found profile \"\(lane.profile)\" with mode \"\(profile.network.mode.rawValue)\"")])
            }
            profile.network.allow += lane.networkAllow
        }
        return (lane, profile, text, profileText)
    }

    /// The file and text of a lane's profile, or the `FILE:LINE:` error `lanes run` and
    /// `lanes check` both report when the lane names a profile that is not there.
    public func profileSource(of lane: Lane, laneFile: String, laneText: String) throws(ConfigErrors) -> (file: String, text: String) {
        let profileFile = self.profileFile(lane.profile)
        guard isSafeName(lane.profile), let profileText = readTextFile(profileFile) else {
            let line = TOMLSource.load(file: laneFile, text: laneText).0?.line(of: ["profile"])
            throw ConfigErrors([ConfigDiagnostic(file: laneFile, line: line, keyPath: "profile", message: "no profile named \"\(lane.profile)\" in \(profilesDirectory); profiles here: \(profileNames().joined(separator: ", "))")])
        }
        return (profileFile, profileText)
    }

    private func tomlNames(_ dir: String) -> [String] {
        listDirectory(dir).filter { $0.hasSuffix(".toml") }.map { String($0.dropLast(5)) }.sorted()
    }
}

/// A lane or profile name that is also a safe file name: ASCII letters, digits, `-`, `_`, `.`,
/// not starting with a dot.
public func isSafeName(_ name: String) -> Bool {
    !name.isEmpty && !name.hasPrefix(".") && name.unicodeScalars.allSatisfy {
        $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == ".")
    }
}

/// Whether `path` is a directory (following links).
public func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

/// The entries of a directory, or [] when it cannot be read.
public func listDirectory(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// A whole file as UTF-8 text, or nil when it cannot be read.
public func readTextFile(_ path: String) -> String? {
    readWholeFile(path).map { String(decoding: $0, as: UTF8.self) }
}
