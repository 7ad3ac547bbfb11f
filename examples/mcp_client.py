"""Drive `lanes mcp` from Python with the official MCP client (`pip install mcp`).

    python3 examples/mcp_client.py [--lane engineering] [--run RUN] [--workspace DIR]

Starts `lanes mcp` as a subprocess over stdio (as an agent host would), lists its tools, runs a
command, writes and reads a file in the workspace, retries a step by its id (replayed, not run
again), and prints the run's status. Every call is one journaled step: see `lanes log RUN`.
"""

import argparse
import asyncio
import json
import os
import shutil

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def report(result):
    """The step's JSON report (the same object `lanes run --json` prints)."""
    return json.loads(result.content[0].text)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lanes", default=shutil.which("lanes") or "lanes", help="the lanes binary")
    ap.add_argument("--lane", default="engineering")
    ap.add_argument("--run", default=None, help="resume this run (default: a new one)")
    ap.add_argument("--workspace", default=os.getcwd())
    a = ap.parse_args()

    args = ["mcp", "--lane", a.lane, "--workspace", a.workspace] + (["--run", a.run] if a.run else [])
    server = StdioServerParameters(command=a.lanes, args=args, env=dict(os.environ))
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            print("tools:", ", ".join(t.name for t in tools.tools))

            r = await session.call_tool("run_command", {"argv": ["uname", "-a"], "step_id": "uname"})
            rep = report(r)
            print(f"run {rep['run']} step {rep['step']}: exit {rep['exit_status']} in {rep['wall_ms']:.1f} ms:", rep["stdout"].strip())

            # The same step id again: the journal answers, nothing runs.
            again = report(await session.call_tool("run_command", {"argv": ["uname", "-a"], "step_id": "uname"}))
            print("replayed:", again["replayed"])

            await session.call_tool("write_file", {"path": "hello.txt", "content": "hello from the sandbox\n"})
            print("read back:", report(await session.call_tool("read_file", {"path": "hello.txt"}))["stdout"].strip())

            # A lane without egress rules sees only its own loopback interface.
            r = await session.call_tool("read_file", {"path": "/proc/net/dev"})
            print("network interfaces:", " ".join(line.split(":")[0].strip() for line in report(r)["stdout"].splitlines()[2:]))

            status = json.loads((await session.call_tool("run_status", {})).content[0].text)
            print("budget used:", status["budget_used"])


if __name__ == "__main__":
    asyncio.run(main())
