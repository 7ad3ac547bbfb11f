// lane_spawn: clone3 into new namespaces and exec lane-init. Why C: the child runs between clone
// and exec of a multithreaded process, where only raw syscalls are safe (swift-subprocess #374).
#define _GNU_SOURCE
#include "lane_sys.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// On x86_64 the child shares the parent's address space (CLONE_VM, like posix_spawn's vfork):
// no copy of the supervisor's page tables at the clone, no copy-on-write fault for every page a
// supervisor thread writes while the child lives, nothing to tear down at its exec. In a warm
// `lanes mcp` those were ~15 % of the machine's time (perf, docs/benchmarks.md). The child then
// runs on a stack of its own and must not write anything the parent owns, errno included (it
// shares the TLS of the thread that cloned): its syscalls go through child_sys, which returns
// -errno. Elsewhere the child is an ordinary fork (a copy), and child_sys wraps syscall(2).
#if defined(__x86_64__)
#define LANE_SHARED_VM 1
static inline long child_sys(long n, long a1, long a2, long a3, long a4, long a5, long a6) {
    long ret;
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

// clone3 whose child starts on the new stack (clone_args.stack) and calls fn(arg), then
// exit_group(125) should fn return. C cannot express "continue on another stack" (the child
// returns from the syscall with the parent's frames gone), hence assembly: fn and arg ride in
// r12/r13, which the child inherits; the parent restores them. The child's stack top is
// 16-byte aligned, so the call leaves it as the ABI expects at a function's entry.
long lane_clone3_shared_vm(struct clone_args *ca, size_t size, void (*fn)(void *), void *arg);
__asm__(".text\n"
        ".p2align 4\n"
        ".local lane_clone3_shared_vm\n"
        ".type lane_clone3_shared_vm,@function\n"
        "lane_clone3_shared_vm:\n"
        "  push %r12\n"
        "  push %r13\n"
        "  mov %rdx, %r12\n"
        "  mov %rcx, %r13\n"
        "  mov $435, %eax\n"  // SYS_clone3; rdi = ca, rsi = size
        "  syscall\n"
        "  test %rax, %rax\n"
        "  jnz 1f\n"
        "  xor %ebp, %ebp\n"
        "  mov %r13, %rdi\n"
        "  call *%r12\n"
        "  mov $125, %edi\n"
        "  mov $231, %eax\n"  // SYS_exit_group
        "  syscall\n"
        "  hlt\n"
        "1:\n"
        "  pop %r13\n"
        "  pop %r12\n"
        "  ret\n"
        ".size lane_clone3_shared_vm, .-lane_clone3_shared_vm\n");
#else
#define LANE_SHARED_VM 0
static inline long child_sys(long n, long a1, long a2, long a3, long a4, long a5, long a6) {
    long r = syscall(n, a1, a2, a3, a4, a5, a6);
    return r < 0 ? -errno : r;
}
#endif

#define CSYS1(n, a) child_sys((n), (long)(a), 0, 0, 0, 0, 0)
#define CSYS2(n, a, b) child_sys((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define CSYS3(n, a, b, c) child_sys((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define CSYS4(n, a, b, c, d) child_sys((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define CSYS5(n, a, b, c, d, e) child_sys((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

// Reports {stage, errno} to the parent and exits.
static void child_fail(int err_fd, int stage, long err) {
    int rec[2] = {stage, (int)err};
    (void)CSYS3(SYS_write, err_fd, rec, sizeof rec);
    CSYS1(SYS_exit_group, 125);
}

// rt_sigaction's own struct (glibc's sigaction wrapper refuses its internal signals and sets errno).
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

static void child_reset_signals(void) {
    struct kernel_sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.handler = SIG_DFL;
    for (int sig = 1; sig < 65; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        (void)CSYS4(SYS_rt_sigaction, sig, &sa, 0, sizeof sa.mask);
    }
}

// The clone child. Ordering matters:
// 1. PDEATHSIG first, so the child dies with `lanes` from here on; then (cgroup v1) join the
//    step's groups, so nothing runs outside them;
// 2. wait for the parent to write uid_map/gid_map (EOF means the parent died: exit);
// 3. drop supplementary groups (needs the gid map and setgroups=allow);
// 4. move the fd map into place; everything else becomes CLOEXEC, including err_fd, so a
//    successful exec closes the error pipe and the parent reads EOF;
// 5. unblock signals last, right before exec.
static void child_main(void *arg) {
    const struct lane_spawn_args *a = arg;
    // Our copy of the parent's write end would keep the sync pipe open forever: close it, so a
    // parent that dies before the byte is sent (even before PDEATHSIG is armed) reads as EOF.
    (void)CSYS1(SYS_close, a->sync_write_fd);
    child_reset_signals();
    long r = CSYS5(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (r != 0) child_fail(a->err_fd, LANE_STAGE_PDEATHSIG, -r);
    // cgroup v1: join the step's groups before anything runs. "0" written to `tasks` moves the
    // writing thread only, which the kernel does without the global threadgroup lock that moving
    // a process by pid takes (an RCU grace period, often 10 ms or more here; docs/cgroups.md);
    // this child is single-threaded, so the thread is the whole process. The files were opened
    // by the parent, whose credentials the kernel checks.
    for (int i = 0; i < a->join_count; i++) {
        r = CSYS3(SYS_write, a->join_fds[i], "0", 1);
        if (r != 1) child_fail(a->err_fd, LANE_STAGE_CGROUP_ATTACH, r < 0 ? -r : EIO);
    }
    char byte;
    do {
        r = CSYS3(SYS_read, a->sync_fd, &byte, 1);
    } while (r == -EINTR);
    if (r != 1) child_fail(a->err_fd, LANE_STAGE_SYNC, r < 0 ? -r : EPIPE);
    if (a->drop_groups && (r = CSYS2(SYS_setgroups, 0, 0)) != 0) child_fail(a->err_fd, LANE_STAGE_SETGROUPS, -r);
    // Root maps the namespace's uid 0 to an unprivileged host identity, not to itself: the
    // child still carries the parent's host ids, which that map leaves unmapped. Taking uid and
    // gid 0 of the namespace (capabilities there allow it) makes it that identity on the host,
    // and execve then keeps root's capabilities inside the namespace only.
    if (a->drop_groups) {
        if ((r = CSYS3(SYS_setresgid, 0, 0, 0)) != 0 || (r = CSYS3(SYS_setresuid, 0, 0, 0)) != 0)
            child_fail(a->err_fd, LANE_STAGE_SETIDS, -r);
        // A change of effective ids clears the parent-death signal: arm it again, then make
        // sure the parent did not die in between. The parent holds its end of the sync pipe
        // open until this child has exec'd, so a hang-up there means it is gone.
        if ((r = CSYS5(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)) != 0)
            child_fail(a->err_fd, LANE_STAGE_PDEATHSIG, -r);
        struct pollfd p = {a->sync_fd, POLLIN, 0};
        struct timespec now = {0, 0};
        if (CSYS5(SYS_ppoll, &p, 1, &now, 0, 0) != 0 && (p.revents & (POLLHUP | POLLERR)))
            CSYS1(SYS_exit_group, 125);
    }

    // Lift the sources (and err_fd) out of the way first, to the lowest free numbers at or
    // above fd_count: installing fd i < fd_count then cannot clobber a lifted copy. No fixed
    // high numbers: F_DUPFD fails with EINVAL at or above the soft RLIMIT_NOFILE, and a PAM
    // session or systemd service commonly has 1024 (issue 11); any limit >= 64 works here.
    int high[16];
    if (a->fd_count > 16) child_fail(a->err_fd, LANE_STAGE_FDS, EINVAL);
    // err_fd must survive until exec: move it above the map and keep it CLOEXEC.
    r = CSYS3(SYS_fcntl, a->err_fd, F_DUPFD_CLOEXEC, a->fd_count);
    if (r < 0) child_fail(a->err_fd, LANE_STAGE_FDS, -r);
    int err_fd = (int)r;
    for (int i = 0; i < a->fd_count; i++) {
        r = CSYS3(SYS_fcntl, a->fds[i], F_DUPFD_CLOEXEC, a->fd_count);
        if (r < 0) child_fail(err_fd, LANE_STAGE_FDS, -r);
        high[i] = (int)r;
    }
    for (int i = 0; i < a->fd_count; i++) {
        if ((r = CSYS3(SYS_dup3, high[i], i, 0)) < 0) child_fail(err_fd, LANE_STAGE_FDS, -r);
    }
    if ((r = CSYS3(SYS_close_range, a->fd_count, ~0U, CLOSE_RANGE_CLOEXEC)) != 0) child_fail(err_fd, LANE_STAGE_FDS, -r);

    // Start beside the caller, not behind it: a new child is often queued on its parent's CPU,
    // and then the helper's whole start time-shares one CPU with the caller while another is
    // idle (measured: 2.05 ms from exec to its first system call instead of 0.70). Best effort:
    // with no other CPU allowed, or on any error, the mask stays as it is.
    if (a->avoid_caller_cpu && a->caller_cpu >= 0 && a->caller_cpu < 1024) {
        unsigned long mask[16];
        long n = CSYS3(SYS_sched_getaffinity, 0, sizeof mask, mask);
        if (n > 0 && (size_t)a->caller_cpu / 8 < (size_t)n) {
            mask[a->caller_cpu / 64] &= ~(1UL << (a->caller_cpu % 64));
            int others = 0;
            for (long i = 0; i < n / (long)sizeof mask[0]; i++) others |= mask[i] != 0;
            if (others) (void)CSYS3(SYS_sched_setaffinity, 0, n, mask);
        }
    }
    uint64_t none = 0;
    (void)CSYS4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, sizeof none);
    r = CSYS3(SYS_execve, a->path, a->argv, a->envp);
    child_fail(err_fd, LANE_STAGE_EXEC_INIT, -r);
}

#if LANE_SHARED_VM
// The child's stack and its own copy of everything it reads (the arguments, fds, path, argv
// and envp), in one mapping: the caller's memory may change or go once lane_spawn returns,
// while the child still reads until execve. A guard page below the stack.
enum { GUARD = 4096, STACK = 64 * 1024 };

static size_t strings_size(char *const *v, size_t *count) {
    size_t n = 0, bytes = 0;
    for (; v[n]; n++) bytes += strlen(v[n]) + 1;
    *count = n;
    return bytes;
}

static char **copy_strings(char *const *v, size_t count, char ***slots, char **bytes) {
    char **out = *slots;
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(v[i]) + 1;
        memcpy(*bytes, v[i], len);
        out[i] = *bytes;
        *bytes += len;
    }
    out[count] = NULL;
    *slots += count + 1;
    return out;
}

