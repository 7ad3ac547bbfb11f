#define _GNU_SOURCE
#include "lane_early_stop.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// Written only by arm, before the handlers are installed, and read only by the one handler
// invocation that wins `armed` (the exchange orders the reads after the writes).
static pid_t early_pid;
static int early_count;
static char early_dirs[LANE_EARLY_STOP_MAX_DIRS][PATH_MAX];
static atomic_int armed;

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define STOP_SIGNALS ((int)(sizeof stop_signals / sizeof stop_signals[0]))
static struct sigaction previous[STOP_SIGNALS];
static int installed[STOP_SIGNALS];

static void on_stop_signal(int sig) {
    int saved = errno;
    if (atomic_exchange(&armed, 0) == 1) {
        (void)kill(early_pid, SIGKILL);
        // PID 1's exit kills and waits for every process of its pid namespace, so once it is
        // reaped the group is empty. Its removal can still race the kernel's own accounting for
        // a moment (EBUSY): bounded retries, 1 ms apart, at most ~0.2 s.
        int status;
        while (waitpid(early_pid, &status, __WALL) < 0 && errno == EINTR) {}
        for (int i = 0; i < early_count; i++) {
            for (int tries = 0; tries < 200; tries++) {
                if (rmdir(early_dirs[i]) == 0 || errno == ENOENT) break;
                if (errno != EBUSY) break;
                struct timespec ms = {0, 1000000};
                (void)nanosleep(&ms, NULL);
            }
        }
    }
    // Die of the signal, as without a handler: it is delivered again once this returns (it is
    // blocked while its handler runs).
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    (void)sigaction(sig, &dfl, NULL);
    (void)raise(sig);
    errno = saved;
}

int lane_early_stop_arm(pid_t pid, const char *const *dirs, int count) {
    if (count < 0 || count > LANE_EARLY_STOP_MAX_DIRS) { errno = EINVAL; return -1; }
    for (int i = 0; i < count; i++) {
        if (strlen(dirs[i]) >= PATH_MAX) { errno = ENAMETOOLONG; return -1; }
    }
    lane_early_stop_disarm();
    early_pid = pid;
    early_count = count;
    for (int i = 0; i < count; i++) strcpy(early_dirs[i], dirs[i]);
    atomic_store(&armed, 1);
    struct sigaction on_stop;
    memset(&on_stop, 0, sizeof on_stop);
    on_stop.sa_handler = on_stop_signal;
    sigemptyset(&on_stop.sa_mask);
    on_stop.sa_flags = SA_RESTART;
    for (int i = 0; i < STOP_SIGNALS; i++) {
        installed[i] = 0;
        struct sigaction current;
        if (sigaction(stop_signals[i], NULL, &current) != 0 || current.sa_handler != SIG_DFL
            || (current.sa_flags & SA_SIGINFO)) continue;  // ignored or handled by someone else: left alone
        if (sigaction(stop_signals[i], &on_stop, &previous[i]) == 0) installed[i] = 1;
    }
    return 0;
}

void lane_early_stop_disarm(void) {
    // First: a signal that arrives from now on finds nothing to clean up.
    atomic_store(&armed, 0);
    for (int i = 0; i < STOP_SIGNALS; i++) {
        if (!installed[i]) continue;
        installed[i] = 0;
        struct sigaction current;
        // Only if it is still ours (the handler itself may have reset it already).
        if (sigaction(stop_signals[i], NULL, &current) == 0 && current.sa_handler == on_stop_signal)
            (void)sigaction(stop_signals[i], &previous[i], NULL);
    }
}
