import Foundation
import LaneTestSupport
import Testing

/// The one-shot `lanes run` starts its step's sandbox before it opens the journal
/// (`EarlySandbox`, `StepRunner.startEarly`): the step runs in it once its intent is durable, and
/// a step that is replayed or refused leaves nothing of it behind.
@Suite("A one-shot's sandbox started early")
struct EarlySandboxTests {
    /// A configuration with one lane, `early`, on the real workspace-write profile, gating
    /// `deploy *`; a state directory and a workspace.
    struct World {
        let root: String
        var config: String { root + "/config" }
        var state: String { root + "/state" }
        var workspace: String { root + "/ws" }

        init(_ name: String, laneKeys: String = "") throws {
            root = try LanesCLI.temporaryDirectory("early-\(name)")
            let fm = FileManager.default
            try fm.createDirectory(atPath: config + "/Lanes", withIntermediateDirectories: true)
            try fm.copyItem(atPath: LanesCLI.packageRoot.path + "/Profiles", toPath: config + "/Profiles")
            try "description = \"early\"\nowner = \"tests\"\nprofile = \"workspace-write\"\n\(laneKeys)[review]\ncommands = [\"deploy *\"]\n"
                .write(toFile: config + "/Lanes/early.toml", atomically: true, encoding: .utf8)
            try fm.createDirectory(atPath: workspace, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        }

        /// `lanes run early ARGS -- COMMAND` at log level info, through a shell that prints its
        /// pid (the pid `lanes` then has: the owner named in its cgroups) on stderr first.
        func run(_ args: [String], _ command: [String], stdin: Data? = nil, cpus: String? = nil) throws -> (pid: Int32, out: LanesCLI.Output) {
            // `cpus`: the affinity `lanes` runs with (taskset -c), for the one-CPU case.
            let shell = "echo \"pid $$\" >&2; exec " + (cpus.map { "taskset -c \($0) " } ?? "") + "\"$0\" \"$@\""
            let out = try LanesCLI.execute(
                "/bin/sh", ["-c", shell, LanesCLI.lanesPath,
                            "run", "early", "--state", state, "--workspace", workspace] + args + ["--"] + command,
                environment: ["PATH": "/usr/bin:/bin", "LANES_CONFIG": config, "HOME": "/tmp", "LANES_LOG": "info"],
                stdin: stdin)
            let line = out.stderr.split(separator: "\n").first { $0.hasPrefix("pid ") }
            return (Int32(line?.dropFirst(4) ?? "") ?? -1, out)
        }
    }

    /// Why the early start cannot be seen here: it is only made with two CPUs or more.
    static var skipReason: String? {
        ProcessInfo.processInfo.activeProcessorCount >= 2 ? nil : "this host has one CPU, where lanes starts no sandbox early"
    }

    /// Every cgroup directory on this host whose name says `pid` owns it (`lanes-PID-…`).
    static func groups(of pid: Int32) -> [String] {
        var found: [String] = []
        func walk(_ dir: String, depth: Int) {
            guard depth < 6, let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
            for name in names {
                let path = dir + "/" + name
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { continue }
                if name.hasPrefix("lanes-\(pid)-") { found.append(path) }
                walk(path, depth: depth + 1)
            }
        }
        walk("/sys/fs/cgroup", depth: 0)
        return found
    }

    /// What a step sees of its sandbox: identity, capabilities, seccomp, no_new_privs, mount
    /// points, hostname, network interfaces, and the state directory (hidden).
    static func probe(state: String) -> [String] {
        ["/bin/sh", "-c", """
            id; grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs)' /proc/self/status
            awk '{print $5, $6}' /proc/self/mountinfo | sed 's/,relatime//' | sort
            hostname; ls /sys/class/net; ls -A \(state) 2>&1 | head -1; echo "pid1 $(cat /proc/1/comm)"
            """]
    }

