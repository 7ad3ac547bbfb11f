import Foundation
import Glibc
import LaneConfig

/// The host side of `HostWorkspace`: the homes of this host's accounts, the caller's HOME and
/// Lanes' own directories.
enum WorkspaceGuard {
    /// nil when `workspace` (resolved) may be used; else the one-line refusal.
    static func refusal(_ workspace: String, state: String, allowHost: Bool) -> String? {
        guard !allowHost else { return nil }
        var configs = ["/etc/lanes"]
        if let xdg = Paths.environment("XDG_CONFIG_HOME"), xdg.hasPrefix("/") { configs.append(xdg + "/lanes") }
        let context = HostWorkspace.Context(homes: homes(), stateDirectory: Paths.resolve(state) ?? state,
                                            configDirectories: configs.map { Paths.resolve($0) ?? $0 })
        guard let why = HostWorkspace.exposure(workspace, context: context) else { return nil }
        return "\(why); refusing to expose the host to the step (see docs/security.md; --allow-host-workspace overrides)"
    }

    /// `homes()`, kept while /etc/passwd and HOME stay the same: a warm server checks every
    /// step's workspace, and resolving every account's home was about 0.2 ms of each.
    static func homes() -> [String] {
        var st = stat()
        let passwd = stat("/etc/passwd", &st) == 0
            ? [UInt64(st.st_dev), UInt64(st.st_ino), UInt64(st.st_size), UInt64(st.st_mtim.tv_sec), UInt64(st.st_mtim.tv_nsec)] : []
        let key = HomesKey(passwd: passwd, home: Paths.environment("HOME"))
        return homesCache.value(for: key) { readHomes() }
    }

    struct HomesKey: Equatable { let passwd: [UInt64]; let home: String? }
    private static let homesCache = HomesCache()

    /// Every account's home directory (field 6 of /etc/passwd) and HOME, symlinks resolved
    /// where they exist. /etc/passwd is read directly, not through getpwent(3): in the static
    /// release binary NSS would dlopen the host's libnss modules (glibc warns at link time).
    static func readHomes() -> [String] {
        var out: [String] = []
        if let home = Paths.environment("HOME"), home.hasPrefix("/") { out.append(home) }
        if let passwd = readTextFile("/etc/passwd") {
            for line in passwd.split(separator: "\n") {
                let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                if fields.count >= 6, fields[5].hasPrefix("/") { out.append(String(fields[5])) }
            }
        }
        return out.flatMap { [$0, Paths.resolve($0)].compactMap { $0 } }
    }
}

/// The homes, recomputed when their key changes. Thread-safe. Not generic on purpose: a generic
/// class constrained to `Equatable` made the Swift runtime scan the static binary's protocol
/// conformances on first use, ~70 µs of every `lanes run` (docs/benchmarks.md, stop 11).
final class HomesCache: @unchecked Sendable {
    private let lock = NSLock()
    private var key: WorkspaceGuard.HomesKey?
    private var homes: [String] = []

    func value(for key: WorkspaceGuard.HomesKey, compute: () -> [String]) -> [String] {
        if let hit = lock.withLock({ self.key == key ? homes : nil }) { return hit }
        let value = compute()
        lock.withLock { (self.key, homes) = (key, value) }
        return value
    }
}
