"""End-to-end tests of `lanes mcp` driven by the official `mcp` Python client.

Usage: python3 mcp_e2e.py --lanes PATH/lanes --scenario NAME [--transport stdio|unix]

Each scenario makes its own config (the repository's Profiles/ plus test lanes), state directory
and workspace, starts `lanes mcp`, talks to it through `mcp.ClientSession`, and asserts; any
failure raises, printing what was expected and what was found, and the exit status is 1.
"""

import argparse

import anyio

from mcp_fixture import Fixture
from mcp_tools import bad_requests, basics, example_scenario, network_tools
from mcp_runs import budget, cancel, concurrent, gated, killed, progress, replay, slots
from mcp_http import bad_http, socket_group
from mcp_resources import long_output
from mcp_secrets import secrets


SCENARIOS = {
    "bad_http": bad_http, "bad_requests": bad_requests, "basics": basics, "budget": budget,
    "cancel": cancel, "concurrent": concurrent, "example": example_scenario, "gated": gated,
    "killed": killed, "long_output": long_output, "network_tools": network_tools,
    "progress": progress, "replay": replay, "secrets": secrets, "slots": slots, "socket_group": socket_group,
}


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