    @Test("the step runs in it, in the same sandbox a cold step gets, and reads its stdin")
    func sameSandbox() throws {
        if let why = Self.skipReason { print("EarlySandboxTests: skipped: \(why)"); return }
        let w = try World("same")
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        // The first step creates the state directory, so its sandbox starts after the journal
        // opens (cold): the state directory must exist to be hidden in a sandbox started before.
        let cold = try w.run([], Self.probe(state: w.state))
        #expect(cold.out.status == 0, "\(cold.out.stderr)")
        #expect(!cold.out.stderr.contains("early_sandbox"), "\(cold.out.stderr)")
        let early = try w.run([], Self.probe(state: w.state))
        #expect(early.out.status == 0, "\(early.out.stderr)")
        #expect(early.out.stderr.contains("early_sandbox=used"), "the second step did not run in its early sandbox: \(early.out.stderr)")
        #expect(early.out.stdout == cold.out.stdout)
        #expect(early.out.stdout.contains("NoNewPrivs:\t1") && early.out.stdout.contains("Seccomp:\t2"), "\(early.out.stdout)")
        #expect(early.out.stdout.contains("No such file or directory"), "the state directory is visible: \(early.out.stdout)")
        // The result is the same too: every protection, the cgroup.
        let coldJSON = try w.run(["--json"], ["true"]), earlyJSON = try w.run(["--json"], ["true"])
        #expect(earlyJSON.out.stderr.contains("early_sandbox=used"))
        let fields = { (out: LanesCLI.Output) throws -> [String: Any] in
            try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any] ?? [:]
        }
        let a = try fields(coldJSON.out), b = try fields(earlyJSON.out)
        #expect(a["protections"] as? [String] == b["protections"] as? [String])
        #expect(a["cgroup"] as? String == b["cgroup"] as? String)
        #expect(b["outcome"] as? String == "exited")
        // Its PID 1 started away from lanes' CPU; the tool runs on every CPU lanes may use.
        let cpus = try w.run([], ["/bin/sh", "-c", "grep Cpus_allowed_list /proc/self/status"])
        #expect(cpus.out.stderr.contains("early_sandbox=used"), "\(cpus.out.stderr)")
        #expect(cpus.out.stdout == Self.allowedCPUs(), "the tool's CPUs are not lanes' own")
        let piped = try w.run([], ["/bin/cat"], stdin: Data("through the early sandbox\n".utf8))
        #expect(piped.out.stderr.contains("early_sandbox=used"))
        #expect(piped.out.stdout == "through the early sandbox\n")
    }

    @Test("a lane's missing writable directory is made only for a step whose intent is recorded: no early start")
    func writableDirectoryWaits() throws {
        if let why = Self.skipReason { print("EarlySandboxTests: skipped: \(why)"); return }
        let w = try World("writable", laneKeys: "writable = [\"out\"]\n")
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        #expect(try w.run([], ["true"]).out.status == 0)  // creates the state directory (and out/)
        try FileManager.default.removeItem(atPath: w.workspace + "/out")
        let gated = try w.run(["--run", "g"], ["deploy", "prod"])
        #expect(gated.out.status == 78, "\(gated.out.stderr)")
        #expect(!gated.out.stderr.contains("early_sandbox"), "\(gated.out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: w.workspace + "/out"), "a refused step made the lane's writable directory")
        let made = try w.run([], ["/bin/sh", "-c", "echo x > out/f && cat out/f"])
        #expect(made.out.status == 0 && made.out.stdout == "x\n", "\(made.out.stderr)")
        #expect(!made.out.stderr.contains("early_sandbox"))
        let early = try w.run([], ["/bin/sh", "-c", "echo y >> out/f && cat out/f"])
        #expect(early.out.stdout == "x\ny\n", "\(early.out.stderr)")
        #expect(early.out.stderr.contains("early_sandbox=used"), "\(early.out.stderr)")
    }

