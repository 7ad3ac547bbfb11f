# ---- journal (issue 4) -------------------------------------------------------------------------
# Sourced by scripts/bench before hyperfine. Keeps the journal of every `lanes run` row in the
# bench's own state directory (not /var/lib/lanes), and measures the journal two ways:
# - in process (Benchmarks/JournalBench): the journal work of one `lanes run` (open, governed
#   intent, close with the after-step check) on a new run and deep into a 2,000-step run, and
#   steps/s with 8 concurrent writers on one run, durable (synchronous=FULL, group commit);
# - one process per step, like `lanes run`: rows `journal-step` (a fresh process opens the
#   journal and records one governed step) and `journal-nostep` (the same process start, no
#   journal). Their difference is the journal's share of a step, first-use costs included.
export LANES_STATE="$work/state"
echo "bench: journal: building journal-bench (release, static)…" >&2
LANES_BENCH=1 LANES_STATIC_EXECUTABLES=1 swift build -c release --static-swift-stdlib \
    --scratch-path "$LANES_RELEASE_DIR" --product journal-bench >&2
journal_bench="$root/$LANES_RELEASE_DIR/release/journal-bench"
# On disk (not tmpfs, where fsync is free).
journal_bench_dir=$(mktemp -d /var/tmp/lanes-journal-bench.XXXXXX)
"$journal_bench" 8 500 "$journal_bench_dir/j" | sed 's/^/bench: journal: /' >&2
rm -rf "$journal_bench_dir"
journal_step_dir=$(mktemp -d /var/tmp/lanes-journal-step.XXXXXX)
trap 'rm -rf "$work" "$journal_step_dir"' EXIT
"$journal_bench" step "$journal_step_dir/j.sqlite" warm-up
extra_names+=("journal-nostep" "journal-step")
extra_cmds+=("$journal_bench nostep $journal_step_dir/j.sqlite bench" "$journal_bench step $journal_step_dir/j.sqlite bench")
# A step whose result is already recorded: `lanes run` replays it without spawning anything.
"$lanes" run engineering --workspace "$ws" --run bench-replay --step 1 -- /bin/true >/dev/null 2>&1 || true
extra_names+=("lanes-replay")
extra_cmds+=("$lanes run engineering --workspace $ws --run bench-replay --step 1 -- /bin/true")
# ---- end journal --------------------------------------------------------------------------------
