import Foundation
import InMemoryLogging
import LaneConfig
import LaneJournal
import LaneModel
import LaneRuntime
import LaneTestSupport
import Logging
import Testing

/// The step service driven directly, as a second front door would: no `lanes` process.
@Suite("StepService", .serialized)
struct StepServiceTests {
    /// A private config (the real profiles, one gated lane), state directory and workspace.
    struct World {
        let root: String
        let service: StepService
        let log: InMemoryLogHandler
        var workspace: String { root + "/ws" }

        init(_ name: String, credential: Bool = false, prestart: Int = 0) throws {
            root = try LanesCLI.temporaryDirectory("svc-" + name)
            let fm = FileManager.default
            try fm.createDirectory(atPath: root + "/ws", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
            try fm.createDirectory(atPath: root + "/config/Lanes", withIntermediateDirectories: true)
            try fm.copyItem(atPath: LanesCLI.packageRoot.path + "/Profiles", toPath: root + "/config/Profiles")
            try """
                description = "service tests"
                owner = "tests"
                profile = "workspace-write"
                \(credential ? "[credentials]\nTOKEN = { from = \"env:SVC_TEST_TOKEN\", as = \"env\" }" : "")
                [review]
                commands = ["deploy *"]
                """.write(toFile: root + "/config/Lanes/svc.toml", atomically: true, encoding: .utf8)
            log = InMemoryLogHandler()
            var logger = Logger(label: "test", factory: { [log] _ in log })
            logger.logLevel = .debug
            service = StepService(
                options: ServiceOptions(config: ConfigStore(root: root + "/config", origin: "test"), stateDirectory: root + "/state",
                                        initHelper: LanesCLI.productsDirectory.path + "/lane-init", currentDirectory: root + "/ws",
                                        prestartSandboxes: prestart),
                logger: logger)
        }

        /// Closes the service and removes its directory.
        func dispose() {
            service.close()
            try? FileManager.default.removeItem(atPath: root)
        }

        func call(_ argv: [String], run: String? = nil, step: String? = nil) -> StepCall {
            StepCall(lane: "svc", argv: argv, workspace: workspace, run: run, step: step)
        }
    }

    @Test("intent, spawn, close, replay, nondeterminism and a review gate, in process")
    func wholeStep() throws {
        let w = try World("flow")
        defer { w.dispose() }
        var notices: [String] = []
        let first = w.service.run(w.call(["sh", "-c", "echo hi; echo err >&2; exit 3"])) { notices.append($0) }
        let run = try #require(first.run)
        #expect(first.result.outcome == .exited && first.exitStatus == 3)
        #expect(first.result.stdout == Array("hi\n".utf8) && first.result.stderr == Array("err\n".utf8))
        #expect(first.step == "1" && !first.replayed)
        #expect(notices == ["run \(run)"])

        let journal = try w.service.openJournal()
        #expect(try journal.records(run: run).map(\.kind) == [.run, .intent, .close])
        // What the journal holds is the reported result, byte for byte.
        #expect(try journal.records(run: run).last?.closeJSON == first.resultJSON)

        let again = w.service.run(w.call(["sh", "-c", "echo hi; echo err >&2; exit 3"], run: run, step: "1"))
        #expect(again.replayed && again.exitStatus == 3 && again.resultJSON == first.resultJSON)
        #expect(try journal.records(run: run).count == 3, "a replay appends nothing")

        let other = w.service.run(w.call(["sh", "-c", "echo different"], run: run, step: "1"))
        #expect(other.result.outcome == .refused && other.result.reason == .nondeterministic && other.exitStatus == 75)

        let gated = w.service.run(w.call(["deploy", "prod"], run: run))
        #expect(gated.result.outcome == .refused && gated.result.reason == .awaitingApproval && gated.exitStatus == 78)
        let decisions = try journal.records(run: run).compactMap(\.decision).map(\.action)
        #expect(decisions == [.approvalRequested])
        // Every event carries the run; steps carry their ids.
        let closed = w.log.entries.filter { $0.message.description == "step closed" }
        #expect(closed.count == 1 && closed.first?.metadata["run"]?.description == run && closed.first?.metadata["step"]?.description == "1")
    }

    @Test("configuration errors and a missing workspace are refused before the journal, with the stage")
    func refusedBeforeJournal() throws {
        let w = try World("early")
        defer { w.dispose() }
        let noLane = w.service.run(StepCall(lane: "nosuch", argv: ["true"]))
        #expect(noLane.run == nil && noLane.result.outcome == .failedToStart && noLane.exitStatus == 125)
        #expect(noLane.result.error?.hasPrefix("config: ") == true)
        let noWorkspace = w.service.run(StepCall(lane: "svc", argv: ["true"], workspace: w.root + "/missing"))
        #expect(noWorkspace.result.error?.hasPrefix("workspace: ") == true && noWorkspace.exitStatus == 125)
    }

    @Test("logs never carry a credential's value")
    func noSecretInLogs() throws {
        let secret = "svc-secret-\(UInt64.random(in: 1...UInt64.max))"
        setenv("SVC_TEST_TOKEN", secret, 1)
        defer { unsetenv("SVC_TEST_TOKEN") }
        let w = try World("log", credential: true)
        defer { w.dispose() }
        let r = w.service.run(w.call(["sh", "-c", "echo \"$TOKEN\"; exit 1"]))
        #expect(r.exitStatus == 1)
        #expect(String(decoding: r.result.stdout, as: UTF8.self) == "[redacted:TOKEN]\n")
        #expect(!w.log.entries.isEmpty, "the test must see log lines to mean anything")
        for e in w.log.entries {
            #expect(!"\(e.message) \(e.metadata)".contains(secret))
        }
        #expect(!r.resultJSON.contains(secret))
    }
}
