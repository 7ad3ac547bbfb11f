import Foundation
import Glibc
import LaneGovernance
import LaneModel
@testable import LaneRuntime
import LaneTestSupport
import Testing

/// `lanes mcp`'s prestarted sandboxes (`ServiceOptions.prestartSandboxes`): each is fresh, runs
/// nothing of its tool before its step, is never used for a step it was not built for, and none outlives
/// the service or a refused step.
@Suite("Prestarted sandboxes", .serialized)
struct PrestartTests {
    typealias World = StepServiceTests.World

    /// Waits (bounded) until the pool holds a ready sandbox, and returns it.
    func readySandbox(_ w: World, other: pid_t? = nil) -> (pid: pid_t, cgroup: String?)? {
        for _ in 0..<500 {
            if let s = w.service.pool?.readySandboxes.first, s.pid != other { return s }
            usleep(10_000)
        }
        return nil
    }

    /// A prestarting service after the first step (`true`) of a new run, the run, and the sandbox
    /// that then waits. The caller disposes of the world.
    func afterFirstStep(_ name: String) throws -> (w: World, run: String, waiting: (pid: pid_t, cgroup: String?)) {
        let w = try World(name, prestart: 1)
        do {
            let first = w.service.run(w.call(["true"]))
            let run = try #require(first.run, "\(first.result.error ?? "")")
            return (w, run, try #require(readySandbox(w), "a sandbox is prestarted after the first step"))
        } catch {
            w.dispose()
            throw error
        }
    }

    func exists(_ pid: pid_t) -> Bool { kill(pid, 0) == 0 || errno != ESRCH }

    /// Leaves a file in a waiting sandbox's /tmp: a step that lists /tmp then shows which sandbox
    /// it ran in. Host root opens the directory through PID 1's root; a child then creates the
    /// file as the host uid the sandbox maps (root has no mapping there: EOVERFLOW).
    /// Not root: nil, and the test says what it does not check (only host root may open the
    /// root of another user namespace's non-dumpable PID 1).
    func mark(_ pid: pid_t) throws -> Bool? {
        guard geteuid() == 0 else {
            print("PrestartTests: not root: which sandbox a step ran in is not checked (needs /proc/\(pid)/root of a non-dumpable PID 1)")
            return nil
        }
        func mapped(_ file: String) throws -> String {
            let map = try String(contentsOfFile: "/proc/\(pid)/\(file)", encoding: .utf8)
            return map.split(whereSeparator: \.isWhitespace).dropFirst().first.map(String.init) ?? ""
        }
        let script = """
            import os, sys
            fd = os.open("/proc/\(pid)/root/tmp", os.O_RDONLY | os.O_DIRECTORY)
            os.setgroups([]); os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[1]))
            os.close(os.open("prestarted-mark", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
            """
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        child.arguments = ["python3", "-c", script, try mapped("uid_map"), try mapped("gid_map")]
        try child.run()
        child.waitUntilExit()
        return child.terminationStatus == 0
    }

    /// The pids `pid` has started.
    func children(of pid: pid_t) -> [pid_t]? {
        (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8))
            .map { $0.split(separator: " ").compactMap { pid_t(String($0)) } }
    }

