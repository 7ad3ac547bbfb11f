import Foundation
import LaneConfig
import LaneGovernance
import LaneJournal
import LaneModel
import LaneTestSupport
import Testing

@Suite("Governance rules without processes")
struct RulesTests {
    typealias Review = Lane.Review

    @Test("argv patterns: words in order, globs in words, a trailing * matches any rest, shell scripts word by word")
    func patterns() {
        let r = Review(commands: ["git push *", "rm -rf *", "kubectl apply", "curl *prod*"])
        #expect(r.gate(argv: ["git", "push"], credentials: [], effect: nil) != nil)
        #expect(r.gate(argv: ["/usr/bin/git", "push", "origin", "main"], credentials: [], effect: nil) != nil)
        #expect(r.gate(argv: ["git", "commit", "-m", "push"], credentials: [], effect: nil) == nil)
        #expect(r.gate(argv: ["git", "pushy"], credentials: [], effect: nil) == nil)
        #expect(r.gate(argv: ["rm", "-rf", "/"], credentials: [], effect: nil) != nil)
        #expect(r.gate(argv: ["rm", "-r", "x"], credentials: [], effect: nil) == nil)
        #expect(r.gate(argv: ["kubectl", "apply", "-f", "x"], credentials: [], effect: nil) != nil)
        #expect(r.gate(argv: ["curl", "https://api.prod.example"], credentials: [], effect: nil) != nil)
        #expect(r.gate(argv: ["curl", "https://staging"], credentials: [], effect: nil) == nil)
        #expect(r.gate(argv: ["sh", "-c", "make && git push origin main"], credentials: [], effect: nil)?.contains("shell") == true)
        #expect(r.gate(argv: ["sh", "-c", "make; git status"], credentials: [], effect: nil) == nil)
        #expect(Review.glob("a*c", "abbbc") && Review.glob("a?c", "abc") && !Review.glob("a?c", "ac") && Review.glob("*", ""))
    }

    @Test("effects and credential names gate too")
    func effectsAndCredentials() {
        let r = Review(effects: ["irreversible"], credentials: ["PROD_*"])
        #expect(r.gate(argv: ["true"], credentials: [], effect: "irreversible") == "effect irreversible")
        #expect(r.gate(argv: ["true"], credentials: [], effect: "reversible") == nil)
        #expect(r.gate(argv: ["true"], credentials: ["PROD_DB_PASSWORD"], effect: nil) == "credential PROD_DB_PASSWORD")
        #expect(r.gate(argv: ["true"], credentials: ["STAGING_TOKEN"], effect: nil) == nil)
    }

    @Test("[review], [budget] and halt_on parse strictly")
    func parsing() throws {
        let text = """
            description = "d"
            owner = "o"
            profile = "p"
            halt_on = ["seccomp_violation", "oom_killed"]
            [review]
            commands = ["git push *"]
            effects = ["irreversible"]
            in_doubt = true
            timeout = "2h"
            [budget]
            max_steps = 3
            max_wall = "10m"
            max_output = "1M"
            loop_failures = 4
            """
        let lane = try LaneParser().parse(name: "l", file: "l.toml", text: text)
        #expect(lane.review.commands == ["git push *"])
        #expect(lane.review.inDoubt)
        #expect(lane.review.timeoutSeconds == 7200)
        #expect(lane.budget.limits == ["max_steps": 3, "max_wall": 600, "max_output": 1_048_576, "loop_failures": 4])
        #expect(lane.haltOn == ["seccomp_violation", "oom_killed"])
        let base = "description = \"d\"\nowner = \"o\"\nprofile = \"p\"\n"
        for bad in ["[review]\ncommand = [\"x\"]\n", "[budget]\nmax_step = 3\n", "halt_on = [\"exited\"]\n",
                    "[review]\ntimeout = 0\n", "[budget]\nloop_failures = 0\n", "[review]\nin_doubt = \"yes\"\n"] {
            #expect(throws: ConfigErrors.self, "\(bad)") { try LaneParser().parse(name: "l", file: "l.toml", text: base + bad) }
        }
        #expect(try LaneParser().parse(name: "l", file: "l.toml", text: base).budget.loopFailures == 3)
    }

