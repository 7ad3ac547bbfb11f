import Foundation
import LaneConfig
import LaneModel
import LaneSupervisor
import LaneSys

/// Lanes, profiles and compiled policies, kept between steps of one process and reloaded when a
/// file changes. The staleness check is two `stat(2)` calls per step (the lane's file and its
/// profile's): a long-lived front door pays parsing and seccomp compilation once per change.
final class ConfigCache: @unchecked Sendable {
    let store: ConfigStore
    private let policyCache: PolicyCache
    /// The compiled configuration cache on disk (a new process's first load), if any.
    private let compiledFile: CompiledConfigFile?
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]

    struct Entry {
        var lane: Lane
        var compiled: CompiledProfile
        var identity: [FileIdentity]
    }

    /// What identifies a file's content cheaply: device, inode, size, modification time.
    struct FileIdentity: Equatable {
        var device: UInt64, inode: UInt64, size: Int64, modified: timespec
        static func == (a: Self, b: Self) -> Bool {
            a.device == b.device && a.inode == b.inode && a.size == b.size
                && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
        }
        init?(_ path: String) {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            modified = st.st_mtim
        }
    }

    init(store: ConfigStore, policyCache: PolicyCache, compiledFile: CompiledConfigFile? = nil) {
        self.store = store
        self.policyCache = policyCache
        self.compiledFile = compiledFile
    }

    /// The lane, its profile and the compiled policy; errors say `FILE:LINE:` (stage "config")
    /// or name the compile stage.
    func load(lane name: String) throws(LanesError) -> (Lane, CompiledProfile) {
        lock.lock()
        let cached = entries[name]
        lock.unlock()
        if let cached, cached.identity == identity(lane: name, profile: cached.lane.profile) {
            return (cached.lane, cached.compiled)
        }
        // A new process's first load: the compiled entry on disk, when it still matches the files.
        if let (lane, compiled) = compiledFile?.load(lane: name, store: store) {
            return remember(name, lane, compiled)
        }
        let loaded: (lane: Lane, profile: Profile, laneText: String, profileText: String)
        do {
            loaded = try store.loadWithSources(lane: name, parser: ProfileParser(knownSyscall: SeccompCompiler.isKnown))
        } catch {
            throw LanesError(.invalidConfig, stage: "config", error.description)
        }
        let compiled = try CompiledProfile(loaded.profile, cache: policyCache)
        compiledFile?.store(lane: loaded.lane, compiled: compiled, laneText: Array(loaded.laneText.utf8),
                            profileText: Array(loaded.profileText.utf8), store: store)
        return remember(name, loaded.lane, compiled)
    }

    private func remember(_ name: String, _ lane: Lane, _ compiled: CompiledProfile) -> (Lane, CompiledProfile) {
        let entry = Entry(lane: lane, compiled: compiled, identity: identity(lane: name, profile: lane.profile))
        lock.lock()
        entries[name] = entry
        lock.unlock()
        return (lane, compiled)
    }

    private func identity(lane: String, profile: String) -> [FileIdentity] {
        [FileIdentity(store.laneFile(lane)), FileIdentity(store.profileFile(profile))].compactMap { $0 }
    }
}