    /// A line of /proc/PID/status (e.g. "CapEff"), its value trimmed.
    func status(_ pid: pid_t, _ key: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix(key + ":") }
            .map { $0.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces) }
    }

    @Test("each step gets a fresh sandbox; the waiting one runs nothing of its tool yet; close leaves no process or cgroup")
    func freshAndWaiting() throws {
        let w = try World("pre-fresh", prestart: 1)
        defer { w.dispose() }
        // A fresh sandbox: its own pid namespace (the tool is pid 2), an empty /tmp.
        let probe = ["sh", "-c", "test ! -e /tmp/mark && touch /tmp/mark && echo $$ && hostname"]
        let first = w.service.run(w.call(probe))
        #expect(first.exitStatus == 0 && String(decoding: first.result.stdout, as: UTF8.self) == "2\nlane\n")
        let waiting = try #require(readySandbox(w), "a sandbox is prestarted after the first step")
        #expect((try? String(contentsOfFile: "/proc/\(waiting.pid)/comm", encoding: .utf8)) == "lane-init\n")
        // Give it time to have built everything: still, nothing of the tool runs until a step
        // claims it. PID 1's one child is the tool's process, prepared as far as it can be
        // without the command: still lane-init (nothing exec'd), no capabilities at all, in a
        // user namespace of its own, and it has started nothing.
        usleep(200_000)
        let prepared = try #require(children(of: waiting.pid))
        #expect(prepared.count == 1, "PID 1 of a waiting sandbox has started only the tool's process: \(prepared)")
        if let tool = prepared.first {
            #expect((try? String(contentsOfFile: "/proc/\(tool)/comm", encoding: .utf8)) == "lane-init\n", "nothing exec'd yet")
            for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
                #expect(status(tool, key) == "0000000000000000", "\(key) of the waiting tool process")
            }
            #expect(children(of: tool)?.isEmpty == true, "the waiting tool process has started nothing")
            let own = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(tool)/ns/user")
            let init1 = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(waiting.pid)/ns/user")
            if let own, let init1 {
                #expect(own != init1, "the waiting tool process is in a user namespace of its own")
            } else {
                print("PrestartTests: /proc/PID/ns/user of a non-dumpable process is not readable here (not root): its user namespace is not checked")
            }
        }
        // The next step runs in that very sandbox.
        let marked = try mark(waiting.pid)
        #expect(marked != false)
        let claimed = w.service.run(w.call(["ls", "/tmp"], run: first.run))
        if marked == true {
            #expect(String(decoding: claimed.result.stdout, as: UTF8.self).split(separator: "\n").contains("prestarted-mark"),
                    "the step used the waiting sandbox")
        }
        for _ in 0..<3 {
            let next = w.service.run(w.call(probe, run: first.run))
            #expect(next.exitStatus == 0 && String(decoding: next.result.stdout, as: UTF8.self) == "2\nlane\n",
                    "\(next.result.error ?? "")")
            #expect(next.result.protections.contains { $0.hasPrefix("cgroup:") } == first.result.protections.contains { $0.hasPrefix("cgroup:") })
        }
        #expect(!exists(waiting.pid), "the waiting sandbox was used by the next step and is gone")
        let last = try #require(readySandbox(w, other: waiting.pid))
        w.service.close()
        #expect(w.service.pool?.readySandboxes.isEmpty == true)
        #expect(!exists(last.pid), "close kills the waiting sandbox")
        if let cgroup = last.cgroup { #expect(!FileManager.default.fileExists(atPath: cgroup), "and removes its cgroup") }
    }

    @Test("a workspace replaced between steps is the new one, not the prestarted sandbox's")
    func replacedWorkspace() throws {
        let w = try World("pre-ws", prestart: 1)
        defer { w.dispose() }
        _ = FileManager.default.createFile(atPath: w.workspace + "/old", contents: nil)
        let first = w.service.run(w.call(["ls"]))
        #expect(String(decoding: first.result.stdout, as: UTF8.self) == "old\n")
        let waiting = try #require(readySandbox(w))
        try FileManager.default.moveItem(atPath: w.workspace, toPath: w.root + "/ws.before")
        try FileManager.default.createDirectory(atPath: w.workspace, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o777])
        _ = FileManager.default.createFile(atPath: w.workspace + "/new", contents: nil)
        let second = w.service.run(w.call(["ls"], run: first.run))
        #expect(second.exitStatus == 0 && String(decoding: second.result.stdout, as: UTF8.self) == "new\n")
        #expect(!exists(waiting.pid), "the sandbox of the old workspace was killed unused")
    }

    @Test("a protected file replaced on the host while a sandbox waits stays read-only: the step gets a new sandbox")
    func replacedProtectedFile() throws {
        let w = try World("pre-protect", prestart: 1)
        defer { w.dispose() }
        let git = w.workspace + "/.git"
        try FileManager.default.createDirectory(atPath: git, withIntermediateDirectories: false)
        try "[core]\n".write(toFile: git + "/config", atomically: false, encoding: .utf8)
        let first = w.service.run(w.call(["true"]))
        #expect(first.exitStatus == 0, "\(first.result.error ?? "")")
        let waiting = try #require(readySandbox(w))
        // An editor's save: a new file renamed over the old one. The kernel detaches the waiting
        // sandbox's read-only bind of the old file.
        let saved = "[core]\n\tbare = false\n"
        try saved.write(toFile: git + "/config.new", atomically: false, encoding: .utf8)
        #expect(rename(git + "/config.new", git + "/config") == 0)
        let marked = try mark(waiting.pid)
        #expect(marked != false)
        let second = w.service.run(w.call(["sh", "-c", "ls /tmp; echo '[alias] x = !touch /tmp/owned' >> .git/config"], run: first.run))
        #expect(second.result.outcome == .exited && second.exitStatus != 0, "the protected file is read-only in the step")
        if marked == true {
            #expect(!String(decoding: second.result.stdout, as: UTF8.self).contains("prestarted-mark"),
                    "the step ran in a new sandbox, not the waiting one")
        }
        #expect(String(decoding: second.result.stderr, as: UTF8.self).contains("Read-only file system"))
        #expect((try? String(contentsOfFile: git + "/config", encoding: .utf8)) == saved)
        #expect(!exists(waiting.pid), "the sandbox that lost a mount was killed unused")
    }

    @Test("`lanes stop` while no call runs: the waiting sandbox and its cgroup are gone within seconds")
    func stoppedWhileIdle() throws {
        let (w, run, waiting) = try afterFirstStep("pre-stop")
        defer { w.dispose() }
        // What `lanes stop` does from another process: a stop record; no step is in flight.
        let report = try RunStopper.stop(journal: w.service.openJournal(), run: run, by: "tests", reason: "idle stop")
        #expect(report.steps.isEmpty && report.survivors.isEmpty)
        var gone = false
        for _ in 0..<500 where !gone {
            gone = !exists(waiting.pid)
            if !gone { usleep(10_000) }
        }
        #expect(gone, "the waiting sandbox of a stopped run is killed without a further call")
        #expect(w.service.pool?.readySandboxes.isEmpty == true)
        if let cgroup = waiting.cgroup { #expect(!FileManager.default.fileExists(atPath: cgroup), "and its cgroup removed") }
        let next = w.service.run(w.call(["true"], run: run))
        #expect(next.result.reason == .stopped && w.service.pool?.readySandboxes.isEmpty == true)
    }

    @Test("a command over 64 KiB runs in a sandbox of its own; the waiting one stays for the next step")
    func bigCommand() throws {
        let (w, run, waiting) = try afterFirstStep("pre-big")
        defer { w.dispose() }
        let big = String(repeating: "x", count: 70_000)
        let step = w.service.run(w.call(["sh", "-c", "echo ${#1}", "sh", big], run: run))
        #expect(step.exitStatus == 0 && String(decoding: step.result.stdout, as: UTF8.self) == "70000\n", "\(step.result.error ?? "")")
        #expect(exists(waiting.pid) && w.service.pool?.readySandboxes.first?.pid == waiting.pid,
                "the prestarted sandbox was not used for it")
    }

    @Test("in a prestarted sandbox a missing or forbidden command fails as in a cold one, and a working one runs from PATH")
    func failuresAsCold() throws {
        let warm = try World("pre-fail", prestart: 1)
        let cold = try World("cold-fail", prestart: 0)
        defer { warm.dispose(); cold.dispose() }
        let first = warm.service.run(warm.call(["true"]))
        // A file the step cannot execute (no x bit), and one that does not exist.
        try "#!/bin/sh\n".write(toFile: warm.workspace + "/noexec", atomically: true, encoding: .utf8)
        try "#!/bin/sh\n".write(toFile: cold.workspace + "/noexec", atomically: true, encoding: .utf8)
        for (argv, status) in [(["no-such-command-lanes"], 127), (["./noexec"], 126), (["sh", "-c", "echo $0 $PWD", "from-path"], 0)] {
            let waiting = try #require(readySandbox(warm))
            let w = warm.service.run(warm.call(argv, run: first.run))
            let c = cold.service.run(cold.call(argv))
            #expect(!exists(waiting.pid), "the step of \(argv) used the waiting sandbox")
            #expect(w.exitStatus == status && w.result.outcome == c.result.outcome && w.exitStatus == c.exitStatus,
                    "\(argv): \(w.exitStatus) vs cold \(c.exitStatus), expected \(status)")
            #expect(w.result.error?.replacingOccurrences(of: warm.workspace, with: "WS")
                    == c.result.error?.replacingOccurrences(of: cold.workspace, with: "WS"), "\(argv)")
            #expect(String(decoding: w.result.stdout, as: UTF8.self).replacingOccurrences(of: warm.workspace, with: "WS")
                    == String(decoding: c.result.stdout, as: UTF8.self).replacingOccurrences(of: cold.workspace, with: "WS"))
        }
    }

    @Test("a refused step leaves no sandbox waiting")
    func refusedDrains() throws {
        let (w, run, waiting) = try afterFirstStep("pre-gate")
        defer { w.dispose() }
        let gated = w.service.run(w.call(["deploy", "prod"], run: run))
        #expect(gated.result.reason == .awaitingApproval)
        #expect(w.service.pool?.readySandboxes.isEmpty == true)
        #expect(!exists(waiting.pid))
    }

    @Test("a step ends on PID 1's final report, its teardown off the step's path; close leaves no PID 1 or cgroup", arguments: [0, 1])
    func retiredSandboxes(prestart: Int) throws {
        let w = try World("retire-\(prestart)", prestart: prestart)
        defer { w.dispose() }
        // Each step leaves a process behind that holds none of the step's output, so the output
        // reaches EOF without it: only PID 1 killing and reaping it *before* its final report
        // keeps it from still running when the step's result comes back. (Without that, PID 1's
        // exit would still kill it, 0.4-2 ms later: this catches it when the timing shows it;
        // LastActTests checks the order itself, every time.)
        let marker = "31.\(prestart)\(getpid())"
        func leftBehind() -> [pid_t] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }.filter { pid in
                (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) == "sleep\u{0}\(marker)\u{0}"
            }
        }
        var run: String?
        for i in 0..<20 {
            let before = w.service.retirements.retired.count
            let r = w.service.run(w.call(["sh", "-c", "sleep \(marker) </dev/null >/dev/null 2>&1 & echo started"], run: run))
            // At once (one read): the step's cgroup, while PID 1 is still exiting, holds PID 1
            // alone — or nothing, or is gone already. (/proc is scanned too, for hosts without one.)
            let retired = w.service.retirements.retired
            if retired.count > before, let cgroup = retired.last?.cgroup,
               let procs = try? String(contentsOfFile: cgroup + "/cgroup.procs", encoding: .utf8) {
                #expect(procs.split(separator: "\n").count <= 1, "step \(i + 1): only PID 1 is left in the step's cgroup: \(procs)")
            }
            #expect(r.exitStatus == 0 && String(decoding: r.result.stdout, as: UTF8.self) == "started\n", "\(r.result.error ?? "")")
            #expect(leftBehind().isEmpty, "step \(i + 1): nothing the step left runs when its result is back")
            if i == 0 { #expect(r.result.cpuMs > 0, "the step's CPU time comes from PID 1's report when PID 1 is not yet reaped") }
            run = r.run
        }
        // Usually every step ends on the report (PID 1's exit tears the namespaces down for
        // 0.4-2 ms); a monitor that wakes only after PID 1 is gone reaps it itself. Twenty steps
        // without a single retirement means the early end never happens.
        let retired = w.service.retirements.retired
        #expect(!retired.isEmpty, "no step of twenty ended on PID 1's final report")
        w.service.close()
        for r in retired {
            #expect(!exists(r.pid), "close waits until every retired PID 1 is reaped (\(r.pid))")
            if let cgroup = r.cgroup { #expect(!FileManager.default.fileExists(atPath: cgroup), "and its cgroup removed") }
        }
    }
}
