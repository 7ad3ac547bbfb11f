"""End-to-end tests of `lanes mcp` driven by the official `mcp` Python client.

Usage: python3 mcp_e2e.py --lanes PATH/lanes --scenario NAME [--transport stdio|unix]

Each scenario makes its own config (the repository's Profiles/ plus test lanes), state directory
and workspace, starts `lanes mcp`, talks to it through `mcp.ClientSession`, and asserts; any
failure raises, printing what was expected and what was found, and the exit status is 1.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import anyio
import contextlib
import httpx2
import stat
from mcp.client.streamable_http import streamable_http_client
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

LANES = {
    # A plain lane: no review of in-doubt steps (they are refused 76), a generous budget.
    "plain": 'description = "mcp test"\nowner = "tests"\nprofile = "workspace-write"\n',
    # Gated: `deploy *` waits for a person.
    "gated": 'description = "mcp test"\nowner = "tests"\nprofile = "workspace-write"\n'
    '[review]\ncommands = ["deploy *"]\ntimeout = "1h"\n',
    # Steps reach allowed hosts through the egress proxy (the shipped workspace-net profile).
    "net": 'description = "mcp test"\nowner = "tests"\nprofile = "workspace-net"\n[network]\nallow = ["mirror.lanes.test"]\n',
    # The unix socket is shared with a group.
    "grp": 'description = "mcp test"\nowner = "tests"\nprofile = "workspace-write"\nsocket_group = "nogroup"\n',
    "badgrp": 'description = "mcp test"\nowner = "tests"\nprofile = "workspace-write"\nsocket_group = "Not A Group"\n',
    # Three steps, then the run halts (80).
    "b3": 'description = "mcp test"\nowner = "tests"\nprofile = "workspace-write"\n[budget]\nmax_steps = 3\n',
}


class Fixture:
    def __init__(self, lanes_bin, transport):
        self.lanes_bin = lanes_bin
        self.transport = transport
        self.dir = tempfile.mkdtemp(prefix="lanes-mcp-")
        os.chmod(self.dir, 0o755)
        self.config = os.path.join(self.dir, "config")
        self.state = os.path.join(self.dir, "state")
        self.ws = os.path.join(self.dir, "ws")
        os.makedirs(os.path.join(self.config, "Lanes"))
        shutil.copytree(os.path.join(ROOT, "Profiles"), os.path.join(self.config, "Profiles"))
        for name, text in LANES.items():
            with open(os.path.join(self.config, "Lanes", name + ".toml"), "w") as f:
                f.write(text)
        os.makedirs(self.ws)
        os.makedirs(self.state)
        self.extra = []  # more `lanes mcp` options

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def args(self, lane, run):
        return ["mcp", "--config", self.config, "--state", self.state, "--lane", lane, "--run", run,
                "--workspace", self.ws, *self.extra]

    def params(self, lane, run):
        return StdioServerParameters(command=self.lanes_bin, args=self.args(lane, run), cwd=self.ws,
                                     env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})

    def cli(self, *args):
        return subprocess.run([self.lanes_bin, *args, "--state", self.state], capture_output=True, text=True,
                              env={**os.environ, "LANES_CONFIG": self.config})

    def records(self, run):
        db = sqlite3.connect(os.path.join(self.state, "journal.sqlite"))
        try:
            return db.execute("SELECT seq, kind, step, body FROM records WHERE run = ? ORDER BY seq", (run,)).fetchall()
        finally:
            db.close()


def iserr(res):
    """isError (mcp 1.x) or is_error (mcp 2.x)."""
    return getattr(res, "is_error", None) if hasattr(res, "is_error") else res.isError


def schema(tool):
    return getattr(tool, "input_schema", None) if hasattr(tool, "input_schema") else tool.inputSchema


def result_of(res):
    """The step's JSON report from a tool result."""
    assert res.content and res.content[0].type == "text", f"expected text content, found {res.content!r}"
    return json.loads(res.content[0].text)


def expect(cond, what, found):
    if not cond:
        raise AssertionError(f"{what}; found {found!r}")


async def with_session(fx, lane, run, body):
    if fx.transport == "stdio":
        async with stdio_client(fx.params(lane, run)) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await body(session)
    async with unix_server(fx, lane, run) as sock:
        return await with_unix_session(sock, body)


@contextlib.asynccontextmanager
async def unix_server(fx, lane, run, mode=0o600):
    """`lanes mcp --listen unix:SOCK` for the block; checks the socket is 0600."""
    sock = os.path.join(fx.dir, f"mcp-{run}.sock")
    proc = subprocess.Popen([fx.lanes_bin, *fx.args(lane, run), "--listen", "unix:" + sock], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=fx.ws)
    fx.server = proc
    try:
        # A socket left by an earlier server of the same run is replaced: wait until one accepts.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not connectable(sock) and proc.poll() is None:
            await anyio.sleep(0.02)
        expect(connectable(sock), "the server listens", proc.poll())
        found = stat.S_IMODE(os.stat(sock).st_mode)
        expect(found == mode, f"the socket is {oct(mode)}", oct(found))
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        out = proc.stdout.read()
        expect(out == b"", "nothing on stdout in --listen mode either", out[:200])


