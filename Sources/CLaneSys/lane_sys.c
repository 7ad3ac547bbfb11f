#define _GNU_SOURCE
#include "lane_sys.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

struct lane_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

// Reports {stage, errno} to the parent and exits. Only raw syscalls: this runs in the clone
// child of a multithreaded process.
static void child_fail(int err_fd, int stage, int err) {
    int rec[2] = {stage, err};
    (void)syscall(SYS_write, err_fd, rec, sizeof rec);
    syscall(SYS_exit_group, 125);
}

static void child_reset_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < 65; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        // glibc's sigaction is a thin wrapper over rt_sigaction; it takes no lock.
        (void)sigaction(sig, &sa, NULL);
    }
}

// The clone child. Ordering matters:
// 1. PDEATHSIG first, so the child dies with `lanes` from here on;
// 2. wait for the parent to write uid_map/gid_map (EOF means the parent died: exit);
// 3. drop supplementary groups (needs the gid map and setgroups=allow);
// 4. move the fd map into place; everything else becomes CLOEXEC, including err_fd, so a
//    successful exec closes the error pipe and the parent reads EOF;
// 5. unblock signals last, right before exec.
static void child_main(const struct lane_spawn_args *a) {
    // Our copy of the parent's write end would keep the sync pipe open forever: close it, so a
    // parent that dies before the byte is sent (even before PDEATHSIG is armed) reads as EOF.
    (void)syscall(SYS_close, a->sync_write_fd);
    child_reset_signals();
    if (syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        child_fail(a->err_fd, LANE_STAGE_PDEATHSIG, errno);
    char byte;
    long n;
    do {
        n = syscall(SYS_read, a->sync_fd, &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) child_fail(a->err_fd, LANE_STAGE_SYNC, n < 0 ? errno : EPIPE);
    if (a->drop_groups && syscall(SYS_setgroups, 0, NULL) != 0)
        child_fail(a->err_fd, LANE_STAGE_SETGROUPS, errno);
    // Root maps the namespace's uid 0 to an unprivileged host identity, not to itself: the
    // child still carries the parent's host ids, which that map leaves unmapped. Taking uid and
    // gid 0 of the namespace (capabilities there allow it) makes it that identity on the host,
    // and execve then keeps root's capabilities inside the namespace only.
    if (a->drop_groups) {
        if (syscall(SYS_setresgid, 0, 0, 0) != 0 || syscall(SYS_setresuid, 0, 0, 0) != 0)
            child_fail(a->err_fd, LANE_STAGE_SETIDS, errno);
        // A change of effective ids clears the parent-death signal: arm it again, then make
        // sure the parent did not die in between. The parent holds its end of the sync pipe
        // open until this child has exec'd, so a hang-up there means it is gone.
        if (syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
            child_fail(a->err_fd, LANE_STAGE_PDEATHSIG, errno);
        struct pollfd p = {a->sync_fd, POLLIN, 0};
        struct timespec now = {0, 0};
        if (syscall(SYS_ppoll, &p, 1, &now, NULL, 0) != 0 && (p.revents & (POLLHUP | POLLERR)))
            syscall(SYS_exit_group, 125);
    }

    // Lift the sources (and err_fd) out of the way first, to the lowest free numbers at or
    // above fd_count: installing fd i < fd_count then cannot clobber a lifted copy. No fixed
    // high numbers: F_DUPFD fails with EINVAL at or above the soft RLIMIT_NOFILE, and a PAM
    // session or systemd service commonly has 1024 (issue 11); any limit >= 64 works here.
    int high[16];
    if (a->fd_count > 16) child_fail(a->err_fd, LANE_STAGE_FDS, EINVAL);
    int err_fd = a->err_fd;
    // err_fd must survive until exec: move it above the map and keep it CLOEXEC.
    long moved = syscall(SYS_fcntl, err_fd, F_DUPFD_CLOEXEC, a->fd_count);
    if (moved < 0) child_fail(err_fd, LANE_STAGE_FDS, errno);
    err_fd = (int)moved;
    for (int i = 0; i < a->fd_count; i++) {
        long fd = syscall(SYS_fcntl, a->fds[i], F_DUPFD_CLOEXEC, a->fd_count);
        if (fd < 0) child_fail(err_fd, LANE_STAGE_FDS, errno);
        high[i] = (int)fd;
    }
    for (int i = 0; i < a->fd_count; i++) {
        if (syscall(SYS_dup3, high[i], i, 0) < 0) child_fail(err_fd, LANE_STAGE_FDS, errno);
    }
    if (syscall(SYS_close_range, a->fd_count, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        child_fail(err_fd, LANE_STAGE_FDS, errno);

    sigset_t none;
    sigemptyset(&none);
    (void)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(long));
    syscall(SYS_execve, a->path, a->argv, a->envp);
    child_fail(err_fd, LANE_STAGE_EXEC_INIT, errno);
}

int lane_spawn(const struct lane_spawn_args *a, pid_t *pid, int *pidfd) {
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    int fd = -1;
    ca.flags = a->clone_flags | CLONE_PIDFD;
    ca.pidfd = (uint64_t)(uintptr_t)&fd;
    ca.exit_signal = SIGCHLD;
    if (a->cgroup_fd >= 0) {
        ca.flags |= CLONE_INTO_CGROUP;
        ca.cgroup = (uint64_t)a->cgroup_fd;
    }
    // Block every signal so no handler of the parent runs in the child before it resets them.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    long r = syscall(SYS_clone3, &ca, sizeof ca);
    if (r == 0) {
        child_main(a);  // does not return
        syscall(SYS_exit_group, 125);
    }
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0) return -saved;
    *pid = (pid_t)r;
    *pidfd = fd;
    return 0;
}

int lane_seal_and_exec(const void *filter, size_t filter_len, const char *path,
                       char *const *argv, char *const *envp, int err_fd, int notify_fd) {
    int rec[2];
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        rec[0] = LANE_STAGE_NO_NEW_PRIVS; rec[1] = errno;
        (void)write(err_fd, rec, sizeof rec);
        return -rec[1];
    }
    if (filter_len > 0) {
        struct sock_fprog prog;
        prog.len = (unsigned short)(filter_len / sizeof(struct sock_filter));
        prog.filter = (struct sock_filter *)filter;
        // SECCOMP_FILTER_FLAG_TSYNC is not needed: the caller is single-threaded. With a
        // notify_fd the filter's refusals (SECCOMP_RET_USER_NOTIF) go to a listener that is
        // handed to PID 1 over notify_fd; sendmsg and close are allowed by every filter.
        unsigned int flags = notify_fd >= 0 ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
        long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
        if (listener < 0) {
            rec[0] = LANE_STAGE_SECCOMP; rec[1] = errno;
            (void)write(err_fd, rec, sizeof rec);
            return -rec[1];
        }
        if (notify_fd >= 0) {
            int fd = (int)listener;
            if (lane_send_fds(notify_fd, &fd, 1) != 0) {
                rec[0] = LANE_STAGE_SECCOMP_LISTENER; rec[1] = errno;
                (void)write(err_fd, rec, sizeof rec);
                return -rec[1];
            }
            close(fd);
            close(notify_fd);
        }
    }
    execve(path, argv, envp);
    rec[0] = LANE_STAGE_EXEC; rec[1] = errno;
    (void)write(err_fd, rec, sizeof rec);
    return -rec[1];
}

int lane_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4,
               unsigned long a5) {
    return prctl(option, a2, a3, a4, a5);
}

int lane_unshare(int flags) { return unshare(flags); }

int lane_close_range(unsigned int first, unsigned int last, unsigned int flags) {
    return (int)syscall(SYS_close_range, first, last, flags);
}

int lane_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int lane_memfd_create(const char *name, unsigned int flags) {
    return (int)syscall(SYS_memfd_create, name, flags);
}

int lane_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int lane_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int lane_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct lane_open_how how = {flags, mode, resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int lane_signalfd_for(const int *signals, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return (int)syscall(SYS_signalfd4, -1, &set, sizeof(long), O_CLOEXEC | O_NONBLOCK);
}

int lane_sigmask_all(int how) {
    sigset_t all;
    sigfillset(&all);
    return sigprocmask(how == 0 ? SIG_BLOCK : SIG_UNBLOCK, &all, NULL);
}

void lane_reset_signals(void) { child_reset_signals(); }

int lane_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    int r = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (r == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        r = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int saved = errno;
    close(s);
    errno = saved;
    return r;
}

int lane_ioctl(int fd, unsigned long request, unsigned long arg) {
    return ioctl(fd, request, arg);
}

int lane_wifexited(int status) { return WIFEXITED(status); }
int lane_wexitstatus(int status) { return WEXITSTATUS(status); }
int lane_wifsignaled(int status) { return WIFSIGNALED(status); }
int lane_wtermsig(int status) { return WTERMSIG(status); }

long lane_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
    return syscall(nr, a1, a2, a3, a4, a5, a6);
}

int lane_setgroups_empty(void) { return (int)syscall(SYS_setgroups, 0, NULL); }
