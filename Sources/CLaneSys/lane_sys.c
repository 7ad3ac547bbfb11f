#define _GNU_SOURCE
#include "lane_sys.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
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

struct lane_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

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

int lane_affinity_get(unsigned char *mask, int size) {
    // The raw call returns how many bytes the kernel's mask has (glibc's wrapper returns 0).
    return (int)syscall(SYS_sched_getaffinity, 0, (size_t)size, mask);
}

int lane_affinity_set(const unsigned char *mask, int size) {
    return (int)syscall(SYS_sched_setaffinity, 0, (size_t)size, mask);
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

void lane_reset_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < 65; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        // glibc's sigaction is a thin wrapper over rt_sigaction; it takes no lock (and leaves
        // its own internal signals alone).
        (void)sigaction(sig, &sa, NULL);
    }
}

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
