// syscalls: tries forbidden things one by one and reports how each ended.
//
// Usage: syscalls [--in-userns] ACTION[=ARG] ...
// For every action it prints one line "ACTION ok" or "ACTION errno N" and goes on; the exit
// status is 0 unless the arguments were wrong (2). --in-userns first enters a new user and
// mount namespace as root there: the host control for actions that need privilege (mount,
// pivot_root, chroot) without touching the host's own mounts.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <termios.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

/// 0 on success, else the errno.
static int result(long rc) { return rc < 0 ? errno : 0; }

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/// Becomes root of a new user namespace with a private mount namespace (host controls only).
static void enter_userns(void) {
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) { perror("unshare"); exit(3); }
    char map[64];
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1", uid);
    if (write_file("/proc/self/uid_map", map) != 0) { perror("uid_map"); exit(3); }
    snprintf(map, sizeof map, "0 %u 1", gid);
    if (write_file("/proc/self/gid_map", map) != 0) { perror("gid_map"); exit(3); }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) { perror("private"); exit(3); }
}

/// A pseudo-terminal pair; the slave becomes the controlling tty of a new session.
static int open_pty(int *slave) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0) return -1;
    if (grantpt(master) != 0 || unlockpt(master) != 0) return -1;
    setsid();
    *slave = open(ptsname(master), O_RDWR);
    if (*slave < 0) return -1;
    (void)ioctl(*slave, TIOCSCTTY, 0);
    return master;
}

static unsigned long tty_request;

/// In a child (it becomes a session leader with the pty as its controlling terminal).
static int tty_ioctl_child(void) {
    unsigned long request = tty_request;
    signal(SIGHUP, SIG_IGN);  // closing the controlling terminal hangs the session up
    int slave = -1;
    int master = open_pty(&slave);
    if (master < 0) return errno;
    char c = '\n';
    char linux_arg[2] = {12, 0};  // TIOCLINUX subcode 12: which console is shown
    void *arg = (request & 0xffffffffUL) == TIOCSTI ? (void *)&c : (void *)linux_arg;
    int r = result(syscall(SYS_ioctl, slave, request, arg));
    close(slave);
    close(master);
    return r;
}

/// A child that waits to be inspected; returns its pid.
static volatile uint64_t secret = 0x5ec2e7;
static pid_t sleeper(void) {
    pid_t pid = fork();
    if (pid == 0) { pause(); _exit(0); }
    return pid;
}

static void end(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int try_ptrace(void) {
    pid_t pid = sleeper();
    int r = result(ptrace(PTRACE_ATTACH, pid, 0, 0));
    end(pid);
    return r;
}

static int try_vm_readv(void) {
    pid_t pid = sleeper();
    uint64_t copy = 0;
    struct iovec local = {&copy, sizeof copy}, remote = {(void *)&secret, sizeof secret};
    int r = result(syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0));
    end(pid);
    if (r == 0 && copy != secret) r = EIO;
    return r;
}

/// Runs fn in a forked child so namespace changes do not stick; returns its result.
static int in_child(int (*fn)(void)) {
    int pipefd[2];
    if (pipe(pipefd) != 0) return errno;
    pid_t pid = fork();
    if (pid == 0) {
        int r = fn();
        (void)!write(pipefd[1], &r, sizeof r);
        _exit(0);
    }
    close(pipefd[1]);
    int r = EIO;
    if (read(pipefd[0], &r, sizeof r) != sizeof r) r = EIO;
    close(pipefd[0]);
    waitpid(pid, NULL, 0);
    return r;
}

static int tty_ioctl(unsigned long request) {
    tty_request = request;
    return in_child(tty_ioctl_child);
}

static int do_unshare(void) { return result(unshare(CLONE_NEWUSER)); }
static int do_clone(void) {
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    return result(pid);
}
static int do_clone3(void) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_NEWUSER;
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    return result(pid);
}

static int scratch_dir(char *out, size_t size, const char *name) {
    snprintf(out, size, "/tmp/lanes-probe-%d-%s", getpid(), name);
    mkdir(out, 0755);
    return 0;
}

static int do_mount(void) {
    char dir[128];
    scratch_dir(dir, sizeof dir, "mnt");
    int r = result(mount("tmpfs", dir, "tmpfs", 0, "size=64k"));
    if (r == 0) umount2(dir, MNT_DETACH);
    rmdir(dir);
    return r;
}