static struct lane_spawn_args *make_block(const struct lane_spawn_args *a, void **mem, size_t *size) {
    size_t argc, envc;
    size_t text = strings_size(a->argv, &argc) + strings_size(a->envp, &envc) + strlen(a->path) + 1;
    size_t fdc = (size_t)(a->fd_count > 0 ? a->fd_count : 0), joins = (size_t)(a->join_count > 0 ? a->join_count : 0);
    size_t header = sizeof(struct lane_spawn_args) + sizeof(int) * (fdc + joins) + sizeof(char *) * (argc + envc + 2);
    header = (header + 15) & ~(size_t)15;
    *size = GUARD + STACK + header + 8 + text;
    *size = (*size + 4095) & ~(size_t)4095;
    char *m = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) return NULL;
    (void)mprotect(m, GUARD, PROT_NONE);
    *mem = m;
    struct lane_spawn_args *copy = (struct lane_spawn_args *)(m + GUARD + STACK);
    *copy = *a;
    int *fds = (int *)(copy + 1);
    for (size_t i = 0; i < fdc; i++) fds[i] = a->fds[i];
    copy->fds = fds;
    int *join_fds = fds + fdc;
    for (size_t i = 0; i < joins; i++) join_fds[i] = a->join_fds[i];
    copy->join_fds = join_fds;
    // Pointer slots after the ints: align them.
    char **slots = (char **)(((uintptr_t)(join_fds + joins) + 7) & ~(uintptr_t)7);
    char *bytes = (char *)(slots + argc + envc + 2);
    copy->argv = copy_strings(a->argv, argc, &slots, &bytes);
    copy->envp = copy_strings(a->envp, envc, &slots, &bytes);
    memcpy(bytes, a->path, strlen(a->path) + 1);
    copy->path = bytes;
    return copy;
}
#endif

