/// Whether a workspace would hand the host to a step. The workspace is bound read-write (or
/// read-only) at its own path: `--workspace /` gives the step the whole host file system, and as
/// root that includes /etc/shadow and /root. A pure function over the resolved path and a few
/// facts, so each rule is unit-tested; the list is documented in docs/security.md ("Workspaces
/// that are refused") and only `lanes run --allow-host-workspace` overrides it (recorded in the
/// step's intent).
public enum HostWorkspace {
    /// System trees: the workspace may be neither one of them nor anything inside them.
    public static let systemTrees = [
        "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/dev", "/proc", "/sys",
        "/run", "/snap", "/var/lib", "/var/log", "/var/cache", "/var/spool", "/var/mail", "/var/backups",
    ]

    /// Shared roots: the directory itself is refused (it holds other users' or services' files);
    /// a directory inside it is fine (`/tmp/build`, `/srv/project`).
    public static let sharedRoots = ["/", "/home", "/var", "/var/tmp", "/tmp", "/opt", "/srv", "/mnt", "/media", "/usr/local", "/nix", "/var/www"]

    /// Directories under a home that hold credentials and other programs' configuration and
    /// state: refused, and so is anything inside them.
    public static let homeSecrets = [".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".config", ".local", ".cache",
                                     ".netrc", ".password-store", ".mozilla", ".pki"]

    /// What the check needs to know besides the workspace.
    public struct Context: Sendable {
        /// Home directories of the accounts on this host (from the password database) and the
        /// caller's `HOME`.
        public var homes: [String]
        /// The state directory in use (journal and secrets).
        public var stateDirectory: String?
        /// Lanes' configuration directories in use (`/etc/lanes`, `$XDG_CONFIG_HOME/lanes`, …).
        public var configDirectories: [String]
        public init(homes: [String], stateDirectory: String?, configDirectories: [String]) {
            self.homes = homes
            self.stateDirectory = stateDirectory
            self.configDirectories = configDirectories
        }
    }

    /// nil when `workspace` (absolute, symlinks resolved) is fine; else why it is refused.
    public static func exposure(_ workspace: String, context: Context) -> String? {
        let w = normalized(workspace)
        if let tree = systemTrees.first(where: { isSameOrInside(w, $0) }) {
            return w == tree ? "\(w) is a system directory" : "\(w) is inside the system directory \(tree)"
        }
        if sharedRoots.contains(w) { return "\(w) is a shared directory (use a directory inside it)" }
        for home in Set(context.homes.map(normalized)) where home.hasPrefix("/") && home != "/" {
            if w == home { return "\(w) is a home directory (it holds keys and credentials; use a project directory inside it)" }
            if isSameOrInside(home, w) { return "\(w) contains the home directory \(home)" }
            for secret in homeSecrets where isSameOrInside(w, home + "/" + secret) {
                return "\(w) is inside \(home)/\(secret), which holds credentials or other programs' data"
            }
        }
        if let state = context.stateDirectory.map(normalized), isSameOrInside(w, state) {
            return "\(w) is inside Lanes' state directory \(state) (the journal and secrets)"
        }
        for config in context.configDirectories.map(normalized) where isSameOrInside(w, config) {
            return "\(w) is inside Lanes' configuration directory \(config)"
        }
        return nil
    }

    /// `path` is `dir` or lies under it.
    static func isSameOrInside(_ path: String, _ dir: String) -> Bool {
        dir == "/" || path == dir || path.hasPrefix(dir + "/")
    }

    static func normalized(_ path: String) -> String {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p
    }
}
