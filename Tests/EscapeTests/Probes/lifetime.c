// lifetime: processes that try to outlive their step, and a zombie flood.
//
// Usage:
//   lifetime escape MARKER DIR [exit]   double fork + setsid + a SIGSTOPped child + a grandchild
//                                       that writes DIR/heartbeat every 20 ms forever; then
//                                       waits forever (or exits at once with "exit"). MARKER
//                                       only marks the command line, so the host can look for it.
//   lifetime zombies N                  N short-lived orphans (PID 1 must reap them), then waits
//                                       up to 5 s for /proc to show no zombie; prints
//                                       "zombies K" (K left) and "forked N".
//   lifetime own-zombies N              N children it never reaps (the control: the /proc scan
//                                       does see zombies); prints "zombies K".
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/// fork, retrying while the process limit is momentarily reached.
static pid_t fork_retry(void) {
    for (int tries = 0; tries < 2000; tries++) {
        pid_t pid = fork();
        if (pid >= 0 || errno != EAGAIN) return pid;
        nap(1);
    }
    return -1;
}

static void heartbeat(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/heartbeat", dir);
    for (unsigned long n = 0;; n++) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd >= 0) {
            dprintf(fd, "%lu\n", n);
            close(fd);
        }
        nap(20);
    }
}

static int escape(const char *dir, int exit_at_once) {
    pid_t a = fork();
    if (a == 0) {
        setsid();
        if (fork() == 0) {  // the stopped one
            raise(SIGSTOP);
            for (;;) pause();
        }
        if (fork() == 0) {  // the grandchild that keeps writing
            setsid();
            heartbeat(dir);
        }
        _exit(0);  // the double fork: the grandchildren are orphans now
    }
    waitpid(a, NULL, 0);
    // Report only once the grandchild has written (so "exit" cannot end it before it ran).
    char path[4096];
    snprintf(path, sizeof path, "%s/heartbeat", dir);
    for (int i = 0; i < 500 && access(path, F_OK) != 0; i++) nap(10);
    printf("escaped\n");
    fflush(stdout);
    if (exit_at_once) return 0;
    for (;;) pause();
}

/// How many processes /proc shows in state Z.
static int count_zombies(void) {
    DIR *d = opendir("/proc");
    if (!d) return -1;
    int zombies = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = 0;
        char *paren = strrchr(buf, ')');  // the state follows the command name in parentheses
        if (paren && paren[1] == ' ' && paren[2] == 'Z') zombies++;
    }
    closedir(d);
    return zombies;
}

static int zombies(int total) {
    int forked = 0;
    const int batch = 250;
    while (forked < total) {
        int count = total - forked < batch ? total - forked : batch;
        pid_t spawner = fork_retry();
        if (spawner < 0) { perror("fork"); return 1; }
        if (spawner == 0) {
            for (int i = 0; i < count; i++) {
                pid_t pid = fork_retry();
                if (pid == 0) _exit(0);
                if (pid < 0) _exit(1);
            }
            _exit(0);  // its exited children become PID 1's to reap
        }
        int status = 0;
        waitpid(spawner, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "spawner failed\n"); return 1; }
        forked += count;
    }
    int left = count_zombies();
    for (int i = 0; i < 250 && left != 0; i++) {
        nap(20);
        left = count_zombies();
    }
    printf("forked %d\nzombies %d\n", forked, left);
    return 0;
}

static int own_zombies(int total) {
    for (int i = 0; i < total; i++) {
        pid_t pid = fork_retry();
        if (pid == 0) _exit(0);
    }
    nap(100);
    printf("zombies %d\n", count_zombies());
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && !strcmp(argv[1], "escape")) return escape(argv[3], argc > 4 && !strcmp(argv[4], "exit"));
    if (argc == 3 && !strcmp(argv[1], "zombies")) return zombies(atoi(argv[2]));
    if (argc == 3 && !strcmp(argv[1], "own-zombies")) return own_zombies(atoi(argv[2]));
    fprintf(stderr, "usage: lifetime escape MARKER DIR [exit] | zombies N | own-zombies N\n");
    return 2;
}
