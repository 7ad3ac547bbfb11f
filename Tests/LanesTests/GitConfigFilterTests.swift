import LaneModel
import Testing

@Suite("Git configuration of repositories a step created")
struct GitConfigFilterTests {
    @Test("command-running keys are dropped, safe keys kept")
    func filters() {
        let text = "[core]\n\trepositoryformatversion = 0\n\tfsmonitor = evil\n\tpager = evil\n[remote \"origin\"]\n\turl = /x\n\tuploadpack = evil\n[alias]\n\tst = !evil\n[include]\n\tpath = x\n"
        let (out, removed) = GitConfigFilter.filter(text)
        #expect(removed == ["core.fsmonitor", "core.pager", "remote.*.uploadpack", "alias.st", "include.path"])
        #expect(out == "[core]\n\trepositoryformatversion = 0\n[remote \"origin\"]\n\turl = /x\n")
    }

    @Test("a safe config is left as it is; an unparsable one is replaced whole")
    func unchangedOrMinimal() {
        let safe = "[core]\n\tbare = false\n[branch \"main\"]\n\tremote = origin\n"
        #expect(GitConfigFilter.filter(safe).removed.isEmpty)
        let tricky = "[core]\n\tbare = false \\\n[core]\n\tfsmonitor = evil\n"
        #expect(GitConfigFilter.filter(tricky).text == GitConfigFilter.minimal)
    }
}
