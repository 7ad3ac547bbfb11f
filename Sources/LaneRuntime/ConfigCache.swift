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

    init(store: ConfigStore, policyCache: PolicyCache) {
        self.store = store
        self.policyCache = policyCache
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
        let (lane, profile): (Lane, Profile)
        do {
            (lane, profile) = try store.load(lane: name, parser: ProfileParser(knownSyscall: SeccompCompiler.isKnown))
        } catch {
            throw LanesError(.invalidConfig, stage: "config", error.description)
        }
        let compiled = try CompiledProfile(profile, cache: policyCache)
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
