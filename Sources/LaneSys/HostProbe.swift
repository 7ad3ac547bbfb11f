import CLaneSys
import Glibc
import LaneSyscall

/// Honest answers about what this host supports, for `lanes doctor`. Each probe asks the kernel
/// directly (a syscall or its own /proc file); nothing is inferred from version numbers.
public enum HostProbe {
    /// One finding: what was checked, whether it is usable, and what to do if not.
    public struct Finding: Sendable {
        public let name: String
        public let ok: Bool
        public let detail: String
        public let advice: String?
    }

    /// This thread's CPU affinity mask (as `taskset` sets it), as the kernel's bytes; empty when
    /// it cannot be read.
    public static func affinity() -> [UInt8] {
        var mask = [UInt8](repeating: 0, count: 128)
        let n = mask.withUnsafeMutableBytes { lane_affinity_get($0.baseAddress, Int32($0.count)) }
        return n > 0 ? Array(mask.prefix(Int(n))) : []
    }

    /// How many CPUs an affinity mask allows.
    public static func cpuCount(_ mask: [UInt8]) -> Int { mask.reduce(0) { $0 + $1.nonzeroBitCount } }

    public static func all() -> [Finding] {
        [userNamespaces(), seccomp(), landlock(), pidfd(), clone3(), cgroups()]
    }

    public static func userNamespaces() -> Finding {
        let max = readInt("/proc/sys/user/max_user_namespaces")
        let legacy = readInt("/proc/sys/kernel/unprivileged_userns_clone")
        let apparmor = readInt("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
        var problems: [String] = []
        if max == 0 { problems.append("user.max_user_namespaces = 0") }
        if legacy == 0 && geteuid() != 0 { problems.append("kernel.unprivileged_userns_clone = 0") }
        if apparmor == 1 && geteuid() != 0 { problems.append("AppArmor restricts unprivileged user namespaces") }
        let detail = "max_user_namespaces=\(max.map(String.init) ?? "?")" + (legacy.map { ", unprivileged_userns_clone=\($0)" } ?? "")
            + (apparmor.map { ", apparmor_restrict_unprivileged_userns=\($0)" } ?? "")
        return Finding(name: "user namespaces", ok: problems.isEmpty, detail: problems.isEmpty ? detail : problems.joined(separator: "; "),
                       advice: problems.isEmpty ? nil : "enable them: sysctl -w user.max_user_namespaces=15000 kernel.unprivileged_userns_clone=1 (or an AppArmor profile for lanes)")
    }

    public static func seccomp() -> Finding {
        let mode = lane_prctl(LANE_PR_GET_SECCOMP, 0, 0, 0, 0)
        let actions = readText("/proc/sys/kernel/seccomp/actions_avail")?.split(separator: "\n").first.map(String.init) ?? "unknown"
        let needed = ["errno", "kill_process"]
        let ok = mode >= 0 && needed.allSatisfy { actions.contains($0) }
        return Finding(name: "seccomp", ok: ok, detail: "filter mode available; actions: \(actions)",
                       advice: ok ? nil : "the kernel needs CONFIG_SECCOMP_FILTER with errno and kill_process actions")
    }

    public static func landlock() -> Finding {
        // landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) returns the ABI.
        let abi = lane_syscall6(444, 0, 0, 1, 0, 0, 0)
        if abi > 0 { return Finding(name: "landlock", ok: true, detail: "ABI \(abi) (not used by profiles yet)", advice: nil) }
        return Finding(name: "landlock", ok: true, detail: "unavailable (\(String(cString: strerror(errno)))); not required",
                       advice: "boot with lsm=…,landlock to enable it")
    }

    public static func pidfd() -> Finding {
        let fd = lane_syscall6(434, Int(getpid()), 0, 0, 0, 0, 0)  // pidfd_open
        if fd >= 0 { close(Int32(fd)); return Finding(name: "pidfd", ok: true, detail: "pidfd_open works", advice: nil) }
        return Finding(name: "pidfd", ok: false, detail: "pidfd_open: \(String(cString: strerror(errno)))", advice: "Linux 5.3 or later is required")
    }

    public static func clone3() -> Finding {
        // clone3(NULL, 0) fails with EINVAL where clone3 exists and ENOSYS where it does not.
        let r = lane_syscall6(435, 0, 0, 0, 0, 0, 0)
        let err = errno
        let ok = r < 0 && err != ENOSYS
        return Finding(name: "clone3", ok: ok, detail: ok ? "available (with CLONE_PIDFD and CLONE_INTO_CGROUP)" : "missing",
                       advice: ok ? nil : "Linux 5.7 or later is required")
    }

    /// The cgroup hierarchies mounted here.
    public static func cgroups() -> Finding {
        guard let mounts = readText("/proc/self/mountinfo") else {
            return Finding(name: "cgroups", ok: false, detail: "cannot read /proc/self/mountinfo", advice: nil)
        }
        var v1: [String] = [], v2: [String] = []
        for line in mounts.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard let dash = parts.firstIndex(of: "-"), dash + 1 < parts.count else { continue }
            let fstype = parts[dash + 1], mountPoint = String(parts[4])
            if fstype == "cgroup2" { v2.append(mountPoint) }
            if fstype == "cgroup", let opts = parts.last {
                let ctrls = opts.split(separator: ",").filter { !["rw", "ro", "relatime", "nosuid", "nodev", "noexec"].contains($0) }
                v1.append(ctrls.joined(separator: ","))
            }
        }
        let v2Controllers = v2.compactMap { readText($0 + "/cgroup.controllers") }.joined(separator: " ").split(whereSeparator: { $0 == " " || $0 == "\n" })
        let detail = "v1 controllers: [\(v1.joined(separator: " "))]; cgroup2 at \(v2.joined(separator: ", ")) with controllers [\(v2Controllers.joined(separator: " "))]"
        return Finding(name: "cgroups", ok: !v1.isEmpty || !v2Controllers.isEmpty, detail: detail,
                       advice: v1.isEmpty && v2Controllers.isEmpty ? "no cgroup controllers: memory/pids/cpu limits cannot be enforced" : nil)
    }

    static func readText(_ path: String) -> String? {
        readWholeFile(path, limit: 1 << 20).map { String(decoding: $0, as: UTF8.self) }
    }

    static func readInt(_ path: String) -> Int? {
        readText(path).flatMap { Int($0.split(separator: "\n").first ?? "") }
    }
}
