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
# ---- protected paths (issue 10) ---------------------------------------------------------------------
# The before/after walk of the writable tree: /bin/true in a git workspace of 10,000 files in
# 1,050 directories, under workspace-write (protected list) and the same profile without it.
pw="$work/protect-ws"
mkdir -p "$pw" "$dn/Profiles" "$dn/Lanes"
git -C "$pw" init -q
for i in $(seq 1 1000); do mkdir -p "$pw/d$((i % 50))/s$i"; for j in $(seq 1 10); do : >"$pw/d$((i % 50))/s$i/f$j"; done; done
cp Profiles/workspace-write.toml "$dn/Profiles/prot.toml"
sed '/^protected = \[/,/^\]/d' Profiles/workspace-write.toml >"$dn/Profiles/noprot.toml"
for p in prot noprot; do printf 'description = "bench"\nowner = "bench"\nprofile = "%s"\n' "$p" >"$dn/Lanes/$p.toml"; done
extra_names+=("walk-10k-protected" "walk-10k-unprotected")
extra_cmds+=("$lanes run prot --config $dn --workspace $pw -- /bin/true"
             "$lanes run noprot --config $dn --workspace $pw -- /bin/true")
# ---- end protected paths ------------------------------------------------------------------------------