int lane_spawn(const struct lane_spawn_args *a, pid_t *pid, int *pidfd, struct lane_spawn_memory *memory) {
    memory->base = NULL;
    memory->size = 0;
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
    int caller_cpu = a->avoid_caller_cpu ? sched_getcpu() : -1;
#if LANE_SHARED_VM
    struct lane_spawn_args *copy = make_block(a, &memory->base, &memory->size);
    if (!copy) return -ENOMEM;
    copy->caller_cpu = caller_cpu;
    ca.flags |= CLONE_VM;
    ca.stack = (uint64_t)(uintptr_t)((char *)memory->base + GUARD);
    ca.stack_size = STACK;
#endif
    // Block every signal so no handler of the parent runs in the child before it resets them.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
#if LANE_SHARED_VM
    long r = lane_clone3_shared_vm(&ca, sizeof ca, child_main, copy);
    int saved = r < 0 ? (int)-r : 0;
#else
    // The child gets a copy of this frame (no shared memory): `local` is its own.
    struct lane_spawn_args local = *a;
    local.caller_cpu = caller_cpu;
    long r = syscall(SYS_clone3, &ca, sizeof ca);
    if (r == 0) {
        child_main((void *)&local);  // does not return
        syscall(SYS_exit_group, 125);
    }
    int saved = r < 0 ? errno : 0;
#endif
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0) {
        lane_spawn_release(memory);
        return -saved;
    }
    *pid = (pid_t)r;
    *pidfd = fd;
    return 0;
}

void lane_spawn_release(struct lane_spawn_memory *memory) {
    if (memory->base) (void)munmap(memory->base, memory->size);
    memory->base = NULL;
    memory->size = 0;
}
