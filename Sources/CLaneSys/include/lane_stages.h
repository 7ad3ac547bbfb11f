// The one list of set-up stages of a step. The C core (lane_spawn, lane_bind,
// lane_seal_and_exec), lane-init and the supervisor all report a failed stage by the number
// below, and every message names it by the string below (`lane_stage_name`), so a 125 names the
// same stage whichever layer failed. Swift sees the numbers as the constants of `lane_stage`
// (LANE_STAGE_…) and the names through `SetupStage` (LanePlan); there is no other list.
//
// Add a stage by adding one line; numbers are only exchanged between processes of one build
// (the clone child's error pipe, lane-init's reports), so they may be renumbered freely.
#ifndef LANE_STAGES_H
#define LANE_STAGES_H

// X(IDENTIFIER, NUMBER, "name"): in the order a step goes through them.
#define LANE_STAGE_LIST(X) \
    /* the supervisor, before and around clone3 */ \
    X(LANE_STAGE_PLAN, 1, "plan") \
    X(LANE_STAGE_PIPE, 2, "pipe") \
    X(LANE_STAGE_SIGNALS, 3, "signals") \
    X(LANE_STAGE_WORKSPACE, 4, "workspace") \
    X(LANE_STAGE_CGROUP, 5, "cgroup") \
    X(LANE_STAGE_SPAWN, 6, "spawn") \
    X(LANE_STAGE_ID_MAP, 7, "user namespace id map") \
    X(LANE_STAGE_CGROUP_ATTACH, 8, "cgroup attach") \
    X(LANE_STAGE_OVERLAY_OWNER, 9, "overlay: layer owner") \
    /* the clone child (C, between clone3 and exec of lane-init) */ \
    X(LANE_STAGE_PDEATHSIG, 10, "spawn pdeathsig") \
    X(LANE_STAGE_SYNC, 11, "spawn sync") \
    X(LANE_STAGE_SETGROUPS, 12, "spawn setgroups") \
    X(LANE_STAGE_FDS, 13, "spawn fd map") \
    X(LANE_STAGE_EXEC_INIT, 14, "exec lane-init") \
    X(LANE_STAGE_SETIDS, 15, "spawn set ids") \
    /* lane-init, PID 1 of the sandbox */ \
    X(LANE_STAGE_NONDUMPABLE, 20, "nondumpable init") \
    X(LANE_STAGE_READ_PLAN, 21, "read plan") \
    X(LANE_STAGE_MOUNT_PRIVATE, 22, "make mounts private") \
    X(LANE_STAGE_SCRATCH_ROOT, 23, "scratch root") \
    X(LANE_STAGE_ROOT_TMPFS, 24, "root tmpfs") \
    X(LANE_STAGE_MOUNT_TMPFS, 25, "mount tmpfs") \
    X(LANE_STAGE_BIND, 26, "bind") \
    X(LANE_STAGE_BIND_OPEN, 27, "bind: open source") \
    X(LANE_STAGE_BIND_OPEN_TREE, 28, "bind: open_tree") \
    X(LANE_STAGE_BIND_SETATTR, 29, "bind: mount_setattr") \
    X(LANE_STAGE_BIND_MOVE, 30, "bind: move_mount") \
    X(LANE_STAGE_MOUNT_PROC, 31, "mount proc") \
    X(LANE_STAGE_PROTECT_PROC, 32, "protect proc") \
    X(LANE_STAGE_MOUNT_DEV, 33, "mount dev") \
    X(LANE_STAGE_SYMLINK, 34, "symlink") \
    X(LANE_STAGE_WRITE_FILE, 35, "write file") \
    X(LANE_STAGE_MKDIR, 36, "mkdir") \
    X(LANE_STAGE_REMOUNT_READONLY, 37, "remount read-only") \
    X(LANE_STAGE_PIVOT_ROOT, 38, "pivot root") \
    X(LANE_STAGE_HOSTNAME, 39, "hostname") \
    X(LANE_STAGE_LOOPBACK, 40, "loopback") \
    X(LANE_STAGE_RLIMITS, 41, "rlimits") \
    X(LANE_STAGE_FORK_TOOL, 42, "fork tool") \
    X(LANE_STAGE_BIND_IDMAP, 43, "bind: idmap") \
    X(LANE_STAGE_ATTACH, 44, "attach workspace") \
    X(LANE_STAGE_PROTECT_PATHS, 45, "protect paths") \
    X(LANE_STAGE_OVERLAY, 46, "overlay") \
    X(LANE_STAGE_EGRESS, 47, "egress relay") \
    X(LANE_STAGE_OVERLAY_LAYERS, 48, "overlay: attach layers") \
    X(LANE_STAGE_OVERLAY_DETACH, 49, "overlay: detach layers") \
    /* the tool's launcher (forked from lane-init) and lane_seal_and_exec */ \
    X(LANE_STAGE_SETSID, 50, "setsid") \
    X(LANE_STAGE_TOOL_USERNS, 51, "tool user namespace") \
    X(LANE_STAGE_TOOL_ID_MAP, 52, "tool id map") \
    X(LANE_STAGE_WORKDIR, 53, "chdir workspace") \
    X(LANE_STAGE_CAPABILITIES, 54, "drop capabilities") \
    X(LANE_STAGE_SIGNAL_MASK, 55, "signal mask") \
    X(LANE_STAGE_CLOSE_FDS, 56, "close fds") \
    X(LANE_STAGE_NO_NEW_PRIVS, 57, "no_new_privs") \
    X(LANE_STAGE_SECCOMP, 58, "seccomp") \
    X(LANE_STAGE_EXEC, 59, "exec") \
    X(LANE_STAGE_SECCOMP_LISTENER, 60, "seccomp listener") \
    /* lane-init again: an early sandbox's PID 1 gives the tool the caller's CPUs back */ \
    X(LANE_STAGE_TOOL_AFFINITY, 61, "tool CPU affinity")

/// Every set-up stage (see LANE_STAGE_LIST).
enum lane_stage {
#define LANE_STAGE_ENUM_(id, number, name) id = number,
    LANE_STAGE_LIST(LANE_STAGE_ENUM_)
#undef LANE_STAGE_ENUM_
};

/// The largest stage number (for iterating over every stage).
#define LANE_STAGE_MAX 61

/// The name of a stage, or NULL for a number that is not one. Why C: the names live next to
/// the numbers in this header, which the C core and Swift both read.
const char *lane_stage_name(int stage);

#endif
