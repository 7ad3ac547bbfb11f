# ---- journal (issue 4) -------------------------------------------------------------------------
# Sourced by scripts/bench before hyperfine. Keeps the journal of every `lanes run` row in the
# bench's own state directory (not /var/lib/lanes), and runs the in-process journal benchmark:
# intent + close latency of one writer (the journal's share of a step) and steps/s with 8
# concurrent writers on one run, durable (synchronous=FULL, group commit).
export LANES_STATE="$work/state"
echo "bench: journal: building journal-bench (release)…" >&2
LANES_BENCH=1 LANES_STATIC_EXECUTABLES=1 swift build -c release --static-swift-stdlib \
    --scratch-path "$LANES_RELEASE_DIR" --product journal-bench >&2
# On disk (not tmpfs, where fsync is free).
journal_bench_dir=$(mktemp -d /var/tmp/lanes-journal-bench.XXXXXX)
"$root/$LANES_RELEASE_DIR/release/journal-bench" 8 500 "$journal_bench_dir/j" | sed 's/^/bench: journal: /' >&2
rm -rf "$journal_bench_dir"
# A step whose result is already recorded: `lanes run` replays it without spawning anything.
"$lanes" run engineering --workspace "$ws" --run bench-replay --step 1 -- /bin/true >/dev/null 2>&1 || true
extra_names+=("lanes-replay")
extra_cmds+=("$lanes run engineering --workspace $ws --run bench-replay --step 1 -- /bin/true")
# ---- end journal --------------------------------------------------------------------------------