static int do_umount(void) {
    // Unmount a tmpfs of our own when mounting works, else /tmp (a mount point in the sandbox).
    char dir[128];
    scratch_dir(dir, sizeof dir, "umnt");
    const char *target = mount("tmpfs", dir, "tmpfs", 0, "size=64k") == 0 ? dir : "/tmp";
    int r = result(umount2(target, MNT_DETACH));
    rmdir(dir);
    return r;
}

static int do_pivot_root(void) {
    char dir[128], old[160];
    scratch_dir(dir, sizeof dir, "pivot");
    // pivot_root needs the new root to be a mount point; make it one when allowed.
    (void)mount(dir, dir, NULL, MS_BIND, NULL);
    snprintf(old, sizeof old, "%s/old", dir);
    mkdir(old, 0755);
    return result(syscall(SYS_pivot_root, dir, old));  // in a child: the change dies with it
}

static int do_chroot(void) { return result(chroot("/")); }

static int do_fsopen(void) {
    long fd = syscall(SYS_fsopen, "tmpfs", 0);
    if (fd >= 0) close((int)fd);
    return result(fd);
}

static int do_open_tree(void) {
    long fd = syscall(SYS_open_tree, AT_FDCWD, ".", 1 /* OPEN_TREE_CLONE */ | O_CLOEXEC);
    if (fd >= 0) close((int)fd);
    return result(fd);
}

static int do_io_uring(void) {
    unsigned char params[120];
    memset(params, 0, sizeof params);
    long fd = syscall(SYS_io_uring_setup, 4, params);
    if (fd >= 0) close((int)fd);
    return result(fd);
}

static int do_userfaultfd(void) {
    long fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    if (fd >= 0) close((int)fd);
    return result(fd);
}

static int do_bpf(void) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
    if (fd >= 0) close((int)fd);
    return result(fd);
}

static int do_perf(void) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    if (fd >= 0) close((int)fd);
    return result(fd);
}

static int do_keyctl(void) {
    long id = syscall(SYS_add_key, "user", "lanes-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
    if (id < 0) return errno;
    return result(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
}

/// open_by_handle_at on a handle of the current directory (name_to_handle_at when it is
/// allowed; otherwise a hand-made ext4-style handle, as in the "shocker" exploit).
static int do_open_by_handle(void) {
    struct { unsigned int bytes; int type; unsigned char data[128]; } h;
    memset(&h, 0, sizeof h);
    h.bytes = 128;
    int mount_id = 0;
    if (syscall(SYS_name_to_handle_at, AT_FDCWD, ".", &h, &mount_id, 0) != 0) {
        struct stat st;
        stat(".", &st);
        h.bytes = 8;
        h.type = 1;  // FILEID_INO32_GEN
        uint32_t ino = (uint32_t)st.st_ino;
        memcpy(h.data, &ino, 4);
    }
    int mount_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    long fd = syscall(SYS_open_by_handle_at, mount_fd, &h, O_RDONLY | O_CLOEXEC);
    int r = result(fd);
    if (fd >= 0) close((int)fd);
    close(mount_fd);
    return r;
}

static int do_socket(int family, int type, int protocol) {
    int fd = socket(family, type | SOCK_CLOEXEC, protocol);
    if (fd >= 0) close(fd);
    return result(fd);
}

static int do_tcp(const char *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = result(connect(fd, (struct sockaddr *)&sa, sizeof sa));
    close(fd);
    return r;
}

static int do_abstract(const char *name) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    if (len > sizeof sa.sun_path - 1) len = sizeof sa.sun_path - 1;
    memcpy(sa.sun_path + 1, name, len);  // sun_path[0] = 0: the abstract namespace
    int r = result(connect(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len)));
    close(fd);
    return r;
}

static int do_mknod(const char *path) {
    int r = result(mknod(path, S_IFCHR | 0600, makedev(1, 3)));
    if (r == 0) unlink(path);
    return r;
}

/// Does an aborting child dump core? Raises the soft core limit as far as the hard limit allows
/// (a process may always do that), then aborts a child: 0 means a core was dumped.
static int do_core_dump(void) {
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl;
        getrlimit(RLIMIT_CORE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_CORE, &rl);
        chdir("/tmp");
        abort();
    }
    int status = 0;
    waitpid(pid, &status, 0);
    char core[64];
    snprintf(core, sizeof core, "/tmp/core.%d", pid);
    unlink(core);
    unlink("/tmp/core");
    return WIFSIGNALED(status) && WCOREDUMP(status) ? 0 : EPERM;
}

