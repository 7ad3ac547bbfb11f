import Foundation
import LaneModel
import LaneSupervisor
import LaneSys
import Testing

@Suite("Compiled policy cache")
struct PolicyCacheTests {
    @Test("a profile's seccomp program is compiled once, reused, and recompiled when the entry is damaged")
    func cache() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-cache-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = PolicyCache(directory: dir + "/policy-cache")
        let policy = Profile.Seccomp()
        let fresh = try SeccompCompiler.compile(policy)
        #expect(try cache.filter(for: policy) == fresh)
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir + "/policy-cache")
        #expect(entries.count == 1 && entries[0].hasSuffix(".bpf"))
        // A hit returns what is stored: prove it by planting a different (valid-sized) program.
        let path = dir + "/policy-cache/" + entries[0]
        let planted = [UInt8](repeating: 6, count: 16)
        try Data(planted).write(to: URL(fileURLWithPath: path))
        #expect(try cache.filter(for: policy) == planted)
        // A damaged entry (not whole instructions) is ignored and replaced.
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        #expect(try cache.filter(for: policy) == fresh)
        // Another policy gets another entry.
        _ = try cache.filter(for: Profile.Seccomp(defaultAction: .kill))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/policy-cache").filter { $0.hasSuffix(".bpf") }.count == 2)
    }
}
