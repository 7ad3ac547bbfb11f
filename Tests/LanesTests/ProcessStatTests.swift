import Glibc
import LaneModel
import LaneSys
import Testing

@Suite("/proc/PID/stat")
struct ProcessStatTests {
    @Test("fields are counted from the command's last parenthesis; this process reads back")
    func parse() throws {
        // A command may hold spaces and parentheses: "(a) b (c" ends at the last ")".
        let line = "4242 (a) b ) (c) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 0 0\n"
        let s = try #require(ProcessStat.parse(Array(line.utf8)[...]))
        #expect(s.state == UInt8(ascii: "S") && s.parent == 17 && s.startTime == 987_654)
        #expect(ProcessStat.parse(Array("4242 (x) S 1 2".utf8)[...]) == nil)
        let me = try #require(ProcessStat.read(getpid()))
        #expect(me.parent == getppid())
        #expect(me.startTime > 0)
        #expect(ProcessStat.read(Int32.max) == nil)
    }
}
