import LaneModel

/// Where the state directory (journal, secrets, policy cache) lives: a pure decision over facts
/// about the host, so every branch is unit-tested without touching the file system.
///
/// Order (docs/journal.md, "Where state lives"):
/// 1. `--state DIR`;
/// 2. `LANES_STATE`;
/// 3. `$XDG_STATE_HOME/lanes` (absolute `XDG_STATE_HOME` only, as the XDG spec says);
/// 4. `/var/lib/lanes` for root;
/// 5. `$HOME/.local/state/lanes` when `HOME` is usable: absolute, and the nearest existing
///    directory on the way there is one this user can write (a service account's
///    `/nonexistent` or a read-only `/` is not);
/// 6. `/run/user/UID/lanes` when `/run/user/UID` exists and belongs to this user (systemd's
///    per-user runtime directory: private, but emptied at logout);
/// 7. `/var/tmp/lanes-UID`, created 0700; an existing one must belong to this user and must
///    not be group- or world-writable (`/var/tmp` is shared: anyone may have created it first).
///
/// A fallback (6 or 7) comes with a one-line notice the CLI prints on stderr.
public enum StateLocation {
    /// What the decision needs to know about one path.
    public struct PathFacts: Sendable, Equatable {
        public var isDirectory: Bool
        public var owner: UInt32
        public var mode: UInt32
        public init(isDirectory: Bool, owner: UInt32, mode: UInt32) {
            self.isDirectory = isDirectory
            self.owner = owner
            self.mode = mode
        }
    }

    /// The host as the decision sees it.
    public struct Host {
        public var environment: [String: String]
        public var uid: UInt32
        /// lstat(2) of a path, nil when it does not exist.
        public var facts: (String) -> PathFacts?
        /// access(2) W_OK|X_OK for this user.
        public var writable: (String) -> Bool
        public init(environment: [String: String], uid: UInt32, facts: @escaping (String) -> PathFacts?,
                    writable: @escaping (String) -> Bool) {
            self.environment = environment
            self.uid = uid
            self.facts = facts
            self.writable = writable
        }
    }

    /// Which rule chose the directory.
    public enum Source: String, Sendable, Equatable {
        case option = "--state", environment = "LANES_STATE", xdg = "XDG_STATE_HOME", system = "/var/lib/lanes (root)"
        case home = "HOME", runtime = "/run/user/UID", shared = "/var/tmp"
    }

    /// The chosen directory.
    public struct Choice: Sendable, Equatable {
        public var path: String
        public var source: Source
        /// The line to print on stderr when a fallback was taken, nil otherwise.
        public var notice: String?
        /// Whether the caller must create it 0700 itself and re-check it belongs to this user
        /// (a shared parent: another user may race to create it).
        public var mustVerifyOwnership: Bool
    }

    /// The decision. Fails only when the last resort exists and belongs to someone else or is
    /// open to others; the message says what to do.
    public static func resolve(explicit: String?, host: Host) -> Result<Choice, InputError> {
        if let explicit, !explicit.isEmpty { return .success(Choice(path: explicit, source: .option, notice: nil, mustVerifyOwnership: false)) }
        if let s = host.environment["LANES_STATE"], !s.isEmpty {
            return .success(Choice(path: s, source: .environment, notice: nil, mustVerifyOwnership: false))
        }
        if let x = host.environment["XDG_STATE_HOME"], x.hasPrefix("/") {
            return .success(Choice(path: join(x, "lanes"), source: .xdg, notice: nil, mustVerifyOwnership: false))
        }
        if host.uid == 0 { return .success(Choice(path: "/var/lib/lanes", source: .system, notice: nil, mustVerifyOwnership: false)) }
        let home = host.environment["HOME"] ?? ""
        let why: String
        if !home.hasPrefix("/") {
            why = home.isEmpty ? "HOME is not set" : "HOME (\(home)) is not an absolute path"
        } else {
            let wanted = join(home, ".local/state/lanes")
            let anchor = nearestExisting(wanted, host: host)
            if let facts = anchor.facts, facts.isDirectory, host.writable(anchor.path) {
                return .success(Choice(path: wanted, source: .home, notice: nil, mustVerifyOwnership: false))
            }
            why = anchor.path == "/" && host.facts(home) == nil
                ? "HOME (\(home)) does not exist"
                : "\(anchor.path) is not a directory this user can write"
        }
        let runtime = "/run/user/\(host.uid)"
        if let facts = host.facts(runtime), facts.isDirectory, facts.owner == host.uid {
            let path = runtime + "/lanes"
            return .success(Choice(path: path, source: .runtime, mustVerifyOwnership: false,
                                   notice: "lanes: \(why); the state directory is \(path) (emptied at logout; set LANES_STATE or XDG_STATE_HOME to keep it)"))
        }
        let shared = "/var/tmp/lanes-\(host.uid)"
        if let facts = host.facts(shared) {
            if !facts.isDirectory || facts.owner != host.uid {
                return .failure(InputError("\(why), and \(shared) exists but \(facts.isDirectory ? "belongs to uid \(facts.owner)" : "is not a directory"); refusing to keep the journal there (set LANES_STATE or --state to a private directory)"))
            }
            if facts.mode & 0o022 != 0 {
                return .failure(InputError("\(why), and \(shared) is writable by others (mode \(String(facts.mode & 0o7777, radix: 8))); refusing to keep the journal there (set LANES_STATE or --state to a private directory)"))
            }
        }
        return .success(Choice(path: shared, source: .shared, mustVerifyOwnership: true,
                               notice: "lanes: \(why); the state directory is \(shared) (set LANES_STATE or XDG_STATE_HOME to choose another)"))
    }

    /// The path itself or its closest existing ancestor, with that one's facts.
    static func nearestExisting(_ path: String, host: Host) -> (path: String, facts: PathFacts?) {
        var p = path
        while true {
            if let f = host.facts(p) { return (p, f) }
            if p == "/" || p.isEmpty { return ("/", nil) }
            p = parent(p)
        }
    }

    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    static func join(_ dir: String, _ name: String) -> String { dir.hasSuffix("/") ? dir + name : dir + "/" + name }
}

extension StateLocation.Choice {
    init(path: String, source: StateLocation.Source, mustVerifyOwnership: Bool, notice: String) {
        self.init(path: path, source: source, notice: notice, mustVerifyOwnership: mustVerifyOwnership)
    }
}
