import Foundation
import Glibc
@testable import LaneSys

/// A cgroup2 tree in a temporary directory that behaves like the kernel where the v2 driver
/// depends on it: new directories get their interface files, `cgroup.controllers` follows the
/// parent's `cgroup.subtree_control`, `+ctrl` is refused for a controller the parent does not
/// pass down, `cgroup.kill` empties the group, `cgroup.freeze` sets `frozen`, rmdir of a
/// populated group is EBUSY. Every write is logged.
final class FakeCgroup2Tree: CgroupFileSystem, @unchecked Sendable {
    let top: String
    private let lock = NSLock()
    private var log: [(String, String)] = []

    init() throws {
        top = NSTemporaryDirectory() + "fake-cgroup2-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: top, withIntermediateDirectories: true)
        try "cpuset cpu io memory hugetlb pids rdma misc\n".write(toFile: top + "/cgroup.controllers", atomically: true, encoding: .utf8)
        try "\n".write(toFile: top + "/cgroup.subtree_control", atomically: true, encoding: .utf8)
        try "".write(toFile: top + "/cgroup.procs", atomically: true, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(atPath: top) }

    var writes: [(String, String)] { lock.withLock { log } }

    /// A directory made by the "administrator" (not logged), with the given subtree_control.
    func provision(_ rel: String, subtreeControl: String) throws {
        var path = top
        for part in rel.split(separator: "/") {
            path += "/" + part
            if !FileManager.default.fileExists(atPath: path) { _ = makeDirectory(path) }
        }
        try subtreeControl.write(toFile: path + "/cgroup.subtree_control", atomically: true, encoding: .utf8)
    }

    func contents(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    func put(_ path: String, _ text: String) { try? text.write(toFile: path, atomically: true, encoding: .utf8) }

    // MARK: CgroupFileSystem

    func read(_ path: String) -> String? { contents(path) }

    func write(_ path: String, _ value: String) -> Int32 {
        guard FileManager.default.fileExists(atPath: path) else { return ENOENT }
        lock.withLock { log.append((path, value)) }
        let dir = (path as NSString).deletingLastPathComponent
        switch (path as NSString).lastPathComponent {
        case "cgroup.subtree_control":
            var enabled = Set((contents(path) ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
            let available = Set((contents(dir + "/cgroup.controllers") ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
            for token in value.split(separator: " ") {
                let name = String(token.dropFirst())
                guard available.contains(name) else { return ENOENT }
                if token.hasPrefix("+") { enabled.insert(name) } else { enabled.remove(name) }
            }
            put(path, enabled.sorted().joined(separator: " ") + "\n")
        case "cgroup.kill":
            put(dir + "/cgroup.procs", "")
            put(dir + "/cgroup.events", "populated 0\nfrozen 0\n")
        case "cgroup.freeze":
            put(path, value)
            let populated = (contents(dir + "/cgroup.procs") ?? "").isEmpty ? 0 : 1
            put(dir + "/cgroup.events", "populated \(populated)\nfrozen \(value == "1" ? 1 : 0)\n")
        case "cgroup.procs":
            put(path, (contents(path) ?? "") + value + "\n")
            put(dir + "/cgroup.events", "populated 1\nfrozen 0\n")
        default:
            put(path, value + "\n")
        }
        return 0
    }

    func makeDirectory(_ path: String) -> Int32 {
        if mkdir(path, 0o755) != 0 { return errno }
        let parent = (path as NSString).deletingLastPathComponent
        let files: [String: String] = [
            "cgroup.controllers": contents(parent + "/cgroup.subtree_control") ?? "\n",
            "cgroup.subtree_control": "\n", "cgroup.procs": "", "cgroup.events": "populated 0\nfrozen 0\n",
            "cgroup.kill": "", "cgroup.freeze": "0\n",
            "memory.max": "max\n", "memory.swap.max": "max\n", "memory.peak": "0\n", "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
            "pids.max": "max\n", "pids.peak": "0\n", "pids.events": "max 0\n",
            "cpu.max": "max 100000\n", "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
        ]
        for (name, text) in files { put(path + "/" + name, text) }
        return 0
    }

    func removeDirectory(_ path: String) -> Int32 {
        guard FileManager.default.fileExists(atPath: path) else { return ENOENT }
        if !(contents(path + "/cgroup.procs") ?? "").isEmpty { return EBUSY }
        if !subdirectories(path).isEmpty { return EBUSY }
        lock.withLock { log.append((path, "rmdir")) }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] { unlink(path + "/" + name) }
        return rmdir(path) == 0 ? 0 : errno
    }

    func subdirectories(_ path: String) -> [String] { HostCgroupFileSystem().subdirectories(path) }
    func openDirectory(_ path: String) -> Int32 { HostCgroupFileSystem().openDirectory(path) }
    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
}
