import Foundation
import LaneModel
import LaneSys
import LaneSyscall

/// The cgroup driver of a long-lived `StepService`: the host is probed once, at the first step
/// that runs (mountinfo, /proc/self/cgroup and the controllers: about 0.4 ms of every warm step
/// before; a replay never probes), and the sweep
/// for groups that dead supervisors left behind, which lists every step group on the host, runs
/// on the first step and then at most once per `sweepInterval`. A group this process could not
/// remove is retried by that sweep (or by the next `lanes` process).
final class WarmCgroupDriver: CgroupDriver, @unchecked Sendable {
    private let probe: @Sendable () -> any CgroupDriver
    private let sweepInterval: Double
    private let lock = NSLock()
    private var probed: (any CgroupDriver)?
    private var lastSweep: Double?

    init(sweepInterval: Double = 30, probe: @escaping @Sendable () -> any CgroupDriver = { Cgroups.driver() }) {
        self.probe = probe
        self.sweepInterval = sweepInterval
    }

    private var base: any CgroupDriver {
        lock.withLock {
            if let probed { return probed }
            let driver = probe()
            probed = driver
            return driver
        }
    }

    var backend: CgroupBackend { base.backend }
    var report: CgroupReport { base.report }
    var enforceable: CgroupResources { base.enforceable }
    func whyMissing(_ resource: CgroupResource) -> String { base.whyMissing(resource) }
    func createStep(limits: CgroupLimits) throws(LanesError) -> any StepCgroup { try base.createStep(limits: limits) }

    @discardableResult func removeStale() -> [String] {
        let now = MonotonicClock.seconds()
        let due = lock.withLock {
            if let last = lastSweep, now - last < sweepInterval { return false }
            lastSweep = now
            return true
        }
        return due ? base.removeStale() : []
    }
}
