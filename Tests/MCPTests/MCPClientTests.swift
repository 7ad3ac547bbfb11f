import Foundation
import LaneTestSupport
import Testing

/// `lanes mcp` driven by a client no one here wrote: the official `mcp` Python package, in the
/// venv `scripts/test` creates (.build-venv, or LANES_VENV). Each test runs one scenario of
/// scripts/mcp_e2e.py (scenarios in scripts/mcp_*.py), which asserts and exits 1 with what it expected and found. A missing venv
/// FAILS these tests (it never skips them silently): create it with
/// `. scripts/lib/setup.sh && lanes_ensure_venv`.
@Suite("lanes mcp with the Python mcp client", .serialized)
struct MCPClientTests {
    static let venv: String = ProcessInfo.processInfo.environment["LANES_VENV"]
        ?? LanesCLI.packageRoot.appendingPathComponent(".build-venv").path
    static let python = venv + "/bin/python3"
    static let script = LanesCLI.packageRoot.appendingPathComponent("Tests/MCPTests/scripts/mcp_e2e.py").path

    func scenario(_ name: String, transport: String = "stdio") throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            Issue.record("""
                no Python venv with the mcp package at \(Self.venv): the MCP tests need it. \
                Create it with `. scripts/lib/setup.sh && lanes_ensure_venv` (scripts/test does).
                """)
            return
        }
        let out = try LanesCLI.execute(Self.python, [Self.script, "--lanes", LanesCLI.lanesPath, "--scenario", name,
                                                     "--transport", transport],
                                       environment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp"])
        #expect(out.status == 0, "scenario \(name) over \(transport) failed:\n\(out.stdout)\n\(out.stderr.suffix(4000))")
        #expect(out.stdout.contains("ok: "), "scenario \(name) printed no result:\n\(out.stdout)")
    }

    @Test("tools, run_command, files, run_status, resources (stdio)") func basics() throws { try scenario("basics") }
    @Test("a replayed step id, nondeterminism, resume after restart (stdio)") func replay() throws { try scenario("replay") }
    @Test("a gated call awaits approval and runs once approved (stdio)") func gated() throws { try scenario("gated") }
    @Test("a budget halt (stdio)") func budget() throws { try scenario("budget") }
    @Test("cancellation stops the step, recorded stopped (stdio)") func cancel() throws { try scenario("cancel") }
    @Test("progress notifications for a long step (stdio)") func progress() throws { try scenario("progress") }
    @Test("bad requests get protocol errors; a disconnect mid-step stops it (stdio)") func badRequests() throws { try scenario("bad_requests") }
    @Test("SIGKILL mid-step, restart: in doubt, not re-run (stdio)") func killed() throws { try scenario("killed") }
    @Test("concurrent calls on one session (stdio)") func concurrent() throws { try scenario("concurrent") }
    @Test("--max-steps: calls beyond it wait; one cancelled while waiting runs nothing (stdio)") func slots() throws { try scenario("slots") }
    @Test("examples/mcp_client.py runs against a lane (stdio)") func example() throws { try scenario("example") }
    @Test("long outputs cut in replies; large records and outputs read in parts; the run paged (stdio)") func longOutput() throws { try scenario("long_output") }
    @Test("a credential never reaches the client, the server's log or the journal (stdio)") func secrets() throws { try scenario("secrets") }
    @Test("run_command describes the lane's network: none, or the egress allow-list (stdio)") func networkTools() throws { try scenario("network_tools") }

    // The same over Streamable HTTP on a unix socket (`--listen unix:PATH`, socket 0600).
    @Test("tools, run_command, files, run_status, resources (unix)") func basicsUnix() throws { try scenario("basics", transport: "unix") }
    @Test("large records and outputs read in parts under the client's 1 MiB event limit (unix)") func longOutputUnix() throws { try scenario("long_output", transport: "unix") }
    @Test("a credential never reaches a client of the socket, the log or the journal (unix)") func secretsUnix() throws { try scenario("secrets", transport: "unix") }
    @Test("replay, nondeterminism, resume after restart (unix)") func replayUnix() throws { try scenario("replay", transport: "unix") }
    @Test("a gated call (unix)") func gatedUnix() throws { try scenario("gated", transport: "unix") }
    @Test("a budget halt (unix)") func budgetUnix() throws { try scenario("budget", transport: "unix") }
    @Test("cancellation (unix)") func cancelUnix() throws { try scenario("cancel", transport: "unix") }
    @Test("three clients at once on one server (unix)") func concurrentUnix() throws { try scenario("concurrent", transport: "unix") }
    @Test("--max-steps (unix)") func slotsUnix() throws { try scenario("slots", transport: "unix") }
    @Test("SIGKILL mid-step, restart: in doubt, not re-run (unix)") func killedUnix() throws { try scenario("killed", transport: "unix") }
    @Test("a lane's socket_group: socket 0660 for the group; a bad name refused (unix)") func socketGroup() throws { try scenario("socket_group", transport: "unix") }
    @Test("bad requests and a disconnect mid-step (unix)") func badHTTP() throws { try scenario("bad_http", transport: "unix") }
}
