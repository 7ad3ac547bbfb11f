import CLaneSys
import Glibc
import LaneModel
import LanePlan

extension HostLimits {
    /// This process's hard limits (what a step's lane-init inherits and cannot exceed).
    public static func current() -> Hard {
        func hard(_ resource: __rlimit_resource) -> UInt64? {
            var rl = rlimit()
            guard getrlimit(__rlimit_resource_t(resource.rawValue), &rl) == 0, rl.rlim_max != rlim_t.max else { return nil }
            return UInt64(rl.rlim_max)
        }
        return Hard(openFiles: hard(RLIMIT_NOFILE), fileSizeBytes: hard(RLIMIT_FSIZE), cpuSeconds: hard(RLIMIT_CPU),
                    processes: hard(__RLIMIT_NPROC))
    }

    /// Refuses, before anything is spawned, a profile whose rlimits this process cannot grant
    /// (the "rlimits" stage of lane_stages.h, naming the rlimit, the profile key and the host's
    /// hard limit: the message lane-init's own setrlimit failure would give, but before the spawn).
    static func require(_ profile: Profile, hard: Hard = current()) throws(LanesError) {
        let excess = excesses(profile.limits, hard: hard)
        guard !excess.isEmpty else { return }
        throw LanesError(.unsupported, stage: SetupStage(LANE_STAGE_RLIMITS).name,
                         excess.map(\.description).joined(separator: "; ") + " (profile \(profile.name))")
    }
}