/// Raising the hard core limit back from 0.
static int do_core_limit(void) {
    struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
    return result(setrlimit(RLIMIT_CORE, &rl));
}

static int target_pid(const char *arg) { return arg ? atoi(arg) : 0; }

static int ptrace_pid(pid_t pid) {
    int r = result(ptrace(PTRACE_ATTACH, pid, 0, 0));
    if (r == 0) ptrace(PTRACE_DETACH, pid, 0, 0);
    return r;
}

static int vm_readv_pid(pid_t pid) {
    char buf[16];
    struct iovec local = {buf, sizeof buf}, remote = {(void *)0x400000, sizeof buf};
    long n = syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0);
    // EFAULT means the kernel let us in and only the address was wrong.
    return n < 0 && errno != EFAULT ? errno : 0;
}

static int run(const char *action, const char *arg) {
    if (!strcmp(action, "tiocsti")) return tty_ioctl(TIOCSTI);
    if (!strcmp(action, "tiocsti_high")) return tty_ioctl(0xdead000000000000UL | TIOCSTI);
    if (!strcmp(action, "tioclinux")) return tty_ioctl(TIOCLINUX);
    if (!strcmp(action, "tioclinux_high")) return tty_ioctl(0xdead000000000000UL | TIOCLINUX);
    if (!strcmp(action, "unshare_user")) return in_child(do_unshare);
    if (!strcmp(action, "clone_user")) return in_child(do_clone);
    if (!strcmp(action, "clone3_user")) return in_child(do_clone3);
    if (!strcmp(action, "ptrace_child")) return try_ptrace();
    if (!strcmp(action, "vm_readv_child")) return try_vm_readv();
    if (!strcmp(action, "ptrace")) return ptrace_pid(target_pid(arg));
    if (!strcmp(action, "vm_readv")) return vm_readv_pid(target_pid(arg));
    if (!strcmp(action, "mount")) return in_child(do_mount);
    if (!strcmp(action, "umount")) return in_child(do_umount);
    if (!strcmp(action, "pivot_root")) return in_child(do_pivot_root);
    if (!strcmp(action, "chroot")) return in_child(do_chroot);
    if (!strcmp(action, "fsopen")) return do_fsopen();
    if (!strcmp(action, "open_tree")) return do_open_tree();
    if (!strcmp(action, "io_uring_setup")) return do_io_uring();
    if (!strcmp(action, "userfaultfd")) return do_userfaultfd();
    if (!strcmp(action, "bpf")) return do_bpf();
    if (!strcmp(action, "perf_event_open")) return do_perf();
    if (!strcmp(action, "keyctl")) return in_child(do_keyctl);
    if (!strcmp(action, "open_by_handle_at")) return do_open_by_handle();
    if (!strcmp(action, "af_alg")) return do_socket(AF_ALG, SOCK_SEQPACKET, 0);
    if (!strcmp(action, "af_vsock")) return do_socket(AF_VSOCK, SOCK_STREAM, 0);
    if (!strcmp(action, "af_packet")) return do_socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (!strcmp(action, "af_netlink")) return do_socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    if (!strcmp(action, "raw_inet")) return do_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (!strcmp(action, "tcp_connect")) return arg ? do_tcp(arg) : EINVAL;
    if (!strcmp(action, "abstract_connect")) return arg ? do_abstract(arg) : EINVAL;
    if (!strcmp(action, "mknod")) return arg ? do_mknod(arg) : EINVAL;
    if (!strcmp(action, "core_dump")) return do_core_dump();
    if (!strcmp(action, "core_limit")) return do_core_limit();
    fprintf(stderr, "syscalls: unknown action %s\n", action);
    exit(2);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int first = 1;
    if (argc > 1 && !strcmp(argv[1], "--in-userns")) {
        enter_userns();
        first = 2;
    }
    for (int i = first; i < argc; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s", argv[i]);
        char *arg = strchr(name, '=');
        if (arg) *arg++ = 0;
        int r = run(name, arg);
        if (r == 0) printf("%s ok\n", name);
        else printf("%s errno %d\n", name, r);
    }
    return 0;
}
