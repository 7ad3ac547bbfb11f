# ---- cgroups (issue 3) ---------------------------------------------------------------------------
# Sourced by scripts/bench: the same step with memory+pids+cpu limits (a per-step cgroup) and
# without any cgroup (LANES_CGROUP=off, a profile without cgroup limits). scripts/bench-cgroup has
# the longer comparison, including the raw cost of a v1 group made from bash.
cg="$work/cgroup-config"
mkdir -p "$cg/Profiles" "$cg/Lanes"
cg_profile() {  # name, extra [limits] lines
    printf 'description = "bench"\n[filesystem]\nworkspace = "read-write"\n[limits]\n%s\n' "$2" >"$cg/Profiles/$1.toml"
    printf 'description = "bench"\nowner = "bench"\nprofile = "%s"\n' "$1" >"$cg/Lanes/$1.toml"
}
cg_profile plain ""
cg_profile limited $'memory = "512M"\npids = 256\ncpu_fraction = 1'
if "$lanes" run limited --config "$cg" --workspace "$ws" -- /bin/true >/dev/null 2>&1; then
    extra_names+=("lanes-no-cgroup" "lanes-cgroup-limits")
    extra_cmds+=("env LANES_CGROUP=off $lanes run plain --config $cg --workspace $ws -- /bin/true"
                 "$lanes run limited --config $cg --workspace $ws -- /bin/true")
else
    echo "bench: cgroups: limits cannot be enforced here (see lanes doctor); rows skipped" >&2
fi
# ---- end cgroups ----------------------------------------------------------------------------------
