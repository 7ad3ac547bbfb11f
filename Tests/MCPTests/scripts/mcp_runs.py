"""Scenarios: a run's rules over MCP: replay, gates, budgets, cancellation, progress, a killed
server, concurrent calls and --max-steps."""

import json
import os
import signal
import subprocess
import time
import anyio

from mcp_fixture import iserr, result_of, expect, with_session, unix_server, server_pid, cpu_ticks, with_unix_session


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
