import CLaneSys
import LanePlan
import Testing

@Suite("Spawn plan codec")
struct PlanCodecTests {
    @Test("a plan survives encoding")
    func roundTrip() throws {
        let plan = SpawnPlan(argv: ["python3", "-c", "print(1)"], environment: ["PATH=/usr/bin", "É=ü"], workdir: "/w",
                             mounts: [.tmpfs(target: "/tmp", sizeBytes: 1 << 20, mode: 0o1777),
                                      .bind(source: "/usr", target: "/usr", readOnly: true, optional: false),
                                      .proc(target: "/proc"), .devices(target: "/dev"),
                                      .symlink(destination: "usr/bin", target: "/bin"),
                                      .file(target: "/etc/passwd", contents: [1, 2, 3], mode: 0o644),
                                      .directory(target: "/etc", mode: 0o755), .remountReadOnly(target: "/x"),
                                      .overlay(lower: "/ws", upper: "/state/u", work: "/state/w", target: "/ws"),
                                      .overlayTrees(lower: 2, layers: 3, upper: "upper", work: "work", target: "/ws")],
                             rlimits: [ResourceLimit(resource: 4, soft: 0, hard: 0)], seccompFilter: [9, 8, 7], egressPort: 3128)
        #expect(try PlanCodec.decode(PlanCodec.encode(plan)) == plan)
        var waiting = plan
        waiting.awaitsCommand = true
        waiting.toolAffinity = [0x0f, 0, 0, 0, 0, 0, 0, 0x80]
        #expect(try PlanCodec.decode(PlanCodec.encode(waiting)) == waiting)
        #expect(try PlanCodec.decode(PlanCodec.encode(waiting)).toolAffinity == [0x0f, 0, 0, 0, 0, 0, 0, 0x80])
        let command = StepCommand(argv: ["true", ""], environment: ["A=b"], workdir: "/w")
        #expect(try PlanCodec.decodeCommand(PlanCodec.encode(command)) == command)
        #expect(waiting.with(command).argv == ["true", ""] && !waiting.with(command).awaitsCommand)
    }

    @Test("truncated or altered plans are refused, not guessed")
    func malformed() {
        let bytes = PlanCodec.encode(SpawnPlan(argv: ["a"], environment: [], workdir: "/", mounts: [], rlimits: [], seccompFilter: []))
        for cut in [0, 3, 10, bytes.count - 1] {
            #expect(throws: PlanDecodingError.self) { try PlanCodec.decode(Array(bytes.prefix(cut))) }
        }
        #expect(throws: PlanDecodingError.self) { try PlanCodec.decode(bytes + [0]) }
        let command = PlanCodec.encode(StepCommand(argv: ["a"], environment: [], workdir: "/"))
        for cut in [0, 3, 10, command.count - 1] {
            #expect(throws: PlanDecodingError.self) { try PlanCodec.decodeCommand(Array(command.prefix(cut))) }
        }
        #expect(throws: PlanDecodingError.self) { try PlanCodec.decodeCommand(command + [0]) }
        #expect(throws: PlanDecodingError.self) { try PlanCodec.decodeCommand(bytes) }
    }

    @Test("init reports round-trip")
    func report() {
        let r = InitReport(kind: .setupFailed, value: 0, errno: 13, stage: SetupStage(LANE_STAGE_MOUNT_PROC), detail: "/proc")
        #expect(InitReport.decode(r.encode()) == r)
        let exited = InitReport(kind: .exited, value: 3)
        #expect(InitReport.decode(exited.encode()) == exited)
        var final = InitReport(kind: .signaled, value: 9)
        final.ending = InitReport.Ending(cpuMicros: 1_234_567, maxRssKb: 4_096)
        let bytes = final.encode()
        #expect(InitReport.decode(bytes) == final)
        #expect(InitReport.decode(bytes) != InitReport(kind: .signaled, value: 9), "the ending is part of the report")
        for cut in [bytes.count - 1, bytes.count - 8, bytes.count - 16] {
            #expect(InitReport.decode(Array(bytes.prefix(cut))) == nil, "a report cut inside its ending is refused")
        }
        #expect(InitReport.decode(bytes + [0]) == nil, "and one with bytes after it")
    }
}