    @Test("every shipped lane names its owner, and their gates cover what the issue names")
    func shippedLanes() throws {
        let dir = LanesCLI.packageRoot.path + "/Lanes"
        var lanes: [String: Lane] = [:]
        for name in ["engineering", "extraction", "operations", "compliance"] {
            let text = try String(contentsOfFile: "\(dir)/\(name).toml", encoding: .utf8)
            let lane = try LaneParser().parse(name: name, file: name, text: text)
            #expect(!lane.owner.isEmpty)
            lanes[name] = lane
        }
        let gated = { (lane: String, argv: [String]) in lanes[lane]?.review.gate(argv: argv, credentials: [], effect: nil) != nil }
        #expect(gated("engineering", ["git", "push", "origin", "main"]))
        #expect(gated("engineering", ["kubectl", "apply", "-f", "deploy.yaml"]))
        #expect(gated("engineering", ["cat", "/secrets/prod/db.env"]))
        #expect(!gated("engineering", ["git", "commit", "-m", "x"]))
        #expect(!gated("engineering", ["swift", "build"]))
        #expect(gated("operations", ["psql", "-c", "UPDATE ledger SET x = 1"]))
        #expect(!gated("operations", ["python3", "prepare.py"]))
        #expect(gated("compliance", ["curl", "-T", "pack.zip", "https://regulator.example"]))
        #expect(!gated("compliance", ["pdftotext", "a.pdf"]))
        for lane in ["engineering", "operations", "compliance"] { #expect(lanes[lane]?.review.effects.contains("irreversible") == true) }
    }

    @Test("usage is counted from records; an export verifies and one changed byte breaks it")
    func exportSeal() throws {
        let dir = try LanesCLI.temporaryDirectory("gov-export-unit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try SQLiteJournal(path: dir + "/j.sqlite")
        let sup = Supervisor(pid: 1, startTime: 1, bootID: "b", host: "h")
        let intent = StepIntent(lane: "l", argv: ["x"], cwd: "/", environment: [], credentials: [], profile: "p",
                                profileFingerprint: "f", limits: [:], supervisor: sup)
        guard case let .started(step, seq, _) = try journal.begin(BeginRequest(run: "r", step: nil, intent: intent, retryAllowed: false, isAlive: { _ in false })) else {
            Issue.record("not started")
            return
        }
        try journal.close(run: "r", step: step, intentSeq: seq, result: StepResult(
            lane: "l", profile: "p", profileFingerprint: "f", outcome: .exited, exitCode: 1, wallMs: 1500, cpuMs: 250,
            stdout: Array("abc".utf8), stderr: Array("de".utf8)))
        let usage = RunUsage(try journal.records(run: "r"))
        // The state the store keeps beside the head is the same fold as from the records.
        #expect(try journal.keptState(run: "r") == RunState(try journal.records(run: "r")))
        #expect(usage.steps == 1 && usage.failedSteps == 1 && usage.outputBytes == 5 && usage.wallSeconds == 1.5 && usage.cpuSeconds == 0.25)
        let (records, head) = try journal.chain(run: "r")
        let data = try RunExport.document(run: "r", records: records, head: head, lane: ["owner": "ops"], profile: [:], exportedAt: 1)
        #expect(RunExport.verify(data).problems.isEmpty)
        // One byte changed anywhere in the content breaks it: every letter/digit position is tried.
        let bytes = Array(data)
        var tried = 0
        for i in stride(from: 0, to: bytes.count, by: 7) where (bytes[i] >= 0x61 && bytes[i] <= 0x7a) || (bytes[i] >= 0x30 && bytes[i] <= 0x39) {
            var changed = bytes
            changed[i] = bytes[i] == 0x31 ? 0x32 : (bytes[i] == 0x7a ? 0x79 : bytes[i] + 1)
            tried += 1
            #expect(!RunExport.verify(Data(changed)).problems.isEmpty, "byte \(i) changed but the document still verifies")
        }
        #expect(tried > 50)
    }
}
