import Foundation
import LaneTestSupport
import Testing

@Suite("Lane credentials", .serialized)
struct CredentialTests {
    static let lanes = [
        "a": """
            [credentials]
            TOKEN = { from = "secret:tok-a", as = "env" }
            TOKFILE = { from = "secret:tok-f", as = "file" }
            FROMENV = { from = "env:LANES_TEST_CRED", as = "env" }
            """,
        "b": "",
        "c": """
            [credentials]
            MISSING = { from = "secret:nope", as = "env" }
            """,
    ]

    @Test("a lane's secrets reach its steps (env, 0400 file), are redacted everywhere, and nothing else holds them")
    func credentials() throws {
        let f = try Fixture("creds", lanes: Self.lanes, stateInWorkspace: true)
        defer { f.cleanup() }
        let token = "tok-" + UUID().uuidString, fileToken = "file-" + UUID().uuidString, envToken = "env-" + UUID().uuidString
        #expect(try f.lanes(["secret", "set", "tok-a"], stdin: Data((token + "\n").utf8)).status == 0)
        #expect(try f.lanes(["secret", "set", "tok-f"], stdin: Data(fileToken.utf8)).status == 0)
        let list = try f.lanes(["secret", "list"])
        #expect(list.stdout.contains("tok-a") && list.stdout.contains("tok-f"))
        #expect(!list.stdout.contains(token) && !list.stdout.contains(fileToken))
        let env = ["LANES_TEST_CRED": envToken]

        // Lane A gets them and prints them: the output shows [redacted:NAME] only.
        let script = """
            echo "env=$TOKEN"; printf %s "$TOKEN" | base64; echo
            printf 'x%s' "$TOKEN" | base64 -w0; echo; printf 'xy%s' "$TOKEN" | base64 -w0; echo
            echo "file=$(cat /run/lanes/credentials/TOKFILE)"
            stat -c '%a %u' /run/lanes/credentials/TOKFILE
            echo "fromenv=$FROMENV"
            """
        let a = try f.run("a", ["--run", "ra"], ["sh", "-c", script], environment: env)
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stdout.contains("env=[redacted:TOKEN]"))
        #expect(a.stdout.contains("file=[redacted:TOKFILE]"))
        #expect(a.stdout.contains("fromenv=[redacted:FROMENV]"))
        #expect(a.stdout.contains("400 1000"))
        #expect(a.stdout.split(separator: "\n").contains("[redacted:TOKEN]"))  // the base64 form
        // Inside a larger base64 text, at the two other alignments.
        #expect(a.stdout.split(separator: "\n").filter { $0.contains("[redacted:TOKEN]") && !$0.hasPrefix("env=") }.count == 3, "\(a.stdout)")
        let aj = try f.run("a", ["--run", "ra", "--json"], ["sh", "-c", "echo $TOKEN; echo $TOKEN >&2"], environment: env)
        let o = Fixture.json(aj.stdout)
        #expect(o["stdout"] as? String == "[redacted:TOKEN]\n")
        #expect(o["stderr"] as? String == "[redacted:TOKEN]\n")
        let recorded = try f.lanes(["output", "ra", "1"])
        #expect(recorded.stdout.contains("env=[redacted:TOKEN]"))
        // Only the names are in the intent.
        let log = try f.lanes(["log", "ra", "--json"]).stdout
        #expect(log.contains("\"TOKEN\""))

        // Lane B sees none of it: not in its environment, files, /proc or the state directory.
        let probe = """
            env; ls -la /run/lanes/credentials 2>&1; cat /run/lanes/credentials/* 2>&1
            for e in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $e 2>&1; done
            ls -la \(f.state) 2>&1; cat \(f.state)/secrets/* 2>&1; cat \(f.state)/journal.sqlite* 2>&1 | strings | head -100000
            """
        let b = try LanesCLI.run(["run", "b", "--workspace", f.workspace, "--json", "--", "sh", "-c", probe], config: f.config, cwd: f.workspace,
                                 environment: ["LANES_STATE": f.state, "LANES_TEST_CRED": envToken])
        for value in [token, fileToken, envToken] {
            #expect(!b.stdout.contains(value))
            #expect(!b.stderr.contains(value))
        }
        #expect(b.stdout.contains("PATH="))  // the probe did run
        #expect(!b.stdout.contains("redacted"))

        // A missing secret refuses before the spawn, naming the credential and the lane.
        let c = try f.run("c", [], ["sh", "-c", "echo ran > \(f.workspace)/c-ran"])
        #expect(c.status == 125)
        #expect(c.stderr.contains("MISSING") && c.stderr.contains("lane c") && c.stderr.contains("nope"))
        #expect(!FileManager.default.fileExists(atPath: f.workspace + "/c-ran"))
        // Nothing was journaled, so the JSON names no run.
        let cj = try f.run("c", ["--json"], ["true"])
        #expect(cj.status == 125)
        #expect(Fixture.json(cj.stdout)["run"] is NSNull, "\(cj.stdout)")
        #expect(!cj.stderr.contains("lanes: run "))

        // Grep the whole fixture: the values live only in the secret store.
        for value in [token, fileToken] {
            let holders = try files(under: f.root, containing: value)
            #expect(holders.allSatisfy { $0.hasPrefix(f.state + "/secrets/") }, "\(holders)")
            #expect(!holders.isEmpty)
            let b64 = Data(value.utf8).base64EncodedString()
            #expect(try files(under: f.root, containing: b64).isEmpty)
        }
        #expect(try files(under: f.root, containing: envToken).isEmpty)
        #expect(mode(f.state) == 0o700)
        #expect(mode(f.state + "/secrets") == 0o700)
        #expect(mode(f.state + "/secrets/tok-a") == 0o600)
    }

    @Test("lane files: credentials and retry are checked strictly")
    func laneSyntax() throws {
        let f = try Fixture("cred-syntax", lanes: [
            "bad": """
                retry = "sometimes"
                [credentials]
                A = { from = "vault:x", as = "env" }
                B = { from = "secret:ok", as = "disk" }
                C = { from = "secret:ok" }
                D = { from = "secret:ok", as = "env", extra = 1 }
                1X = { from = "secret:ok", as = "env" }
                """,
            "good": """
                retry = "safe"
                [credentials]
                TOKEN = { from = "secret:ok", as = "env" }
                KEY = { from = "file:/etc/hostname", as = "file" }
                """,
        ])
        defer { f.cleanup() }
        let bad = try f.lanes(["check", f.config + "/Lanes/bad.toml"])
        #expect(bad.status == 1)
        for needle in ["retry", "credentials.A.from", "credentials.B.as", "credentials.C.as", "credentials.D.extra", "1X"] {
            #expect(bad.stderr.contains(needle), "\(needle) in \(bad.stderr)")
        }
        let good = try f.lanes(["check", f.config + "/Lanes/good.toml"])
        #expect(good.status == 0, "\(good.stderr)")
    }

    /// Every regular file under `root` whose bytes contain `value`.
    func files(under root: String, containing value: String) throws -> [String] {
        var out: [String] = []
        let needle = Data(value.utf8)
        let e = FileManager.default.enumerator(atPath: root)
        while let rel = e?.nextObject() as? String {
            let path = root + "/" + rel
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            if let data = FileManager.default.contents(atPath: path), data.range(of: needle) != nil { out.append(path) }
        }
        return out
    }
}