def server_pid(run):
    """The pid of the `lanes mcp` server of `run` (its command line names the run)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]).startswith(b"lanes") and b"--run" in argv and argv[argv.index(b"--run") + 1] == run.encode():
            found.append(int(pid))
    expect(len(found) == 1, f"one server of run {run}", found)
    return found[0]


def cpu_ticks(pid):
    """User plus system CPU of `pid`, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def connectable(path):
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


async def with_unix_session(sock, body):
    client = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=sock), timeout=httpx2.Timeout(30, read=300))
    async with client:
        async with streamable_http_client("http://localhost/mcp", http_client=client) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await body(session)


# --- scenarios ---------------------------------------------------------------------------------

async def basics(fx):
    async def body(s):
        tools = await s.list_tools()
        names = sorted(t.name for t in tools.tools)
        expect(names == ["list_files", "read_file", "run_command", "run_status", "write_file"], "the five tools", names)
        rc = next(t for t in tools.tools if t.name == "run_command")
        expect("argv" in schema(rc)["properties"] and rc.description, "run_command has a schema and description", rc)
        expect("This lane has no network" in rc.description and rc.annotations.open_world_hint is False,
               "run_command says the lane has no network", (rc.description, rc.annotations))

        r = await s.call_tool("run_command", {"argv": ["sh", "-c", "echo out; echo err >&2; exit 3"]})
        rep = result_of(r)
        expect(iserr(r) is True, "a failed step is isError", iserr(r))
        expect(rep["exit_status"] == 3 and rep["outcome"] == "exited", "exit status 3", rep)
        expect(rep["stdout"] == "out\n" and rep["stderr"] == "err\n", "captured output", rep)
        expect(rep["run"] == "basics" and rep["step"] == "1", "run and step ids", rep)
        if fx.transport == "unix":
            # The socket peer (SO_PEERCRED) is the step's requester, in the result and the journal.
            expect(f"uid={os.getuid()}" in (rep.get("requester") or ""), "the peer is recorded as requester", rep.get("requester"))
            close = [json.loads(b)["result"] for (_, k, st, b) in fx.records("basics") if k == "close" and st == "1"]
            expect(f"pid=" in (close[0].get("requester") or ""), "the journal records the requester", close)
        else:
            expect(rep.get("requester") is None, "no requester over stdio (null: every result has every field)", rep)

        r = await s.call_tool("run_command", {"command": "cat; echo; hostname", "stdin": "hello from stdin"})
        rep = result_of(r)
        expect(iserr(r) is False and rep["exit_status"] == 0, "a successful step", rep)
        expect(rep["stdout"].startswith("hello from stdin\n"), "stdin reaches the step", rep["stdout"])

        w = await s.call_tool("write_file", {"path": "notes/a.txt", "content": "x"})
        expect(iserr(w) is True, "writing into a missing directory fails", result_of(w))
        w = await s.call_tool("write_file", {"path": "a.txt", "content": "line 1\nline 2\n"})
        expect(iserr(w) is False, "write_file succeeds", result_of(w))
        with open(os.path.join(fx.ws, "a.txt")) as f:
            expect(f.read() == "line 1\nline 2\n", "the file is in the workspace", None)
        r = await s.call_tool("read_file", {"path": "a.txt"})
        expect(result_of(r)["stdout"] == "line 1\nline 2\n", "read_file returns the content", result_of(r))
        # A range of lines, for files longer than a reply carries.
        with open(os.path.join(fx.ws, "ten.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in range(1, 11)))
        for args, want in [({"start_line": 3, "lines": 2}, "3\n4\n"), ({"start_line": 9}, "9\n10\n"),
                           ({"lines": 1}, "1\n"), ({"start_line": 11}, "")]:
            r = await s.call_tool("read_file", {"path": "ten.txt", **args})
            expect(iserr(r) is False and result_of(r)["stdout"] == want, f"read_file {args}", result_of(r)["stdout"])
        for args, word in [({"start_line": 0}, "start_line"), ({"lines": 0}, "lines"), ({"start_line": "3"}, "start_line")]:
            try:
                await s.call_tool("read_file", {"path": "ten.txt", **args})
                raise AssertionError(f"read_file {args}: expected a protocol error")
            except AssertionError:
                raise
            except Exception as e:
                expect(word in str(e), f"read_file {args}: the error names {word}", str(e))
        r = await s.call_tool("list_files", {})
        expect("a.txt" in result_of(r)["stdout"], "list_files lists it", result_of(r))
        # The profile decides, not the host: the state directory is hidden in the sandbox.
        r = await s.call_tool("read_file", {"path": os.path.join(fx.state, "journal.sqlite")})
        expect(iserr(r) is True, "the journal is not readable from the sandbox", result_of(r))

        # The sandbox has no network but loopback.
        r = await s.call_tool("run_command", {"argv": ["sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1"]})
        expect(result_of(r)["stdout"].split() == ["lo"], "only loopback", result_of(r)["stdout"])

        # Strings that parse as data: URLs reach the step as sent (the SDK's own decoding would
        # make them binary data and refuse them as not strings), in argv and in file content.
        r = await s.call_tool("run_command", {"argv": ["printf", "%s|%s", "data:,hi", "data: a, b"]})
        expect(iserr(r) is False and result_of(r)["stdout"] == "data:,hi|data: a, b", "data: URL-like argv items run as written", result_of(r))
        expect(r.structured_content is None if hasattr(r, "structured_content") else r.structuredContent is None,
               "no structuredContent (the SDK would rewrite data: URL strings in it)", r)
        w = await s.call_tool("write_file", {"path": "sse.txt", "content": "data:text/plain;base64,aGk="})
        expect(iserr(w) is False, "write_file with data: URL-like content", result_of(w))
        with open(os.path.join(fx.ws, "sse.txt")) as f:
            expect(f.read() == "data:text/plain;base64,aGk=", "the content is written as sent", None)

        st = await s.call_tool("run_status", {})
        status = json.loads(st.content[0].text)
        expect(status["budget_used"]["steps"] >= 9, "run_status counts the steps", status)
        expect(status["steps"][0]["exit_status"] == 3, "run_status lists the first step", status["steps"][0])
        expect(status["steps_total"] == len(status["steps"]) and status["steps_omitted"] == 0,
               "under 50 steps every one is listed", status)
        # A long run lists only its most recent steps: ask for two.
        two = json.loads((await s.call_tool("run_status", {"steps": 2})).content[0].text)
        expect([x["step"] for x in two["steps"]] == [x["step"] for x in status["steps"][-2:]]
               and two["steps_total"] == status["steps_total"] and two["steps_omitted"] == status["steps_total"] - 2,
               "run_status with steps=2 lists the last two and counts the rest", two)

        res = await s.read_resource("lanes://runs/basics/steps/1")
        doc = json.loads(res.contents[0].text)
        expect([r["kind"] for r in doc["records"]] == ["intent", "close"], "the step's records", doc)
        res = await s.read_resource("lanes://runs/basics")
        doc = json.loads(res.contents[0].text)
        expect(doc["records"][0]["kind"] == "run" and doc["next"] is None, "the run's journal, all of it", doc["next"])

        # A reply carries the head and tail of a long output (64 KiB by default); the journal
        # keeps all of it, and its step resource gives it back.
        big = "head -c 300000 /dev/zero | tr '\\0' a; echo; echo the-end"
        for i in range(6):
            r = await s.call_tool("run_command", {"command": big, "step_id": f"big-{i}"})
            out = result_of(r)
            expect(out["stdout_truncated"] is True and len(out["stdout"].encode()) <= (64 << 10) + 100
                   and out["stdout"].startswith("aaaa") and out["stdout"].endswith("a\nthe-end\n")
                   and "bytes left out of this reply" in out["stdout"],
                   "a long output's head and tail, marked, in the reply", (len(out["stdout"]), out["stdout"][-60:]))
            expect(len(r.content) == 2 and f"lanes://runs/basics/steps/big-{i}" in r.content[1].text,
                   "the reply says where the whole output is", [c.text[:200] for c in r.content[1:]])
        # Cut at character boundaries: 5-byte lines of a 4-byte character; neither cut (32 KiB from
        # each end of 500,000 bytes) falls between two.
        r = await s.call_tool("run_command", {"command": "yes 🙂 | head -n 100000", "step_id": "wide"})
        out = result_of(r)["stdout"]
        expect(out.startswith("🙂\n") and out.endswith("🙂\n") and "\ufffd" not in out and out.count("🙂") > 12000,
               "a cut never splits a character", (out[:10], out[-10:], out.count("\ufffd")))
        whole = json.loads((await s.read_resource("lanes://runs/basics/steps/big-0")).contents[0].text)
        close = [x for x in whole["records"] if x["kind"] == "close"][0]["body"]["result"]
        expect(len(close["stdout"]) == 300009 and close["stdout_truncated"] is False, "the journal has the whole output",
               len(close["stdout"]))
        # An output too large for one read over Streamable HTTP (the official client refuses an
        # event over 1 MiB): its record names the output's parts instead of holding it, and the
        # parts give back every byte of what the journal keeps.
        # 21-byte lines: the first part's 262,144 bytes would end inside a 🙂.
        r = await s.call_tool("run_command", {"command": "yes '🙂 é \"q\" \\\\ 0123\t' | head -c 2500000",
                                              "step_id": "huge"})
        expect(len(r.content) == 2 and "lanes://runs/basics/steps/huge/stdout" in r.content[1].text,
               "the reply names the URI of the whole stdout", [c.text[:300] for c in r.content[1:]])
        text = (await s.read_resource("lanes://runs/basics/steps/huge")).contents[0].text
        close = [x for x in json.loads(text)["records"] if x["kind"] == "close"][0]
        expect(len(text.encode()) <= 384 << 10 and close["body_complete"] is False
               and close["body"]["result"]["stdout"] == "" and close["body"]["result"]["exit_code"] == 0
               and close["output"]["stdout"] == "lanes://runs/basics/steps/huge/stdout",
               "a record too large for one read leaves its output out and names its parts", (len(text), text[:600]))
        kept = json.loads([b for (_, k, st, b) in fx.records("basics") if k == "close" and st == "huge"][0])["result"]["stdout"]
        uri, got, offsets = close["output"]["stdout"], "", []
        while uri:
            text = (await s.read_resource(uri)).contents[0].text
            part = json.loads(text)
            expect(len(text.encode()) <= 384 << 10 and part["offset"] == len(got.encode())
                   and part["total_bytes"] == len(kept.encode()), "a part fits one read and follows the last", (len(text), part["offset"]))
            got, uri = got + part["text"], part["next"]
            offsets.append(part["offset"])
            expect(len(offsets) <= 40, "parts end", offsets)
        expect(got == kept and len(offsets) >= 10, "the parts are the whole output, in order", (len(got), len(kept), len(offsets)))
        # A long argv (12 arguments of 100 kB) makes an intent too large for one read: it comes
        # without its body and names the body's parts, which give back the body exactly as it
        # was hashed; so do the big close record's.
        r = await s.call_tool("run_command", {"argv": ["true"] + ["y" * 100000] * 12, "step_id": "longargv"})
        expect(iserr(r) is False, "a step with 1.2 MB of arguments runs", result_of(r))
        text = (await s.read_resource("lanes://runs/basics/steps/longargv")).contents[0].text
        intent = [x for x in json.loads(text)["records"] if x["kind"] == "intent"][0]
        expect(len(text.encode()) <= 384 << 10 and intent["body"] is None and intent["body_complete"] is False
               and intent["body_parts"] == f"lanes://runs/basics/records/{intent['seq']}",
               "an intent too large for one read names its body's parts", text[:600])
        for record in (intent, close):
            kept = [b for (seq, _, _, b) in fx.records("basics") if seq == record["seq"]][0]
            uri, body, n = record["body_parts"], "", 0
            while uri:
                text = (await s.read_resource(uri)).contents[0].text
                part = json.loads(text)
                expect(len(text.encode()) <= 384 << 10 and part["seq"] == record["seq"] and part["hash"] == record["hash"]
                       and part["offset"] == len(body.encode()), "a body part fits one read and follows the last", (len(text), part["offset"]))
                body, uri, n = body + part["text"], part["next"], n + 1
                expect(n <= 100, "body parts end", n)
            expect(body == kept and record["body_bytes"] == len(kept.encode()), "the parts are the body as recorded", (len(body), len(kept)))
        expect(json.loads(body)["result"]["stdout"] == got, "the close body's parts hold the whole output", None)
        for bad, word in [("lanes://runs/basics/steps/huge/stdin", "stdout"), ("lanes://runs/basics/steps/huge/stdout?after_seq=1", "offset"),
                          ("lanes://runs/basics/records/0", "SEQ"), ("lanes://runs/basics/records/x", "SEQ"),
                          ("lanes://runs/basics/records/999999", "no record"), ("lanes://runs/basics/records/1?after_seq=1", "offset"),
                          ("lanes://runs/basics/steps/huge/stdout?offset=-1", "offset"),
                          ("lanes://runs/basics/steps/huge/stderr?offset=99", "past the end")]:
            try:
                await s.read_resource(bad)
                raise AssertionError(f"{bad}: expected a protocol error")
            except AssertionError:
                raise
            except Exception as e:
                expect(word in str(e), f"{bad}: the error says what is expected", str(e))
        # The run's records (now past 1.8 MB) are read a page at a time: each read stays under
        # 384 KiB, and following `next` gives every record once, in order.
        uri, seqs, pages = "lanes://runs/basics", [], 0
        while uri:
            text = (await s.read_resource(uri)).contents[0].text
            doc = json.loads(text)
            expect(len(doc["records"]) >= 1 and len(text.encode()) <= 384 << 10,
                   "a page holds at least one record and stays under 384 KiB", (len(doc["records"]), len(text)))
            seqs += [x["seq"] for x in doc["records"]]
            uri, pages = doc["next"], pages + 1
            expect(pages <= 40, "paging ends", uri)
        every = [row[0] for row in fx.records("basics")]
        expect(seqs == every, "every record once, in order", (len(seqs), len(every)))
        expect(pages >= 4, "a run of 1.8 MB takes several reads", pages)
        for bad in ("lanes://runs/basics?after_seq=x", "lanes://runs/basics?seq=1", "lanes://runs/basics/steps/1?after_seq=1"):
            try:
                await s.read_resource(bad)
                raise AssertionError(f"{bad}: expected a protocol error")
            except Exception as e:
                expect("after_seq" in str(e), f"{bad}: the error says what is expected", str(e))
    await with_session(fx, "plain", "basics", body)
    print("ok: tools, run_command (argv, command, stdin), files, run_status, resources")


async def replay(fx):
    async def body(s):
        first = result_of(await s.call_tool("run_command", {"command": "date +%s%N", "step_id": "stamp"}))
        again = await s.call_tool("run_command", {"command": "date +%s%N", "step_id": "stamp"})
        rep = result_of(again)
        expect(rep["replayed"] is True and rep["stdout"] == first["stdout"], "the recorded result is replayed", rep)
        other = await s.call_tool("run_command", {"command": "echo different", "step_id": "stamp"})
        rep = result_of(other)
        expect(iserr(other) and rep["exit_status"] == 75 and rep["reason"] == "nondeterministic", "nondeterminism is refused (75)", rep)
        expect("argv" in rep["error"], "the message names the field", rep["error"])
    await with_session(fx, "plain", "replay", body)
    # A restarted server with the same run replays too.
    async def body2(s):
        rep = result_of(await s.call_tool("run_command", {"command": "date +%s%N", "step_id": "stamp"}))
        expect(rep["replayed"] is True, "replayed after a restart", rep)
    await with_session(fx, "plain", "replay", body2)
    print("ok: replay of a step id, nondeterminism, resume after restart")


async def gated(fx):
    async def body(s):
        r = await s.call_tool("run_command", {"argv": ["sh", "-c", "echo deployed"], "step_id": "d1"})
        # argv "sh -c …" does not match; the gate is on `deploy *`.
        expect(iserr(r) is False, "an ungated step runs", result_of(r))
        r = await s.call_tool("run_command", {"argv": ["deploy", "prod"], "step_id": "d2"})
        rep = result_of(r)
        expect(iserr(r) and rep["exit_status"] == 78 and rep["reason"] == "awaiting_approval", "gated (78)", rep)
        expect(any("lanes approve gated d2" in c.text for c in r.content), "the result says how to approve", r.content)

        async def approve_later():
            await anyio.sleep(1.0)
            out = await anyio.to_thread.run_sync(lambda: fx.cli("approve", "gated", "d2", "--by", "tester"))
            expect(out.returncode == 0, "lanes approve succeeds", out.stderr)
        waiting, asked = [], time.monotonic()

        async def on_progress(p, total, message):
            waiting.append((p, message, time.monotonic() - asked))
        async with anyio.create_task_group() as tg:
            tg.start_soon(approve_later)
            r = await s.call_tool("run_command", {"argv": ["deploy", "prod"], "step_id": "d2", "approval_wait_seconds": 30},
                                  progress_callback=on_progress)
        rep = result_of(r)
        # The wait for a human sends progress at once and every second, saying how to approve.
        expect(waiting and all("lanes approve gated d2" in m for _, m, _ in waiting), "progress while it waits for approval",
               waiting)
        expect(waiting[0][2] < 0.9, "the first one before the approval comes (1 s)", waiting)
        expect(all(a[0] < b[0] for a, b in zip(waiting, waiting[1:])), "progress increases", waiting)
        # Approved, it runs: there is no `deploy` program in the sandbox, so 127.
        expect(rep["exit_status"] == 127 and rep["replayed"] is False, "ran once approved", rep)
        st = json.loads((await s.call_tool("run_status", {})).content[0].text)
        expect(st["pending_approvals"] == [], "nothing pending", st)

        # A call cancelled while it waits for approval stops waiting: the server goes idle.
        with anyio.move_on_after(0.8):
            await s.call_tool("run_command", {"argv": ["deploy", "staging"], "step_id": "d3", "approval_wait_seconds": 60})
        server = server_pid("gated")
        before = cpu_ticks(server)
        await anyio.sleep(1.5)
        used = cpu_ticks(server) - before
        expect(used <= 30, "no CPU spent waiting for a cancelled call's approval (ticks of 10 ms in 1.5 s)", used)
        r = await s.call_tool("run_command", {"argv": ["echo", "on"]})
        expect(result_of(r)["stdout"] == "on\n", "still serving", result_of(r))
    await with_session(fx, "gated", "gated", body)
    print("ok: a gated call awaits approval, waits for it and runs")


async def budget(fx):
    async def body(s):
        for i in range(3):
            r = await s.call_tool("run_command", {"argv": ["true"]})
            expect(iserr(r) is False, f"step {i + 1} runs", result_of(r))
            if i == 1:
                # run_status shows each limit with its use before a halt says so.
                st = json.loads((await s.call_tool("run_status", {})).content[0].text)
                expect(st["budget"].get("max_steps") == {"limit": 3, "used": 2} and st["budget"]["loop_failures"]["limit"] == 3
                       and "max_cpu" not in st["budget"], "run_status shows the lane's limits and their use", st["budget"])
        r = await s.call_tool("run_command", {"argv": ["true"]})
        rep = result_of(r)
        expect(iserr(r) and rep["exit_status"] == 80 and rep["reason"] == "halted", "the fourth halts (80)", rep)
        st = json.loads((await s.call_tool("run_status", {})).content[0].text)
        expect(st["halted"] is not None and st["budget_used"]["steps"] == 3, "run_status shows the halt", st)
    await with_session(fx, "b3", "budget", body)
    print("ok: a budget halt")


async def cancel(fx):
    async def body(s):
        started = time.monotonic()
        with anyio.move_on_after(1.5):
            await s.call_tool("run_command", {"argv": ["sleep", "60"], "step_id": "long"})
        expect(time.monotonic() - started < 5, "the call was cancelled", time.monotonic() - started)
        # The step is stopped and recorded `stopped` (wait for the close record).
        deadline = time.monotonic() + 15
        closes = []
        while time.monotonic() < deadline:
            closes = [json.loads(b)["result"] for (_, k, st, b) in fx.records("cancel") if k == "close" and st == "long"]
            if closes:
                break
            await anyio.sleep(0.1)
        expect(closes and closes[0]["outcome"] == "stopped", "the cancelled step is recorded stopped", closes)
        r = await s.call_tool("run_command", {"argv": ["echo", "still serving"]})
        expect(result_of(r)["stdout"] == "still serving\n", "the server keeps serving", result_of(r))
    await with_session(fx, "plain", "cancel", body)
    print("ok: cancellation stops the step (recorded stopped)")


async def progress(fx):
    seen = []

    async def on_progress(p, total, message):
        seen.append((p, message))

    async def body(s):
        r = await s.call_tool("run_command", {"argv": ["sleep", "2.5"]}, progress_callback=on_progress)
        expect(iserr(r) is False, "the long step succeeds", result_of(r))
    await with_session(fx, "plain", "progress", body)
    expect(len(seen) >= 2 and all(m.startswith("step running for") for _, m in seen),
           "progress notifications for a long step", seen)
    expect(all(a[0] < b[0] for a, b in zip(seen, seen[1:])), "progress increases", seen)
    print("ok: progress notifications")


async def bad_requests(fx):
    """Raw JSON-RPC over stdio: malformed JSON, unknown tool, wrong types, 100 MB, then still serving."""
    # A bad --prestart is a usage error (64) that names the option and what it found.
    for bad in ("9", "-1", "x"):
        out = subprocess.run([fx.lanes_bin, *fx.args("plain", "badopt"), f"--prestart={bad}"], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=30)
        expect(out.returncode == 64 and "--prestart" in out.stderr and bad in out.stderr,
               f"--prestart {bad} is refused as a usage error", (out.returncode, out.stderr))
    proc = subprocess.Popen([fx.lanes_bin, *fx.args("plain", "bad")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=fx.ws)

    def send(obj_or_text):
        text = obj_or_text if isinstance(obj_or_text, (bytes, str)) else json.dumps(obj_or_text)
        data = text.encode() if isinstance(text, str) else text
        proc.stdin.write(data + b"\n")
        proc.stdin.flush()

    def recv():
        line = proc.stdout.readline()
        expect(line, "a response line", line)
        return json.loads(line)

    try:
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
        expect("result" in recv(), "initialize answers", None)
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send("{this is not json")
        r = recv()
        expect(r.get("error", {}).get("code") == -32700, "malformed JSON: parse error -32700", r)
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "rm_rf", "arguments": {}}})
        r = recv()
        expect(r["id"] == 2 and r.get("error", {}).get("code") == -32602 and "unknown tool" in r["error"]["message"],
               "unknown tool: -32602", r)
        send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "run_command", "arguments": {"argv": "ls"}}})
        r = recv()
        expect(r["id"] == 3 and r.get("error", {}).get("code") == -32602 and "argv" in r["error"]["message"], "wrong type: -32602", r)
        send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "run_command", "arguments": {"argv": ["true"], "timeout_seconds": "soon"}}})
        r = recv()
        expect(r["id"] == 4 and r.get("error", {}).get("code") == -32602, "wrong number type: -32602", r)
        send({"jsonrpc": "2.0", "id": 5, "method": "no/such/method"})
        r = recv()
        expect(r["id"] == 5 and r.get("error", {}).get("code") == -32601, "unknown method: -32601", r)
        big = b'{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"big","content":"' \
            + b"x" * (100 << 20) + b'"}}}'
        send(big)
        r = recv()
        expect(r["id"] == 6 and r.get("error", {}).get("code") == -32600 and "too large" in r["error"]["message"], "100 MB: -32600", r)
        send({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "run_command", "arguments": {"argv": ["echo", "alive"]}}})
        r = recv()
        expect(r["id"] == 7 and json.loads(r["result"]["content"][0]["text"])["stdout"] == "alive\n", "still serving", r)
        # A client that disconnects mid-step: the step is stopped and recorded, the server exits.
        send({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "run_command", "arguments": {"argv": ["sleep", "60"], "step_id": "orphan"}}})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not [1 for (_, k, st, _) in fx.records("bad") if k == "intent" and st == "orphan"]:
            time.sleep(0.05)
        proc.stdin.close()
        code = proc.wait(timeout=20)
        expect(code == 0, "the server exits 0 when the client goes", (code, proc.stderr.read()[-2000:]))
        closes = [json.loads(b)["result"] for (_, k, st, b) in fx.records("bad") if k == "close" and st == "orphan"]
        expect(closes and closes[0]["outcome"] == "stopped", "the orphaned step is recorded stopped", closes)
        expect(fx.cli("verify", "bad").returncode == 0, "the run's chain verifies", None)
    finally:
        if proc.poll() is None:
            proc.kill()
    print("ok: bad requests get protocol errors; a disconnect mid-step stops it cleanly")


