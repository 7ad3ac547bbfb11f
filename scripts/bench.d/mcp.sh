# ---- lanes mcp (issue 13) -----------------------------------------------------------------------
# Sourced by scripts/bench before hyperfine. Runs scripts/bench-mcp.py with the official Python
# `mcp` client (the venv lanes_ensure_venv makes) and keeps its table for the end of the report:
# (a) warm run_command round trip vs bubblewrap one-shot, (b) 8 concurrent clients vs 8 bwrap
# loops, (c) cold `lanes run` vs bubblewrap (wall and CPU), (d) the server's RSS after
# BENCH_MCP_STEPS steps (default 10,000). BENCH_MCP=0 skips it (and says so).
if [ "${BENCH_MCP:-1}" = 0 ]; then
    echo "bench: mcp: skipped (BENCH_MCP=0)" >&2
else
    lanes_ensure_venv
    "$LANES_VENV/bin/python3" scripts/bench-mcp.py "$lanes" "$bwrap_cmd" "$ws" \
        --steps "${BENCH_MCP_STEPS:-10000}" --runs "${BENCH_MCP_RUNS:-300}" > "$work/mcp.md"
fi
# ---- end lanes mcp ------------------------------------------------------------------------------
