#ifndef LANE_EARLY_STOP_H
#define LANE_EARLY_STOP_H
// A one-shot's stop signals while its sandbox was started early (EarlySandbox, LaneRuntime).

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The most cgroup directories one early sandbox has (v1: one per hierarchy).
#define LANE_EARLY_STOP_MAX_DIRS 8

/// Until lane_early_stop_disarm: SIGINT, SIGTERM or SIGHUP (each only while its disposition is
/// the default one: an ignored signal stays ignored) first kills PID 1 `pid` of the sandbox
/// started early, reaps it and removes its (then empty) cgroup directories `dirs`, then ends
/// this process with that signal, as it would have without the sandbox. Why C: it runs in a
/// signal handler, where only async-signal-safe calls may run (kill, waitpid, rmdir, nanosleep,
/// sigaction, raise). Returns 0, or -1 with errno (nothing armed) when a path is too long or
/// there are more than LANE_EARLY_STOP_MAX_DIRS.
int lane_early_stop_arm(pid_t pid, const char *const *dirs, int count);
/// Ends what lane_early_stop_arm set up and restores the signals' dispositions. Call it before
/// the sandbox is reaped by anyone else (its pid could be reused) and once the step has its own
/// signalfd (or will not run). Idempotent.
void lane_early_stop_disarm(void);

#ifdef __cplusplus
}
#endif

#endif
