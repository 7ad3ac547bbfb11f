"""The `lanes mcp` rows of scripts/bench, measured in one run on this machine (issue 13):

  (a) warm `run_command` of /bin/true, round trip through the official Python `mcp` client,
      vs bubblewrap one-shot with the same profile (goal ≤ 0.6×);
  (b) throughput: 8 concurrent clients vs 8 concurrent bubblewrap loops (goal ≥ 2×);
  (c) cold `lanes run` one-shot vs bubblewrap: wall and CPU per step (goal ≤ 1.0×, CPU ≤ bwrap's);
  (d) the server's RSS after N steps (goal ≤ 30 MB and flat);
and, below the table, the floors under (a) and (b): the same client's `ping` and `run_status`
round trips, and 8 loops of a bare `unshare` of the seven namespaces and of /bin/true.

Usage: bench-mcp.py LANES BWRAP_CMD WORKSPACE [--steps N] [--runs N]
(BWRAP_CMD is the shell command scripts/bench builds; it runs /bin/true.)
Prints a markdown table on stdout; progress on stderr.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import anyio
import httpx2
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


# Every namespace of a step, as bare as it gets: the floor of a fresh sandbox's cost.
UNSHARE_ALL = "unshare --user --map-root-user --pid --fork --mount --net --uts --ipc --cgroup /bin/true"


def log(*a):
    print("bench: mcp:", *a, file=sys.stderr, flush=True)


def one_shot(cmd, n):
    """Median wall (ms) and CPU per step (ms) of `n` sequential runs of a shell command."""
    walls = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["bash", "-c", "exec " + cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        walls.append(time.perf_counter() - t)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / n
    return statistics.median(walls) * 1000, cpu * 1000


def loops(cmd, workers, seconds):
    """Steps per second of `workers` concurrent sequential loops of a shell command."""
    count = [0] * workers
    stop = time.monotonic() + seconds

    def loop(i):
        while time.monotonic() < stop:
            subprocess.run(["bash", "-c", "exec " + cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            count[i] += 1
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(workers)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / (time.monotonic() - start)


def server_pid(lanes):
    """The pid of the `lanes mcp` child of this process."""
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        # `lanes mcp` execs lanes-mcp (same pid).
        if int(fields[1]) == me and cmd and os.path.basename(cmd[0].decode()) in ("lanes", "lanes-mcp"):
            return int(pid)
    return None


def drop_page_cache(path):
    """Evicts a file's pages from the page cache: the next process to run it reads it from disk,
    as after an installation or a reboot. Left as the linker wrote it, the same binary cost a
    one-shot 11-20 % more CPU and a server ~12 MiB more RSS (docs/benchmarks.md, stop 12)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)  # dirty pages cannot be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def warm(a, config_args):
    params = StdioServerParameters(command=a.lanes, args=["mcp", *config_args], env=dict(os.environ))
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            # The floors under (a): the same client and transport with no step at all (before the
            # run has any step: run_status lists the run's most recent steps).
            for name, call in (("ping", lambda: s.send_ping()), ("run_status", lambda: s.call_tool("run_status", {}))):
                walls = []
                for _ in range(min(a.runs, 200)):
                    t = time.perf_counter()
                    await call()
                    walls.append(time.perf_counter() - t)
                out[name + "_ms"] = statistics.median(walls) * 1000
            log(f"(a) floors: ping {out['ping_ms']:.2f} ms, run_status {out['run_status_ms']:.2f} ms")
            for _ in range(30):
                await s.call_tool("run_command", {"argv": ["/bin/true"]})
            walls = []
            for _ in range(a.runs):
                t = time.perf_counter()
                r = await s.call_tool("run_command", {"argv": ["/bin/true"]})
                walls.append(time.perf_counter() - t)
                assert not getattr(r, "is_error", getattr(r, "isError", False)), r.content[0].text
            out["warm_ms"] = statistics.median(walls) * 1000
            log(f"(a) warm round trip median {out['warm_ms']:.2f} ms over {a.runs} calls")

            pid = server_pid(a.lanes)
            samples = []
            done = 0
            step_block = max(1, a.steps // 10)
            t0 = time.monotonic()
            while done < a.steps:
                async with anyio.create_task_group() as tg:
                    async def worker(k):
                        for _ in range(k):
                            await s.call_tool("run_command", {"argv": ["/bin/true"]})
                    per = step_block // 4
                    for _ in range(4):
                        tg.start_soon(worker, per)
                done += per * 4
                samples.append((done, rss_kib(pid) if pid else 0))
            out["rss"] = samples
            log(f"(d) {done} steps in {time.monotonic() - t0:.1f} s; RSS (KiB) by steps: {samples}")
            if pid:
                with open(f"/proc/{pid}/maps") as f:
                    curl = any("libcurl" in line for line in f)
                log(f"(d) libcurl mapped in the server: {'yes' if curl else 'no (Sources/CLazyCurl)'}")
    return out


async def throughput(a, config_args, sock_dir):
    """8 clients, each its own MCP session on one `--listen` server, each calling in a loop."""
    sock = os.path.join(sock_dir, "bench.sock")
    proc = subprocess.Popen([a.lanes, "mcp", *config_args, "--listen", "unix:" + sock], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(sock) and time.monotonic() < deadline:
            await anyio.sleep(0.02)
        counts = [0] * 8
        stop_at = [0.0]

        async def client(i):
            hc = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=sock), timeout=httpx2.Timeout(30, read=300))
            async with hc:
                async with streamable_http_client("http://localhost/mcp", http_client=hc) as streams:
                    async with ClientSession(streams[0], streams[1]) as s:
                        await s.initialize()
                        await s.call_tool("run_command", {"argv": ["/bin/true"]})
                        while stop_at[0] == 0.0:
                            await anyio.sleep(0.01)
                        while time.monotonic() < stop_at[0]:
                            await s.call_tool("run_command", {"argv": ["/bin/true"]})
                            counts[i] += 1

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(client, i)
            await anyio.sleep(2)
            start = time.monotonic()
            stop_at[0] = start + a.seconds
        return sum(counts) / a.seconds
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lanes")
    ap.add_argument("bwrap")
    ap.add_argument("workspace")
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--server-arg", action="append", default=[],
                    help="an extra argument for `lanes mcp` (e.g. --server-arg=--prestart=0 for an A/B)")
    a = ap.parse_args()
    run = "bench-mcp-" + str(os.getpid())
    # A lane of the same profile without [budget] or loop detection (10,000 /bin/true steps of one
    # run are a loop by the engineering lane's rules), in a config of its own.
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    config = tempfile.mkdtemp(prefix="lanes-bench-mcp-config-")
    import shutil
    shutil.copytree(os.path.join(root, "Profiles"), os.path.join(config, "Profiles"))
    os.makedirs(os.path.join(config, "Lanes"))
    with open(os.path.join(config, "Lanes", "bench.toml"), "w") as f:
        f.write('description = "bench"\nowner = "bench"\nprofile = "workspace-write"\n')
    a.lane = "bench"
    config_args = ["--config", config, "--lane", a.lane, "--workspace", a.workspace, *a.server_arg, "--run", run]

    # Every row measures the binaries as read from disk, whoever wrote them last.
    bindir = os.path.dirname(os.path.realpath(a.lanes))
    for name in ("lanes", "lane-init", "lanes-mcp"):
        if os.path.exists(os.path.join(bindir, name)):
            drop_page_cache(os.path.join(bindir, name))
    log(f"{bindir}: the binaries' cached pages dropped; they are read from disk")
    bwrap_ms, bwrap_cpu = one_shot(a.bwrap, a.runs)
    log(f"bwrap one-shot median {bwrap_ms:.2f} ms, CPU {bwrap_cpu:.2f} ms")
    lanes_cmd = f"{a.lanes} run --config {config} {a.lane} --workspace {a.workspace} -- /bin/true"
    lanes_ms, lanes_cpu = one_shot(lanes_cmd, a.runs)
    log(f"lanes run one-shot median {lanes_ms:.2f} ms, CPU {lanes_cpu:.2f} ms")
    w = anyio.run(warm, a, config_args)
    bwrap_tp = loops(a.bwrap, 8, a.seconds)
    log(f"8 bwrap loops: {bwrap_tp:.1f} steps/s")
    # The floor under (b): the seven fresh namespaces and /bin/true, nothing else, same driver.
    unshare_tp = loops(UNSHARE_ALL, 8, a.seconds)
    true_tp = loops("/bin/true", 8, a.seconds)
    log(f"8 bare unshare loops: {unshare_tp:.1f} steps/s; 8 /bin/true loops: {true_tp:.1f} steps/s")
    with tempfile.TemporaryDirectory(prefix="lanes-bench-mcp-") as d:
        config_args[-1] = run + "-tp"
        mcp_tp = anyio.run(throughput, a, config_args, d)
    log(f"8 MCP clients: {mcp_tp:.1f} steps/s")

    shutil.rmtree(config, ignore_errors=True)
    rss = w["rss"]
    first, last = rss[0][1], rss[-1][1]
    print("| row | lanes | bubblewrap | ratio | goal | met |")
    print("|---|---:|---:|---:|---|---|")
    r = w["warm_ms"] / bwrap_ms
    print(f"| (a) warm run_command /bin/true round trip (Python client, median ms) | {w['warm_ms']:.2f} | {bwrap_ms:.2f} | {r:.2f}× | ≤ 0.6× | {'yes' if r <= 0.6 else 'no'} |")
    r = mcp_tp / bwrap_tp
    print(f"| (b) throughput, 8 concurrent clients vs 8 bwrap loops (steps/s) | {mcp_tp:.1f} | {bwrap_tp:.1f} | {r:.2f}× | ≥ 2× | {'yes' if r >= 2 else 'no'} |")
    r = lanes_ms / bwrap_ms
    print(f"| (c) cold `lanes run` one-shot (median ms) | {lanes_ms:.2f} | {bwrap_ms:.2f} | {r:.2f}× | ≤ 1.0× | {'yes' if r <= 1 else 'no'} |")
    r2 = lanes_cpu / bwrap_cpu
    print(f"| (c) cold `lanes run` CPU per step (ms) | {lanes_cpu:.2f} | {bwrap_cpu:.2f} | {r2:.2f}× | ≤ 1.0× | {'yes' if r2 <= 1 else 'no'} |")
    flat = last - first <= max(2048, first * 0.1)
    # 30 MB as written: 30,000,000 bytes (28.6 MiB).
    met = last * 1024 <= 30_000_000 and flat
    print(f"| (d) server RSS after {rss[-1][0]} steps (MiB; after {rss[0][0]}: {first / 1024:.1f}) | {last / 1024:.1f} MiB = {last * 1024 / 1e6:.1f} MB | | | ≤ 30 MB, flat | {'yes' if met else 'no'} |")
    cores = os.cpu_count() or 1
    print()
    print(f"Floors, same run: an MCP `ping` round trip {w['ping_ms']:.2f} ms and a `run_status` call (a tool call "
          f"without a step) {w['run_status_ms']:.2f} ms through the same client; 8 loops of bare `{UNSHARE_ALL}` "
          f"{unshare_tp:.1f} steps/s = {unshare_tp / bwrap_tp:.2f}× bubblewrap's, and of `/bin/true` {true_tp:.1f} steps/s: "
          f"a bare `unshare` of the seven namespaces costs {1000 * cores / unshare_tp - 1000 * cores / true_tp:.2f} "
          f"core-ms per step more than /bin/true alone ({cores} cores), where 2× bubblewrap's throughput leaves "
          f"{1000 * cores / (2 * bwrap_tp):.2f} core-ms per step for everything, client and driver included.")


if __name__ == "__main__":
    main()
