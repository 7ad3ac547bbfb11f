"""Fixtures and helpers of the `lanes mcp` end-to-end tests (mcp_e2e.py runs the scenarios)."""

import json
import os
import shutil
import sqlite3
import subprocess
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
    # A credential from the server's environment, as TOKEN in each step's.
    "cred": 'description = "mcp test"\nowner = "tests"\nprofile = "workspace-write"\n'
    '[credentials]\nTOKEN = { from = "env:LANES_TEST_TOKEN", as = "env" }\n',
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

    def params(self, lane, run, env=None):
        return StdioServerParameters(command=self.lanes_bin, args=self.args(lane, run), cwd=self.ws,
                                     env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})})

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


async def with_session(fx, lane, run, body, env=None, errlog=None):
    """`body(session)` with a server of `lane` and `run` over the fixture's transport; `env`:
    more of the server's environment, `errlog`: a file for its stderr."""
    if fx.transport == "stdio":
        async with stdio_client(fx.params(lane, run, env), **({"errlog": errlog} if errlog else {})) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                return await body(session)
    async with unix_server(fx, lane, run, env=env, errlog=errlog) as sock:
        return await with_unix_session(sock, body)


@contextlib.asynccontextmanager
async def unix_server(fx, lane, run, mode=0o600, env=None, errlog=None):
    """`lanes mcp --listen unix:SOCK` for the block; checks the socket is 0600."""
    sock = os.path.join(fx.dir, f"mcp-{run}.sock")
    proc = subprocess.Popen([fx.lanes_bin, *fx.args(lane, run), "--listen", "unix:" + sock], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=errlog or subprocess.PIPE, cwd=fx.ws,
                            env={**os.environ, **env} if env else None)
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
