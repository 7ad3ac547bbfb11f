import LanePlan
import Testing
@testable import lane_init

/// PID 1's last act (`LastAct`): `lanes` ends a step on the report it sends, so everything else
/// of the sandbox must be gone, and the step's output closed, before the report goes out.
@Suite("lane-init's last act: kill and reap, then close the output, then report")
struct LastActTests {
    @Test("the leftovers are killed and reaped and the stdio closed before the report, which carries the rusage")
    func order() {
        var events: [String] = []
        var sent: InitReport?
        let used = InitReport.Ending(cpuMicros: 1234, maxRssKb: 56)
        let act = LastAct(killRemaining: { events.append("kill and reap") },
                          resourceUse: { events.append("rusage"); return used },
                          close: { events.append("close \($0)") },
                          send: { events.append("report"); sent = $0 })
        act.perform(InitReport(kind: .exited, value: 3))
        #expect(events == ["kill and reap", "rusage", "close 0", "close 1", "close 2", "report", "close 4"])
        #expect(sent?.kind == .exited && sent?.value == 3 && sent?.ending == used)
    }
}
