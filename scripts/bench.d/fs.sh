# ---- workspace changes as a transaction (issue 14) ----------------------------------------------
# Sourced by scripts/bench before hyperfine. Rows:
#   fs-direct-10  a step that rewrites 10 files of a 20,000-file workspace, commit = "direct"
#   fs-auto-10    the same step with commit = "auto" (overlay, change set computed and applied)
# Their difference is the per-step cost of auto (goal: < 1 ms). The change set's cost scales with
# what the step wrote, not with the workspace: only the upper directory is walked.
# Also, outside hyperfine (3 runs each, medians on stderr): a step that writes 1 GiB under direct,
# auto, and auto with the directory kept direct by writable_direct.
# Runnable alone: `bash scripts/bench.d/fs.sh` (uses the release build of scripts/bench).
if [ -z "${lanes:-}" ]; then
    set -euo pipefail
    root=$(cd "$(dirname "$0")/../.." && pwd)
    cd "$root"
    # shellcheck source=../lib/setup.sh
    . scripts/lib/setup.sh
    lanes_release_build
    lanes="$root/$LANES_RELEASE_DIR/release/lanes"
    work=$(mktemp -d /tmp/lanes-bench.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    fs_standalone=1
fi
fs_dir=$(mktemp -d /var/tmp/lanes-bench-fs.XXXXXX)  # on disk, like a real workspace and state
fs_cfg="$fs_dir/config"
mkdir -p "$fs_cfg/Profiles" "$fs_cfg/Lanes" "$fs_dir/ws/src" "$fs_dir/state"
for mode in direct auto; do
    sed "s/^workspace = \"read-write\"$/workspace = \"read-write\"\ncommit = \"$mode\"/" Profiles/workspace-write.toml \
        > "$fs_cfg/Profiles/fs-$mode.toml"
    printf 'description = "bench"\nowner = "bench"\nprofile = "fs-%s"\n' "$mode" > "$fs_cfg/Lanes/fs-$mode.toml"
done
printf 'description = "bench"\nowner = "bench"\nprofile = "fs-auto"\nwritable_direct = ["out"]\n' > "$fs_cfg/Lanes/fs-auto-direct.toml"
# 20,000 files in 200 directories.
python3 - "$fs_dir/ws/src" <<'PY'
import os, sys
for d in range(200):
    os.makedirs(f"{sys.argv[1]}/d{d}", exist_ok=True)
    for f in range(100):
        with open(f"{sys.argv[1]}/d{d}/f{f}.txt", "w") as fh: fh.write(f"file {d}/{f}\n")
PY
fs_step='for i in 0 1 2 3 4 5 6 7 8 9; do date +%N > src/d$i/f$i.txt; done'
fs_run() { echo "$lanes run --config $fs_cfg --state $fs_dir/state $1 --workspace $fs_dir/ws -- sh -c '$2'"; }
extra_names+=("fs-direct-10" "fs-auto-10")
extra_cmds+=("$(fs_run fs-direct "$fs_step")" "$(fs_run fs-auto "$fs_step")")

# 1 GiB (1000 MiB: the profile's file_size limit is 1 GiB) written by one step.
fs_big='mkdir -p out && head -c 1000M /dev/zero > out/big && rm -f out/big'
fs_big_write='mkdir -p out && head -c 1000M /dev/zero > out/big'
for row in "fs-direct:$fs_big_write" "fs-auto:$fs_big_write" "fs-auto-direct:$fs_big_write" "fs-auto:$fs_big"; do
    lane=${row%%:*}
    script=${row#*:}
    hyperfine --shell=bash --runs 3 --export-json "$fs_dir/big.json" \
        --prepare "rm -rf $fs_dir/ws/out" "$(fs_run "$lane" "$script")" >/dev/null 2>&1 || true
    median=$(python3 -c 'import json,sys; print("%.0f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$fs_dir/big.json" 2>/dev/null || echo "?")
    what="writes 1000 MiB"
    [ "$script" = "$fs_big" ] && what="writes 1000 MiB and deletes it again (nothing to apply)"
    echo "bench: fs: a step that $what, lane $lane: median $median ms" >&2
done
rm -rf "$fs_dir/ws/out"
if [ -n "${fs_standalone:-}" ]; then
    hyperfine --shell=bash --warmup 10 --runs "${BENCH_RUNS:-100}" -n fs-direct-10 "$(fs_run fs-direct "$fs_step")" \
        -n fs-auto-10 "$(fs_run fs-auto "$fs_step")" >&2
    rm -rf "$fs_dir"
else
    trap 'rm -rf "$work" "${journal_step_dir:-}" "$fs_dir"' EXIT
fi
# ---- end workspace changes -----------------------------------------------------------------------