    @Test("on one CPU the sandbox starts with its step (nothing would overlap)")
    func oneCPU() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") else {
            print("EarlySandboxTests.oneCPU: skipped: /usr/bin/taskset (util-linux) is not installed")
            return
        }
        let w = try World("one-cpu")
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        #expect(try w.run([], ["true"]).out.status == 0)  // creates the state directory
        if ProcessInfo.processInfo.activeProcessorCount >= 2 {
            let two = try w.run([], ["true"])
            #expect(two.out.stderr.contains("early_sandbox=used"), "control: \(two.out.stderr)")
        } else {
            print("EarlySandboxTests.oneCPU: this host has one CPU; the two-CPU control is skipped")
        }
        let one = try w.run([], ["/bin/echo", "one"], cpus: "0")
        #expect(one.out.status == 0 && one.out.stdout == "one\n", "\(one.out.stderr)")
        #expect(one.out.stderr.contains("step closed") && !one.out.stderr.contains("early_sandbox"), "\(one.out.stderr)")
    }

    @Test("a replayed step and a gated one kill their early sandbox: no cgroup of it is left")
    func refusedLeavesNothing() throws {
        if let why = Self.skipReason { print("EarlySandboxTests: skipped: \(why)"); return }
        let w = try World("refused")
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        let first = try w.run(["--run", "r", "--step", "a", "--json"], ["true"])
        #expect(first.out.status == 0, "\(first.out.stderr)")
        let hasGroups = (try JSONSerialization.jsonObject(with: Data(first.out.stdout.utf8)) as? [String: Any])?["cgroup"] is String
        if !hasGroups {
            // Only the process side can be checked then (parent-death kills the sandbox anyway).
            print("EarlySandboxTests: this host gives steps no cgroup; checking the log only")
        }
        // Checked at once after each: the next `lanes` anywhere sweeps the groups of dead owners.
        func leftBehind(_ what: String, _ pid: Int32) {
            #expect(pid > 0)
            if hasGroups { #expect(Self.groups(of: pid).isEmpty, "the \(what) step's early sandbox left \(Self.groups(of: pid))") }
        }
        let replayed = try w.run(["--run", "r", "--step", "a"], ["true"])
        leftBehind("replayed", replayed.pid)
        #expect(replayed.out.status == 0)
        #expect(replayed.out.stderr.contains("replayed") && replayed.out.stderr.contains("early_sandbox=unused"), "\(replayed.out.stderr)")
        let gated = try w.run(["--run", "r"], ["deploy", "prod"])
        leftBehind("gated", gated.pid)
        #expect(gated.out.status == 78, "\(gated.out.stderr)")
        #expect(gated.out.stderr.contains("early_sandbox=unused"), "\(gated.out.stderr)")
    }

    @Test("SIGINT, SIGTERM or SIGHUP before the step starts ends lanes with it and leaves no cgroup of the early sandbox")
    func stopSignalBeforeTheStep() throws {
        if let why = Self.skipReason { print("EarlySandboxTests: skipped: \(why)"); return }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/flock") else {
            print("EarlySandboxTests.stopSignalBeforeTheStep: skipped: /usr/bin/flock (util-linux) is not installed")
            return
        }
        let w = try World("signal")
        defer { try? FileManager.default.removeItem(atPath: w.root) }
        let first = try w.run(["--run", "s", "--json"], ["true"])  // creates the state directory
        #expect(first.out.status == 0, "\(first.out.stderr)")
        guard (try JSONSerialization.jsonObject(with: Data(first.out.stdout.utf8)) as? [String: Any])?["cgroup"] is String else {
            print("EarlySandboxTests.stopSignalBeforeTheStep: skipped: this host gives steps no cgroup, so none can be left")
            return
        }
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            // The journal's write lock, held by another process: the next lanes run starts its
            // sandbox, then waits for the lock before it records anything.
            let held = w.root + "/held"
            let holder = Process()
            holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
            // It lets go when `held` is removed (or after 30 s).
            holder.arguments = [w.state + "/journal.sqlite.lock", "/bin/sh", "-c",
                                "touch \(held); i=0; while [ -e \(held) ] && [ $i -lt 1500 ]; do sleep 0.02; i=$((i+1)); done"]
            try holder.run()
            defer { try? FileManager.default.removeItem(atPath: held); holder.waitUntilExit() }
            for _ in 0..<500 where !FileManager.default.fileExists(atPath: held) { usleep(10_000) }
            #expect(FileManager.default.fileExists(atPath: held), "flock did not take the journal's lock")

            let pid = try Self.spawnWithDefaultSignals(LanesCLI.lanesPath, [
                "run", "early", "--state", w.state, "--workspace", w.workspace, "--run", "s", "--", "true",
            ], environment: ["PATH=/usr/bin:/bin", "LANES_CONFIG=\(w.config)", "HOME=/tmp"])
            // Signalled once it waits for the lock (a blocked flock in /proc/locks), i.e. after
            // its early start, which made a group.
            var status: Int32 = 0
            var waiting = false
            for _ in 0..<2000 where waitpid(pid, &status, WNOHANG) == 0 {
                if Self.waitsForLock(pid) { waiting = true; break }
                usleep(5_000)
            }
            #expect(waiting, "signal \(signal): lanes did not wait for the journal's lock")
            #expect(!Self.groups(of: pid).isEmpty, "signal \(signal): lanes started no early sandbox")
            kill(pid, signal)
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let killedBy = status & 0x7f, exitedWith = (status >> 8) & 0xff
            #expect(killedBy == signal, "signal \(signal): lanes ended with status \(exitedWith), signal \(killedBy)")
            #expect(Self.groups(of: pid).isEmpty, "signal \(signal): the early sandbox's cgroup was left: \(Self.groups(of: pid))")
        }
        // Nothing was recorded for the interrupted ones, and the run goes on.
        let next = try w.run(["--run", "s", "--json"], ["true"])
        #expect(next.out.status == 0, "\(next.out.stderr)")
        let step = (try JSONSerialization.jsonObject(with: Data(next.out.stdout.utf8)) as? [String: Any])?["step"] as? String
        #expect(step == "2", "the run's next step is \(step ?? "nil"), not 2")
    }

    /// Starts `path` with every signal unblocked and at its default disposition (a process
    /// started by Foundation's `Process` from a test's thread inherits that thread's blocked
    /// signals), its output to /dev/null. Returns its pid; the caller reaps it.
    static func spawnWithDefaultSignals(_ path: String, _ args: [String], environment: [String]) throws -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([path] + args).map { strdup($0) } + [nil], envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, argv, envp)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
        return pid
    }

    /// This process's `Cpus_allowed_list` line (the CPUs `lanes`, started from here, may use).
    static func allowedCPUs() -> String {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        return status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list") }.map { String($0) + "\n" } ?? "?"
    }

    /// Whether `pid` waits for a file lock (a `->` line of /proc/locks names it).
    static func waitsForLock(_ pid: pid_t) -> Bool {
        let locks = (try? String(contentsOfFile: "/proc/locks", encoding: .utf8)) ?? ""
        return locks.split(separator: "\n").contains { line in
            line.contains("->") && line.split(separator: " ").contains { $0 == "\(pid)" }
        }
    }
}