async def killed(fx):
    """SIGKILL of the server mid-step: after a restart with the same run the step is in doubt (76), not re-run."""
    marker = os.path.join(fx.ws, "ran")
    if fx.transport == "unix":
        await killed_unix(fx, marker)
    else:
        killed_stdio(fx, marker)

    async def body(s):
        r = await s.call_tool("run_command", {"command": "echo x >> ran; sleep 60", "step_id": "k"})
        rep = result_of(r)
        expect(iserr(r) and rep["exit_status"] == 76 and rep["reason"] == "in_doubt", "in doubt after SIGKILL (76)", rep)
        r = await s.call_tool("run_command", {"argv": ["echo", "next"]})
        expect(result_of(r)["stdout"] == "next\n", "other steps run", result_of(r))
    await with_session(fx, "plain", "killed", body)
    with open(marker) as f:
        expect(f.read() == "x\n", "the in-doubt step was not run again", None)
    print("ok: SIGKILL mid-step, restart: in doubt, not re-run")


def lane_inits(pid):
    """The lane-init children of process `pid` (every thread's children)."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                kids = f.read().split()
        except OSError:
            continue
        for k in kids:
            try:
                with open(f"/proc/{k}/comm") as f:
                    if f.read().strip() == "lane-init":
                        found.append(int(k))
            except OSError:
                pass
    return found


def running(pid):
    """Whether `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_server_and_check_sandboxes(pid, kill):
    """SIGKILLs the server once it holds two sandboxes (the running step's and the one prestarted
    for the next call); neither may outlive it (their PID 1s' parent-death signal)."""
    deadline = time.monotonic() + 10
    inits = lane_inits(pid)
    while time.monotonic() < deadline and len(inits) < 2:
        time.sleep(0.05)
        inits = lane_inits(pid)
    expect(len(inits) == 2, "the running step's sandbox and one prestarted (lanes mcp --prestart 1)", inits)
    kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(running(p) for p in inits):
        time.sleep(0.05)
    expect(not any(running(p) for p in inits), "no sandbox outlives a SIGKILLed server",
           [p for p in inits if running(p)])


async def killed_unix(fx, marker):
    async with unix_server(fx, "plain", "killed") as sock:
        async def call():
            try:
                await with_unix_session(sock, lambda s: s.call_tool(
                    "run_command", {"command": "echo x >> ran; sleep 60", "step_id": "k"}))
            except BaseException:
                pass  # the server is killed under it
        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not os.path.exists(marker):
                await anyio.sleep(0.05)
            expect(os.path.exists(marker), "the step started", None)

            def kill():
                fx.server.send_signal(signal.SIGKILL)
                fx.server.wait()
            kill_server_and_check_sandboxes(fx.server.pid, kill)
            await anyio.sleep(0.5)
            tg.cancel_scope.cancel()


def killed_stdio(fx, marker):
    proc = subprocess.Popen([fx.lanes_bin, *fx.args("plain", "killed")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=fx.ws)
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
    proc.stdin.write((json.dumps(init) + "\n").encode())
    proc.stdin.write((json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n").encode())
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "run_command",
            "arguments": {"command": "echo x >> ran; sleep 60", "step_id": "k"}}}
    proc.stdin.write((json.dumps(call) + "\n").encode())
    proc.stdin.flush()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not os.path.exists(marker):
        time.sleep(0.05)
    expect(os.path.exists(marker), "the step started", None)

    def kill():
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    kill_server_and_check_sandboxes(proc.pid, kill)


async def concurrent(fx):
    """Several clients at once on one server (unix) or one client with concurrent calls (stdio)."""
    async def calls(s, tag):
        async def one(i):
            r = await s.call_tool("run_command", {"command": f"sleep 0.5; echo {tag}-{i}", "step_id": f"{tag}-{i}"})
            expect(result_of(r)["stdout"] == f"{tag}-{i}\n", "each call gets its own output", result_of(r))
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            for i in range(4):
                tg.start_soon(one, i)
        return time.monotonic() - started

    if fx.transport == "unix":
        async with unix_server(fx, "plain", "conc") as sock:
            times = []
            async def client(tag):
                times.append(await with_unix_session(sock, lambda s: calls(s, tag)))
            async with anyio.create_task_group() as tg:
                for tag in ["a", "b", "c"]:
                    tg.start_soon(client, tag)
    else:
        times = [await with_session(fx, "plain", "conc", lambda s: calls(s, "a"))]
    steps = [r for r in fx.records("conc") if r[1] == "close"]
    expect(len(steps) == 4 * len(times), "every step recorded", len(steps))
    expect(fx.cli("verify", "conc").returncode == 0, "the run's chain verifies", None)
    print(f"ok: concurrent steps ({len(times)} client(s) x 4 calls of 0.5 s, slowest client {max(times):.2f} s)")


async def slots(fx):
    """--max-steps 2: at most two steps at once, the others wait; a call cancelled while it waits
    runs nothing and records nothing; a bad --max-steps is a usage error."""
    for option, bad in [("--max-steps", "0"), ("--max-steps", "1025"), ("--max-steps", "x"),
                        ("--reply-output", "-1"), ("--reply-output", "67108865"), ("--reply-output", "4k")]:
        p = subprocess.run([fx.lanes_bin, *fx.args("plain", "slots-bad"), f"{option}={bad}"], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL)
        expect(p.returncode == 64 and option in p.stderr and bad in p.stderr,
               f"{option} {bad} is a usage error (64) naming the option and the value", (p.returncode, p.stderr))
    fx.extra = ["--max-steps", "2"]
    os.makedirs(os.path.join(fx.ws, "slots"))
    # Each step counts the steps running as it starts (one directory each in the workspace).
    probe = 'd=$(mktemp -d slots/s.XXXXXX); n=$(ls slots | wc -l); sleep 0.6; rmdir "$d"; echo $n'

    async def body(s):
        counts = []

        async def one(i):
            r = await s.call_tool("run_command", {"command": probe, "step_id": f"s-{i}"})
            expect(iserr(r) is False, "a waiting call runs once a slot is free", result_of(r))
            counts.append(int(result_of(r)["stdout"]))
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(one, i)
        took = time.monotonic() - started
        expect(len(counts) == 5 and max(counts) <= 2, "at most 2 steps at once", counts)
        expect(took >= 1.7, "5 steps of 0.6 s, 2 at a time, take 3 rounds or more", took)

        # Both slots busy; a third call waits and is cancelled: it never runs.
        async def long(i):
            r = await s.call_tool("run_command", {"argv": ["sleep", "2"], "step_id": f"long-{i}"})
            expect(iserr(r) is False, "the long steps succeed", result_of(r))
        async with anyio.create_task_group() as tg:
            tg.start_soon(long, 1)
            tg.start_soon(long, 2)
            await anyio.sleep(0.5)
            queued = []

            async def on_progress(p, total, message):
                queued.append(message)
            with anyio.move_on_after(0.7):
                await s.call_tool("run_command", {"command": "touch waited", "step_id": "waited"},
                                  progress_callback=on_progress)
        expect(not os.path.exists(os.path.join(fx.ws, "waited")), "the cancelled waiting call ran nothing", None)
        # A host learns at once that its call waits for a slot, not for its step.
        expect(queued and "free step slot" in queued[0], "progress says the call waits for a slot", queued)
        r = await s.call_tool("run_command", {"argv": ["echo", "still serving"]})
        expect(result_of(r)["stdout"] == "still serving\n", "the server keeps serving", result_of(r))
        return took
    took = await with_session(fx, "plain", "slots", body)
    waited = [r for r in fx.records("slots") if r[2] == "waited"]
    expect(waited == [], "nothing recorded for the call cancelled while it waited", waited)
    expect(len([r for r in fx.records("slots") if r[1] == "close"]) == 8, "the other 8 steps recorded", fx.records("slots"))
    print(f"ok: --max-steps 2 (5 calls of 0.6 s took {took:.2f} s; a waiting call cancelled ran nothing)")


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
                busy = {}

                async def call():
                    busy["result"] = result_of(await s.call_tool("run_command", {"argv": ["sleep", "2"]}))
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call)
                    await anyio.sleep(0.5)
                    flood = [await open_session() for _ in range(300)]
                expect(busy.get("result", {}).get("exit_code") == 0, "the session with a call in progress is kept", busy)
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
                seen = {}

                async def call():
                    seen["result"] = result_of(await s.call_tool("run_command", {"argv": ["sleep", "1.5"]}))
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call)
                    await anyio.sleep(0.5)
                    seen["busy"] = (await raw.post("http://localhost/mcp", json=init, headers=headers)).status_code
                expect(seen["busy"] == 503, "with the only session busy a new one is refused (503)", seen)
                expect(seen["result"]["exit_code"] == 0, "the busy session's call completes", seen)
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


async def network_tools(fx):
    """A lane with an egress allow-list: run_command names the hosts it may reach and is marked
    open-world; the read-only tools stay closed-world."""
    async def body(s):
        tools = {t.name: t for t in (await s.list_tools()).tools}
        rc = tools["run_command"]
        expect("egress proxy" in rc.description and "pypi.org" in rc.description and "mirror.lanes.test" in rc.description
               and "never uploads.github.com" in rc.description, "run_command names the reachable and the denied hosts",
               rc.description)
        expect(rc.annotations.open_world_hint is True and tools["read_file"].annotations.open_world_hint is False
               and tools["read_file"].annotations.read_only_hint is True, "open-world only for run_command",
               {n: t.annotations for n, t in tools.items()})
    await with_session(fx, "net", "nettools", body)
    print("ok: run_command describes the lane's network")


def example(fx):
    """examples/mcp_client.py, as the README shows it, against a fixture lane: it must keep
    working as the server changes."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANES_CONFIG": fx.config, "LANES_STATE": fx.state}
    p = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "mcp_client.py"), "--lanes", fx.lanes_bin,
                        "--lane", "plain", "--workspace", fx.ws], capture_output=True, text=True, env=env, timeout=120)
    expect(p.returncode == 0, "the example runs", (p.returncode, p.stdout, p.stderr[-2000:]))
    lines = p.stdout.splitlines()
    for want in ["tools: run_command, read_file, write_file, list_files, run_status", "replayed: True",
                 "read back: hello from the sandbox", "network interfaces: lo"]:
        expect(want in lines, f"the example prints {want!r}", p.stdout)
    expect(any(line.startswith("run ") and "step uname: exit 0" in line for line in lines), "the example's first step", p.stdout)
    print("ok: examples/mcp_client.py")


async def example_scenario(fx):
    await anyio.to_thread.run_sync(lambda: example(fx))


SCENARIOS = {"network_tools": network_tools, "example": example_scenario, "slots": slots, "socket_group": socket_group, "bad_http": bad_http, "concurrent": concurrent, "basics": basics, "replay": replay, "gated": gated, "budget": budget, "cancel": cancel,
             "progress": progress, "bad_requests": bad_requests, "killed": killed}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lanes", required=True)
    ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS) + ["all"])
    ap.add_argument("--transport", default="stdio", choices=["stdio", "unix"])
    a = ap.parse_args()
    names = sorted(SCENARIOS) if a.scenario == "all" else [a.scenario]
    for name in names:
        fx = Fixture(a.lanes, a.transport)
        try:
            anyio.run(SCENARIOS[name], fx)
        finally:
            fx.cleanup()


if __name__ == "__main__":
    main()
