"""Scenarios: the tools, their results and bad requests; the README's example client."""

import json
import os
import subprocess
import sys
import time
import anyio

from mcp_fixture import ROOT, iserr, schema, result_of, expect, with_session


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
            expect("pid=" in (close[0].get("requester") or ""), "the journal records the requester", close)
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
    await with_session(fx, "plain", "basics", body)
    print("ok: tools, run_command (argv, command, stdin), files, run_status, a step's and the run's records")


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
