import LaneConfig
import LaneModel
import Testing

/// The pure rules behind the CLI's and the parsers' input checks (issue 11).
@Suite("input syntax")
struct InputSyntaxTests {
    @Test("run ids: 1-64 of A-Z a-z 0-9 . _ -, no leading . or -; generated ids pass")
    func runIDs() {
        for good in ["r", "run-1", "20261122-231500-3fa9c1", "A.b_c-9", String(repeating: "x", count: 64), newRunIDLike()] {
            #expect(InputSyntax.checkID(good) == nil, "\(good)")
        }
        #expect(InputSyntax.checkID("")?.contains("empty") == true)
        #expect(InputSyntax.checkID("a/b c")?.contains("a slash") == true)
        #expect(InputSyntax.checkID("a b")?.contains("a space") == true)
        #expect(InputSyntax.checkID("..")?.contains("starts with") == true)
        #expect(InputSyntax.checkID("-x")?.contains("starts with") == true)
        #expect(InputSyntax.checkID("é") != nil)
        #expect(InputSyntax.checkID("a\nb")?.contains("control") == true)
        #expect(InputSyntax.checkID(String(repeating: "x", count: 65))?.contains("at most 64") == true)
    }

    /// The shape `newRunID()` (LaneJournal) produces: UTC stamp plus random hex.
    func newRunIDLike() -> String { "20261201-063651-8c69e7" }

    @Test("effects: the documented list only; the lane parser uses the same list")
    func effects() throws {
        #expect(InputSyntax.checkEffect("irreversible") == nil)
        #expect(InputSyntax.checkEffect("bogus")?.contains("expected one of") == true)
        #expect(InputSyntax.checkEffect("") != nil)
        let text = "description = \"d\"\nowner = \"o\"\nprofile = \"p\"\n[review]\neffects = [\"irreversable\"]\n"
        #expect(throws: ConfigErrors.self) { try LaneParser().parse(name: "l", file: "l.toml", text: text) }
    }

    @Test("durations: one parser for profiles and --timeout")
    func durations() throws {
        #expect(try InputSyntax.parseDuration("5m").get() == 300)
        #expect(try InputSyntax.parseDuration("90").get() == 90)
        #expect(try InputSyntax.parseDuration("0.5").get() == 0.5)
        #expect(try InputSyntax.parseDuration("500ms").get() == 0.5)
        #expect(try InputSyntax.parseDuration("1h").get() == 3600)
        for bad in ["", "0", "5 parsecs", "-1", "m", "inf", "nan"] {
            #expect((try? InputSyntax.parseDuration(bad).get()) == nil, "\(bad)")
        }
        #expect(InputSyntax.quantity("64K", units: InputSyntax.sizeUnits) == 65536)
    }

    @Test("a count's error message has no hole: `(a number)`, never `a string like )`")
    func countMessage() throws {
        let parser = ProfileParser(knownSyscall: { _ in true })
        do {
            _ = try parser.parse(name: "p", file: "p.toml", text: "[limits]\nopen_files = \"lots\"\n")
            Issue.record("a string count was accepted")
        } catch {
            let message = error.description
            #expect(message.contains("expected a count (a number), found a string \"lots\""), "\(message)")
            #expect(!message.contains("like )"), "\(message)")
        }
        do {
            _ = try parser.parse(name: "p", file: "p.toml", text: "[limits]\nwall_clock = \"soon\"\n")
            Issue.record("a bad duration was accepted")
        } catch {
            #expect(error.description.contains("a number or a string like \"10s\" or \"10m\""), "\(error.description)")
        }
    }

    @Test("pending's durations are rounded: an 8 h timeout shows in 8h")
    func durationText() {
        #expect(DurationText.short(8 * 3600 - 0.4) == "8h")
        #expect(DurationText.short(8 * 3600 - 30) == "8h")
        #expect(DurationText.short(59.6) == "60s")
        #expect(DurationText.short(119.4) == "119s")
        #expect(DurationText.short(300) == "5m")
        #expect(DurationText.short(-3) == "0s")
    }

    @Test("profile limits above the host's hard limits are named")
    func hostLimits() {
        let limits = Profile.Limits(cpuSeconds: 600, openFiles: 4096, processes: 512)
        let excess = HostLimits.excesses(limits, hard: HostLimits.Hard(openFiles: 1024, cpuSeconds: 600, processes: nil))
        #expect(excess.map(\.key) == ["limits.open_files", "limits.cpu"])
        #expect(excess.first?.description.contains("limits.open_files = 4096 is above this process's hard limit 1024") == true)
        #expect(HostLimits.excesses(limits, hard: HostLimits.Hard(openFiles: 4096, cpuSeconds: 601)).isEmpty)
        #expect(HostLimits.excesses(limits, hard: HostLimits.Hard()).isEmpty)
    }
}
