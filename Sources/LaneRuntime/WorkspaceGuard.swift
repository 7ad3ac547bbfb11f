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

    private struct HomesKey: Equatable { let passwd: [UInt64]; let home: String? }
    private static let homesCache = KeyedCache<HomesKey, [String]>()

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

/// One value, recomputed when its key changes. Thread-safe.
final class KeyedCache<Key: Equatable & Sendable, Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var entry: (key: Key, value: Value)?

    func value(for key: Key, compute: () -> Value) -> Value {
        if let hit = lock.withLock({ entry.flatMap { $0.key == key ? $0.value : nil } }) { return hit }
        let value = compute()
        lock.withLock { entry = (key, value) }
        return value
    }
}
