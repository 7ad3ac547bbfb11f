"""Scenarios over Streamable HTTP on a unix socket only: bad requests, disconnects, sessions
(--max-sessions) and a lane's socket_group."""

import json
import os
import subprocess
import sys
import time
import anyio
import httpx2

from mcp_fixture import iserr, result_of, expect, unix_server, with_unix_session


async def bad_http(fx):
    """Over the unix socket: a 100 MB body (413), bad JSON, an unknown tool and wrong types
    (protocol errors), a client that disconnects mid-step (the step is stopped, recorded), and
    the server keeps serving all along."""
    import mcp.shared.exceptions as exc
    McpError = getattr(exc, "MCPError", None) or getattr(exc, "McpError")  # 2.x / 1.x
    async with unix_server(fx, "plain", "badhttp") as sock:
        raw = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=sock), timeout=60)
        async with raw:
            r = await raw.post("http://localhost/mcp", content=b"x" * (100 << 20),
                               headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
            expect(r.status_code == 413, "a 100 MB body is refused (413)", r.status_code)
            r = await raw.post("http://localhost/mcp", content=b"{not json",
                               headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
            expect(r.status_code in (400, 404), "malformed JSON without a session: 400", (r.status_code, r.text[:200]))

        async def body(s):
            for name, args, word in [("rm_rf", {}, "unknown tool"), ("run_command", {"argv": "ls"}, "argv"),
                                     ("run_command", {"argv": ["true"], "bogus": 1}, "bogus"),
                                     ("run_status", {"steps": 0}, "steps"), ("run_status", {"steps": "all"}, "steps")]:
                try:
                    await s.call_tool(name, args)
                    raise AssertionError(f"{name} {args}: expected a protocol error")
                except McpError as e:
                    expect(word in str(e), f"{name}: the error names {word}", str(e))
            # Disconnect mid-step: the HTTP connection carrying the call goes away.
            with anyio.move_on_after(1.5):
                await s.call_tool("run_command", {"argv": ["sleep", "60"], "step_id": "gone"})
            r = await s.call_tool("run_command", {"argv": ["echo", "alive"]})
            expect(result_of(r)["stdout"] == "alive\n", "still serving", result_of(r))
        await with_unix_session(sock, body)
        deadline = time.monotonic() + 15
        closes = []
        while time.monotonic() < deadline and not closes:
            closes = [json.loads(b)["result"] for (_, k, st, b) in fx.records("badhttp") if k == "close" and st == "gone"]
            await anyio.sleep(0.1)
        expect(closes and closes[0]["outcome"] == "stopped", "the abandoned step is recorded stopped", closes)

        # Sessions opened in a loop and never closed: at most 256 stay open. The one used least
        # recently without a request in progress is closed first (its client gets 404); one with
        # a call in progress never is.
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "flood", "version": "1"}}}

        async def flood_while_busy(s):
            raw = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=sock), timeout=60)
            async with raw:
                async def open_session():
                    r = await raw.post("http://localhost/mcp", json=init, headers=headers)
                    expect(r.status_code == 200 and "mcp-session-id" in r.headers, "a session opens", (r.status_code, r.text[:200]))
                    return r.headers["mcp-session-id"]

                async def ping(sid):
                    r = await raw.post("http://localhost/mcp", json={"jsonrpc": "2.0", "id": 7, "method": "ping"},
                                       headers={**headers, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18"})
                    return r.status_code
                first = await open_session()
                expect(await ping(first) == 200, "a new session answers", None)
                busy, flood = await while_calling(s, 2, lambda: gather(open_session, 300))
                expect(busy.get("exit_code") == 0, "the session with a call in progress is kept", busy)
                expect(await ping(first) == 404, "the session used least recently is closed (404)", None)
                expect(await ping(flood[-1]) == 200, "the newest session answers", None)
        await with_unix_session(sock, flood_while_busy)

    # --max-sessions 1: while the one session is in use (a call in progress, or, as the official
    # client keeps it, its event stream open) a new session is refused (503); once its client
    # has gone, even killed without closing its session, a new one takes its place.
    for bad in ["0", "65537", "x"]:
        p = subprocess.run([fx.lanes_bin, *fx.args("plain", "sess-bad"), "--listen", "unix:" + os.path.join(fx.dir, "s.sock"),
                            f"--max-sessions={bad}"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        expect(p.returncode == 64 and "--max-sessions" in p.stderr and bad in p.stderr,
               f"--max-sessions {bad} is a usage error (64)", (p.returncode, p.stderr))
    p = subprocess.run([fx.lanes_bin, *fx.args("plain", "sess-bad"), "--max-sessions=4"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    expect(p.returncode == 64 and "only with --listen" in p.stderr, "--max-sessions without --listen is a usage error",
           (p.returncode, p.stderr))
    fx.extra = ["--max-sessions", "1"]
    async with unix_server(fx, "plain", "onesession") as sock:
        async def one_session(s):
            raw = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=sock), timeout=60)
            async with raw:
                async def open_one():
                    return (await raw.post("http://localhost/mcp", json=init, headers=headers)).status_code
                result, busy = await while_calling(s, 1.5, open_one)
                expect(busy == 503, "with the only session busy a new one is refused (503)", busy)
                expect(result["exit_code"] == 0, "the busy session's call completes", result)
        await with_unix_session(sock, one_session)
        # An agent killed while connected (no DELETE; the official client's event stream was
        # open): its session must not stay in use, or crashed agents would fill the server.
        child = subprocess.Popen([sys.executable, "-c", CRASHING_CLIENT, sock], stdout=subprocess.PIPE)
        try:
            expect(child.stdout.readline() == b"ready\n", "the child client has its session", None)
            await anyio.sleep(0.3)
        finally:
            child.kill()
            child.wait()
        raw = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=sock), timeout=60)
        async with raw:
            codes = []
            for _ in range(30):  # the server sees the connection close within a moment
                codes.append((await raw.post("http://localhost/mcp", json=init, headers=headers)).status_code)
                if codes[-1] == 200:
                    break
                await anyio.sleep(0.1)
            expect(codes[-1] == 200, "the killed client's session makes room for a new one", codes)
    fx.extra = []
    print("ok: bad requests over the unix socket; a disconnect mid-step stops the step; at most 256 sessions; --max-sessions")


async def while_calling(s, seconds, action):
    """Runs `action()` 0.5 s into a `sleep SECONDS` call of session `s`: (the call's report,
    what `action` returned)."""
    got = {}

    async def call():
        got["report"] = result_of(await s.call_tool("run_command", {"argv": ["sleep", str(seconds)]}))
    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await anyio.sleep(0.5)
        got["action"] = await action()
    return got["report"], got["action"]


async def gather(make, n):
    """`n` results of `make()`, one after another."""
    return [await make() for _ in range(n)]


# A client that opens a session with the official client over a unix socket (argv[1]), keeps it
# (and its event stream) open and waits to be killed.
CRASHING_CLIENT = """
import sys, anyio, httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
async def main():
    client = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=sys.argv[1]), timeout=httpx2.Timeout(30, read=300))
    async with client, streamable_http_client("http://localhost/mcp", http_client=client) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            await session.list_tools()
            print("ready", flush=True)
            await anyio.sleep(120)
anyio.run(main)
"""


async def socket_group(fx):
    """A lane's socket_group: the socket is 0660 and owned by that group; a bad name is refused."""
    import grp
    async with unix_server(fx, "grp", "grp", mode=0o660) as sock:
        expect(os.stat(sock).st_gid == grp.getgrnam("nogroup").gr_gid, "the socket belongs to the group", os.stat(sock).st_gid)
        r = await with_unix_session(sock, lambda s: s.call_tool("run_command", {"argv": ["true"]}))
        expect(not iserr(r), "it serves", result_of(r))
    out = subprocess.run([fx.lanes_bin, *fx.args("badgrp", "x"), "--listen", "unix:" + os.path.join(fx.dir, "b.sock")],
                         capture_output=True, text=True, timeout=30)
    expect(out.returncode == 125 and "badgrp.toml" in out.stderr and "socket_group" in out.stderr,
           "a bad socket_group is refused at start, naming the file and key", (out.returncode, out.stderr))
    print("ok: socket_group makes the socket 0660 for the group")
