# ---- seccomp refusals recorded by PID 1 (issue 10) -------------------------------------------------
# Sourced by scripts/bench. A syscall-heavy step (dd, 1-byte blocks: 400,000 allowed read/write
# calls) under a profile in `errno` mode, whose refusals go to PID 1 as user notifications, and
# under the same profile in `kill` mode, whose default action never notifies. Allowed calls
# return from the BPF program in both, so the two rows must match; `syscalls-plain` is dd alone.
dn="$work/denials-config"
mkdir -p "$dn/Profiles" "$dn/Lanes"
for mode in errno kill; do
    printf 'description = "bench"\n[filesystem]\nworkspace = "read-write"\n[seccomp]\ndefault_action = "%s"\n' "$mode" >"$dn/Profiles/sc-$mode.toml"
    printf 'description = "bench"\nowner = "bench"\nprofile = "sc-%s"\n' "$mode" >"$dn/Lanes/sc-$mode.toml"
done
dd_cmd="dd if=/dev/zero of=/dev/null bs=1 count=200000 status=none"
extra_names+=("syscalls-plain" "syscalls-lanes-errno-notify" "syscalls-lanes-kill")
extra_cmds+=("$dd_cmd"
             "$lanes run sc-errno --config $dn --workspace $ws -- $dd_cmd"
             "$lanes run sc-kill --config $dn --workspace $ws -- $dd_cmd")
# ---- end seccomp refusals ---------------------------------------------------------------------------
