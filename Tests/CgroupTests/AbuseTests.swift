import Foundation
import Glibc
import LaneTestSupport
import Testing

/// Each abuse runs inside a real sandbox and is judged from the host. Each test first shows the
/// abuse does harm without the limit, in a bounded way, so it cannot pass vacuously.
@Suite(.serialized) struct AbuseTests {
    static let forker = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <unistd.h>
        int main(int argc, char **argv) {
            int n = atoi(argv[1]), k = 0;
            for (int i = 0; i < n; i++) {
                pid_t p = fork();
                if (p == 0) { pause(); _exit(0); }
                if (p < 0) break;
                k++;
            }
            printf("forked %d\\n", k);
            return k == n ? 0 : 1;
        }
        """
    static let bomb = "#include <unistd.h>\nint main(void) { for (;;) fork(); }\n"
    static let membomb = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        int main(int argc, char **argv) {
            long cap = atol(argv[1]), n = 0;
            while (cap == 0 || n < cap) {
                char *p = malloc(1 << 20);
                if (!p) return 3;
                memset(p, 1, 1 << 20);
                n++;
            }
            printf("allocated %ld MiB\\n", n);
            return 0;
        }
        """

    @Test func forkBombIsContainedByPids() throws {
        guard let fx = try CgroupFixture.make("fork bomb") else { return }
        defer { fx.cleanup() }
        let forker = try fx.compile("forker", Self.forker)
        // Without a pids limit: 100 processes (bounded by the program itself).
        try fx.profile()
        let free = try fx.run([forker, "100"])
        #expect(free.outcome == "exited" && free.stdout.contains("forked 100"), "\(free.summary)")
        #expect((free.number("pids_peak") ?? 0) >= 100, "\(free.summary)")
        // With pids = 32 the same program fails to fork: pids_limited, the step's own status.
        try fx.profile(limits: "pids = 32")
        let limited = try fx.run([forker, "100"])
        #expect(limited.outcome == "pids_limited" && limited.limit == "pids", "\(limited.summary)")
        #expect(limited.output.status == 1)
        #expect((limited.number("pids_peak") ?? 99) <= 32)

        // A real bomb (every process forks forever) until a 3 s deadline, half a core.
        let bomb = try fx.compile("bomb", Self.bomb)
        try fx.profile(limits: "pids = 48\ncpu_fraction = 0.5")
        let before = Host.processCount
        let r = try fx.run([bomb], timeout: 3)
        #expect(r.outcome == "pids_limited" && r.limit == "pids", "\(r.summary)")
        #expect(Set(r.json["limits_hit"] as? [String] ?? []) == ["pids", "wall_clock"], "\(r.summary)")
        #expect(r.output.status == 124)
        #expect(r.seconds < 6, "lanes stayed responsive: \(r.seconds) s")
        #expect(Host.eventually(2) { Host.processes(containing: bomb).isEmpty && Host.processCount <= before + 25 },
                "host process count back within 2 s: before \(before), now \(Host.processCount)")
        #expect(fx.stepGroups().isEmpty)
        let quick = try fx.run(["true"])
        #expect(quick.outcome == "exited" && quick.seconds < 2)
    }

    @Test func memoryBombIsOOMKilled() throws {
        guard let fx = try CgroupFixture.make("memory bomb") else { return }
        defer { fx.cleanup() }
        let membomb = try fx.compile("membomb", Self.membomb)
        try fx.profile()
        let free = try fx.run([membomb, "96"])
        #expect(free.outcome == "exited" && free.stdout.contains("allocated 96 MiB"), "\(free.summary)")
        #expect((free.number("memory_peak_bytes") ?? 0) >= 96 * 1_048_576, "\(free.summary)")

        try fx.profile(limits: "memory = \"64M\"")
        let available = Host.memAvailable
        let r = try fx.run([membomb, "0"])
        #expect(r.outcome == "oom_killed" && r.limit == "memory", "\(r.summary)")
        #expect(r.output.status == 137)
        let peak = r.number("memory_peak_bytes") ?? 0
        #expect(peak > 32 * 1_048_576 && peak <= 64 * 1_048_576, "peak \(peak)")
        #expect(Host.processes(containing: membomb).isEmpty)
        #expect(fx.stepGroups().isEmpty)
        // The memory is back: the root of this test's groups (which the removed step group's
        // charges would fall back to) holds far less than the 64 MiB the bomb had.
        let memoryRoot = fx.rootDirectories.first { $0.contains("/memory/") } ?? ""
        let usage = { UInt64((try? String(contentsOfFile: memoryRoot + "/memory.usage_in_bytes", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? UInt64.max }
        #expect(Host.eventually(2) { usage() < 16 << 20 }, "memory still charged: \(usage())")
        print("memory bomb: host MemAvailable \(available >> 20) MiB before, \(Host.memAvailable >> 20) MiB after (other work on this box moves it too)")
    }

    @Test func spinningLoopTimesOutAndIsThrottled() throws {
        guard let fx = try CgroupFixture.make("spin") else { return }
        defer { fx.cleanup() }
        let loop = ["sh", "-c", "while :; do :; done"]
        try fx.profile()
        let free = try fx.run(loop, timeout: 2)
        #expect(free.outcome == "timed_out" && free.limit == "wall_clock", "\(free.summary)")
        #expect(free.output.status == 124)
        #expect(free.seconds >= 2 && free.seconds <= 2.5, "wall \(free.seconds) s")
        // v1 without a CPU limit makes no cpuacct group: then cpu_ms (PID 1's rusage, which
        // covers every process of the step) is the number.
        let burnt = free.number("cgroup_cpu_ms") ?? free.number("cpu_ms") ?? 0
        // A core is 2000 ms here; the box may be busy, but far more than the 200 ms a tenth of
        // a core allows.
        #expect(burnt >= 500, "without a CPU limit the loop burns CPU: \(burnt) ms")

        try fx.profile(limits: "cpu_fraction = 0.1")
        let throttled = try fx.run(loop, timeout: 2)
        #expect(throttled.outcome == "timed_out")
        #expect(throttled.seconds >= 2 && throttled.seconds <= 2.5, "wall \(throttled.seconds) s")
        #expect((throttled.number("cgroup_cpu_ms") ?? 9999) <= 300, "a tenth of a core for 2 s: \(throttled.summary)")

        try fx.profile(limits: "cpu = \"1s\"")
        let cpu = try fx.run(loop, timeout: 10)
        #expect(cpu.outcome == "cpu_time_exceeded" && cpu.limit == "cpu_time", "\(cpu.summary)")
        #expect(cpu.output.status == 152)
        #expect(cpu.seconds < 5)
        #expect(fx.stepGroups().isEmpty)
    }

    @Test func diskFillGetsENOSPCAndTheHostDiskDoesNotMove() throws {
        guard let fx = try CgroupFixture.make("disk fill") else { return }
        defer { fx.cleanup() }
        let fill = ["sh", "-c", "dd if=/dev/zero of=/tmp/fill bs=1M count=$0 2>&1; stat -c size=%s /tmp/fill"]
        try fx.profile(tmp: "64M")
        let free = try fx.run(fill + ["32"])
        #expect(free.stdout.contains("size=33554432"), "a bigger /tmp takes 32 MiB: \(free.summary)")

        try fx.profile(tmp: "16M")
        let disk = Host.freeBytes("/"), tmp = Host.freeBytes("/tmp")
        let r = try fx.run(fill + ["64"])
        #expect(r.stdout.contains("No space left on device"), "\(r.summary)")
        let size = Int(r.stdout.components(separatedBy: "size=").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1
        #expect(size > 15 << 20 && size <= 16 << 20, "the file stopped at the 16M tmpfs: \(r.summary)")
        let slack: Int64 = 12 << 20  // other work on this machine writes too
        #expect(abs(Int64(disk) - Int64(Host.freeBytes("/"))) < slack)
        #expect(abs(Int64(tmp) - Int64(Host.freeBytes("/tmp"))) < slack)

        // RLIMIT_FSIZE on a file in the (host) workspace.
        let big = fx.workspace + "/big"
        let write = ["sh", "-c", "dd if=/dev/zero of=\(big) bs=1M count=8 2>&1; true"]
        try fx.profile(limits: "file_size = \"64M\"")
        _ = try fx.run(write)
        let unlimited = (try? FileManager.default.attributesOfItem(atPath: big)[.size] as? Int) ?? 0
        #expect(unlimited == 8 << 20)
        try fx.profile(limits: "file_size = \"4M\"")
        _ = try fx.run(write)
        let limited = (try? FileManager.default.attributesOfItem(atPath: big)[.size] as? Int) ?? -1
        #expect(limited >= 0 && limited <= 4 << 20, "size \(limited)")
    }

    @Test func doubleForkSetsidAndStoppedChildrenDieWithTheStep() throws {
        guard let fx = try CgroupFixture.make("escape") else { return }
        defer { fx.cleanup() }
        try fx.profile(limits: "pids = 64")
        let hb = fx.workspace + "/heartbeat"
        let script = """
            ( setsid sh -c 'while :; do echo x >> \(hb); sleep 0.05; done' & )
            ( sleep 1000 & ) ; sleep 1001 & kill -STOP $!
            sleep 0.5
            for p in /proc/[0-9]*; do echo "$(cat $p/stat 2>/dev/null)"; done
            """
        let r = try fx.run(["sh", "-c", script])
        #expect(r.outcome == "exited", "\(r.summary)")
        // The abuse worked inside: a second session (setsid) and a stopped process (state T).
        let stats = r.stdout.split(separator: "\n").map { $0.split(separator: " ") }.filter { $0.count > 6 }
        #expect(Set(stats.map { $0[5] }).count >= 2, "setsid made a new session: \(r.stdout)")
        #expect(stats.contains { $0[2] == "T" }, "a stopped process existed: \(r.stdout)")
        let size1 = (try? FileManager.default.attributesOfItem(atPath: hb)[.size] as? Int) ?? 0
        #expect(size1 > 0, "the heartbeat ran during the step")
        usleep(500_000)
        let size2 = (try? FileManager.default.attributesOfItem(atPath: hb)[.size] as? Int) ?? 0
        #expect(size1 == size2, "the heartbeat stopped with the step")
        #expect(Host.processes(containing: hb).isEmpty && Host.processes(containing: "sleep 100").isEmpty)
        #expect(fx.stepGroups().isEmpty)

        // The same escape ended by the deadline instead (SIGTERM to the tree, grace, SIGKILL).
        let hb2 = fx.workspace + "/heartbeat2"
        let stuck = """
            ( setsid sh -c 'trap "" TERM; while :; do echo x >> \(hb2); sleep 0.05; done' & )
            sleep 1001 & kill -STOP $!
            sleep 1002
            """
        let t = try fx.run(["sh", "-c", stuck], timeout: 1)
        #expect(t.outcome == "timed_out" && t.seconds < 3, "\(t.summary)")
        let a = (try? FileManager.default.attributesOfItem(atPath: hb2)[.size] as? Int) ?? 0
        usleep(400_000)
        let b = (try? FileManager.default.attributesOfItem(atPath: hb2)[.size] as? Int) ?? 0
        #expect(a > 0 && a == b, "the SIGTERM-immune heartbeat ran, then stopped: \(a) → \(b)")
        #expect(Host.processes(containing: hb2).isEmpty && Host.processes(containing: "sleep 100").isEmpty)
        #expect(fx.stepGroups().isEmpty)
    }

    @Test func twoHundredStepsLeaveNothingBehind() throws {
        guard let fx = try CgroupFixture.make("200 steps") else { return }
        defer { fx.cleanup() }
        try fx.profile(limits: "memory = \"128M\"\npids = 64\ncpu_fraction = 1")
        let mounts = Host.mountCount
        // The groups are real: the step's processes were counted in one (lane-init + the tool).
        let seen = try fx.run(["cat", "/proc/self/cgroup"])
        #expect((seen.number("pids_peak") ?? 0) >= 2 && seen.json["cgroup"] as? String != nil, "\(seen.summary)")
        for i in 0..<199 {
            if i % 20 == 0 {
                let r = try fx.run(["sleep", "10"], timeout: 0.2)
                #expect(r.outcome == "timed_out" && r.seconds < 2)
            } else {
                let r = try fx.run(["true"])
                if r.outcome != "exited" { Issue.record("step \(i): \(r.summary)"); break }
            }
        }
        #expect(fx.stepGroups().isEmpty, "\(fx.stepGroups())")
        #expect(Host.mountCount == mounts)
        #expect(Host.processes(containing: "sleep 10").isEmpty)
    }

    @Test func killedSupervisorsStepDiesAndItsGroupIsRemovedNextTime() throws {
        guard let fx = try CgroupFixture.make("kill -9") else { return }
        defer { fx.cleanup() }
        try fx.profile(limits: "pids = 64")
        let token = "1234.5"
        func start(_ seconds: String) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: LanesCLI.lanesPath)
            p.arguments = ["run", "t", "--workspace", fx.workspace, "--json", "--", "sleep", seconds]
            p.environment = fx.environment.merging(["LANES_CONFIG": fx.dir, "PATH": "/usr/bin:/bin"]) { $1 }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        // A live step of another supervisor, which no clean-up may touch.
        let live = try start("4.25")
        #expect(Host.eventually(5) { fx.stepNames().count == 1 })
        let liveGroups = fx.stepGroups()
        let victim = try start(token)
        #expect(Host.eventually(5) { !Host.processes(argv: ["sleep", token]).isEmpty && fx.stepNames().count == 2 })
        let stale = Array(Set(fx.stepGroups()).subtracting(liveGroups))
        // The step's process is inside its group in every hierarchy (born there, not moved).
        let sleeper = Host.processes(argv: ["sleep", token]).first ?? 0
        let membership = (try? String(contentsOfFile: "/proc/\(sleeper)/cgroup", encoding: .utf8)) ?? ""
        let victimName = stale.first.map { ($0 as NSString).lastPathComponent } ?? "?"
        #expect(membership.split(separator: "\n").filter { $0.hasSuffix("/" + victimName) }.count >= 2, "\(membership)")
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        #expect(Host.eventually(2) { Host.processes(argv: ["sleep", token]).isEmpty }, "PDEATHSIG/PID 1 ended the step")
        #expect(!stale.isEmpty && stale.allSatisfy { FileManager.default.fileExists(atPath: $0) }, "the dead supervisor left its group")
        let r = try fx.run(["true"])
        #expect(r.outcome == "exited")
        #expect(stale.allSatisfy { !FileManager.default.fileExists(atPath: $0) }, "the next run removed the stale group")
        #expect(!liveGroups.isEmpty && liveGroups.allSatisfy { FileManager.default.fileExists(atPath: $0) }, "a live step's group is kept")
        live.waitUntilExit()
        #expect(live.terminationStatus == 0)
        #expect(fx.stepGroups().isEmpty)
    }

    @Test func unenforceableLimitsRefuseUnlessOptional() throws {
        guard let fx = try CgroupFixture.make("refusal") else { return }
        defer { fx.cleanup() }
        try fx.profile(limits: "memory = \"64M\"\npids = 64")
        let refused = try fx.run(["true"], env: ["LANES_CGROUP": "off"])
        #expect(refused.output.status == 125, "\(refused.summary)")
        let error = refused.json["error"] as? String ?? refused.output.stderr
        #expect(error.contains("limits.memory") && error.contains("memory cgroup controller") && error.contains("optional"), "\(error)")

        try fx.profile(limits: "memory = \"64M\"\npids = 64\noptional = [\"memory\", \"pids\"]")
        let ran = try fx.run(["true"], env: ["LANES_CGROUP": "off"])
        #expect(ran.outcome == "exited" && ran.output.status == 0, "\(ran.summary)")
        #expect((ran.json["limits_not_applied"] as? [String]) == ["memory", "pids"])
        // On this host both are enforced, so nothing is listed.
        let enforced = try fx.run(["true"])
        #expect((enforced.json["limits_not_applied"] as? [String]) == [] && enforced.json["cgroup"] as? String != nil, "\(enforced.summary)")
    }

    @Test func unprivilegedRefusesClearlyOrWorksInADelegatedSubtree() throws {
        guard let fx = try CgroupFixture.make("unprivileged") else { return }
        defer { fx.cleanup() }
        guard LanesCLI.canDropPrivileges else { print("SKIP unprivileged: setpriv missing"); return }
        try fx.profile(limits: "memory = \"64M\"\npids = 64")
        let plain = try fx.run(["true"], as: .unprivileged)
        if plain.output.status == 125 && !(plain.json["error"] as? String ?? plain.output.stderr).contains("cgroup") {
            print("SKIP unprivileged: lanes cannot run unprivileged here at all: \(plain.summary)")
            return
        }
        #expect(plain.output.status == 125, "\(plain.summary)")
        let error = plain.json["error"] as? String ?? plain.output.stderr
        #expect(error.contains("LANES_CGROUP_ROOT") && error.contains("delegate"), "\(error)")
        // Delegate: the test root, chowned (with its interface files) to uid 65534.
        for dir in fx.rootDirectories {
            for file in ["", "/cgroup.procs", "/tasks"] { chown(dir + file, 65534, 65534) }
        }
        let delegated = try fx.run(["true"], as: .unprivileged)
        #expect(delegated.outcome == "exited" && delegated.json["cgroup"] as? String != nil, "\(delegated.summary)")
        #expect(fx.stepGroups().isEmpty)
    }
}
