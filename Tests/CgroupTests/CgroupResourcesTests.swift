import LaneSys
import Testing

/// `CgroupResources`, the bit set of the resources a step's limits need and a host enforces.
@Suite struct CgroupResourcesTests {
    @Test func limitsNeedTheirResourcesAndRemovingDropsTheirValues() {
        let limits = CgroupLimits(memoryBytes: 1 << 20, pids: 64, cpuFraction: nil)
        #expect(limits.resources == [.memory, .pids])
        #expect(limits.resources.members == [.memory, .pids])
        #expect(limits.resources.contains(CgroupResource.pids) && !limits.resources.contains(CgroupResource.cpuFraction))
        let missing = limits.resources.subtracting([.pids, .cpuFraction])
        #expect(missing.members == [.memory])
        let left = limits.removing(missing)
        #expect(left.memoryBytes == nil && left.pids == 64 && left.cpuFraction == nil)
        #expect(left.resources == .pids)
    }

    @Test func everyResourceHasItsOwnBit() {
        #expect(CgroupResources.all.members == CgroupResource.allCases)
        for r in CgroupResource.allCases {
            #expect(CgroupResources(r).members == [r])
            #expect(CgroupResources(members: [r]) == CgroupResources(r))
        }
        #expect(CgroupResources(members: []).isEmpty && CgroupResources(members: []).members.isEmpty)
        #expect(CgroupLimits().resources.isEmpty)
    }
}
