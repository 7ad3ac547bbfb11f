# A baseline `lanes` to compare with in the same hyperfine run (say, the previous release):
#   LANES_BENCH_BASELINE=/path/to/old/.build-static/release/lanes scripts/bench
# Its lane-init must sit beside it. The row is `lanes-baseline`.
if [ -n "${LANES_BENCH_BASELINE:-}" ]; then
    extra_names+=(lanes-baseline)
    extra_cmds+=("$LANES_BENCH_BASELINE run engineering --workspace $ws -- /bin/true")
fi
