// The C that Lanes cannot write in Swift. Each entry point says why it is C.
//
// Two reasons recur:
// - Swift's Glibc module hides these declarations (prctl and ioctl are variadic; unshare,
//   pipe2, close_range, pidfd_*, memfd_create, pivot_root, openat2, clone3 have no wrapper),
//   and the W* status macros are macros.
// - Code that runs between clone and exec in the multithreaded supervisor, or after the seccomp
//   filter is installed, must be async-signal-safe and must not call into the Swift runtime.
#ifndef LANE_SYS_H
#define LANE_SYS_H

#include <stdint.h>
#include <sys/types.h>

#include "lane_stages.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Kernel constants Swift's Glibc module does not export.
#define LANE_CLONE_NEWNS 0x00020000
#define LANE_CLONE_NEWCGROUP 0x02000000
#define LANE_CLONE_NEWUTS 0x04000000
#define LANE_CLONE_NEWIPC 0x08000000
#define LANE_CLONE_NEWUSER 0x10000000
#define LANE_CLONE_NEWPID 0x20000000
#define LANE_CLONE_NEWNET 0x40000000
#define LANE_PR_SET_PDEATHSIG 1
#define LANE_PR_GET_DUMPABLE 3
#define LANE_PR_SET_DUMPABLE 4
#define LANE_PR_GET_SECCOMP 21
#define LANE_PR_SET_NO_NEW_PRIVS 38
#define LANE_PR_GET_NO_NEW_PRIVS 39
#define LANE_CLOSE_RANGE_CLOEXEC 4
#define LANE_MFD_CLOEXEC 1

/// What `lane_spawn` needs. All pointers must stay valid until it returns (it copies what the
/// child reads).
struct lane_spawn_args {
    const char *path;            // absolute path of the helper to exec
    char *const *argv;           // NULL-terminated
    char *const *envp;           // NULL-terminated (empty for lane-init)
    const int *fds;              // fds[i] becomes fd i in the child
    int fd_count;                // how many; every other fd is closed at exec
    int sync_fd;                 // child reads one byte from it before going on
    int sync_write_fd;           // the parent's end of that pipe: the child closes its copy
                                 // first, so the parent's death is EOF, never a hang
    int err_fd;                  // CLOEXEC pipe; child writes {int stage, int errno} on failure
                                 // (stage: LANE_STAGE_PDEATHSIG … LANE_STAGE_EXEC_INIT)
    uint64_t clone_flags;        // CLONE_NEW* flags (CLONE_PIDFD is added)
    int cgroup_fd;               // >= 0: CLONE_INTO_CGROUP this directory fd (cgroup v2)
    int drop_groups;             // non-zero (root): setgroups(0, NULL), then setresgid/setresuid
                                 // to the namespace's 0 (the mapped identity) after the sync byte
    const int *join_fds;         // cgroup v1: the step group's `tasks` files, opened for writing;
    int join_count;              // the child writes "0" to each (moves itself) before the sync
                                 // byte (stage LANE_STAGE_CGROUP_ATTACH on failure)
    int avoid_caller_cpu;        // non-zero: the child leaves the CPU the caller runs on at the
                                 // clone out of its affinity before it execs (when another CPU
                                 // is allowed), so the helper starts beside the caller, not
                                 // behind it on one CPU; the helper restores it (toolAffinity)
    int caller_cpu;              // set by lane_spawn (sched_getcpu), read by the child
};

/// Memory the child of `lane_spawn` runs on (x86_64: its stack and its copy of the arguments in
/// the shared address space). Release it with `lane_spawn_release` only once the child has
/// exec'd or died: the error pipe read EOF or a failure record and the child was reaped.
struct lane_spawn_memory {
    void *base;
    size_t size;
};

/// Starts the helper in new namespaces with clone3 (lane_spawn.c). Why C: the child runs
/// between clone and exec of a multithreaded process; only raw syscalls are safe there
/// (swift-subprocess #374). On x86_64 the child shares the address space (CLONE_VM).
/// All signals are blocked around clone3 in the parent and reset/unblocked in the child.
/// Returns 0 and sets *pid, *pidfd and *memory, or returns -errno (memory then released).
int lane_spawn(const struct lane_spawn_args *args, pid_t *pid, int *pidfd, struct lane_spawn_memory *memory);
/// Unmaps what `lane_spawn` mapped for its child (idempotent).
void lane_spawn_release(struct lane_spawn_memory *memory);

/// Installs no_new_privs and the seccomp filter, then execs. Why C: after the filter is loaded
/// only the syscalls it allows may run, so nothing (no allocator, no runtime) may run between the
/// filter and execve. On failure writes {stage, errno} to err_fd and returns -errno.
/// Stages: LANE_STAGE_NO_NEW_PRIVS, LANE_STAGE_SECCOMP, LANE_STAGE_EXEC. filter_len is in bytes (8 per insn).
/// With notify_fd >= 0 the filter is installed with a listener (SECCOMP_RET_USER_NOTIF goes to
/// it), which is sent over the unix socket notify_fd to PID 1 before execve
/// (LANE_STAGE_SECCOMP_LISTENER on failure).
int lane_seal_and_exec(const void *filter, size_t filter_len, const char *path,
                       char *const *argv, char *const *envp, int err_fd, int notify_fd);

/// prctl is variadic, so Swift cannot call it. Returns the raw result (-1 + errno).
int lane_prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4,
               unsigned long a5);
/// Hidden by Swift's Glibc module: unshare(2).
int lane_unshare(int flags);
/// Hidden: close_range(2).
int lane_close_range(unsigned int first, unsigned int last, unsigned int flags);
/// Hidden: pidfd_send_signal(2).
int lane_pidfd_send_signal(int pidfd, int sig);
/// Hidden: memfd_create(2).
int lane_memfd_create(const char *name, unsigned int flags);
/// Hidden: pivot_root(2).
int lane_pivot_root(const char *new_root, const char *put_old);
/// Hidden: pipe2(2).
int lane_pipe2(int fds[2], int flags);
/// Hidden: openat2(2) with only `resolve` flags; used to open bind sources without following
/// any symlink (RESOLVE_NO_SYMLINKS), so a swapped link cannot redirect a mount.
int lane_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
/// This thread's CPU affinity mask as bytes (sched_getaffinity(2)): the byte count, or -1 with
/// errno. Why C: sched_getaffinity is not in Swift's Glibc module, and glibc's wrapper hides
/// the mask's size (the raw call returns it).
int lane_affinity_get(unsigned char *mask, int size);
/// Sets this thread's CPU affinity mask from bytes (sched_setaffinity(2)): 0, or -1 with errno.
int lane_affinity_set(const unsigned char *mask, int size);
/// Hidden: signalfd(2) for a set built from an array of signal numbers; blocks them first.
int lane_signalfd_for(const int *signals, int count);
/// Blocks (how = 0) or unblocks (how = 1) every signal in the calling thread.
int lane_sigmask_all(int how);
/// Resets every catchable signal to its default disposition (for a freshly forked child).
void lane_reset_signals(void);
/// Brings the loopback interface up. Why C: ioctl is variadic and struct ifreq is a union.
int lane_loopback_up(void);
/// Runs ioctl(fd, request, arg) with an int/pointer argument. Why C: ioctl is variadic.
int lane_ioctl(int fd, unsigned long request, unsigned long arg);
/// The W* macros on a wait status.
int lane_wifexited(int status);
int lane_wexitstatus(int status);
int lane_wifsignaled(int status);
int lane_wtermsig(int status);
/// Raw syscall for probes (`lanes doctor`, tests). Why C: syscall(2) is variadic.
long lane_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
/// Binds host path `source` (opened with RESOLVE_NO_SYMLINKS, so no symlink in it is followed)
/// onto `target`, recursively, then sets nosuid, nodev and (if read_only) rdonly on the whole
/// cloned tree with mount_setattr(AT_RECURSIVE). Why C: open_tree, mount_setattr and move_mount
/// have no glibc 2.36 wrappers. Returns 0, or -1 with errno and *stage set to the stage that
/// failed (LANE_STAGE_BIND_OPEN, _OPEN_TREE, _SETATTR or _MOVE).
int lane_bind(const char *source, const char *target, int read_only, int *stage);
/// Opens host path `source` (RESOLVE_NO_SYMLINKS) as a detached recursive copy of its mount
/// tree with nosuid, nodev and rdonly (or read-write) set, and, with userns_fd >= 0, id-mapped
/// through that user namespace (MOUNT_ATTR_IDMAP). Why C: open_tree and mount_setattr have no
/// glibc wrapper. Returns the tree fd, or -1 with errno and *stage set (LANE_STAGE_BIND_OPEN,
/// _OPEN_TREE, _SETATTR or LANE_STAGE_BIND_IDMAP).
int lane_open_tree(const char *source, int read_only, int userns_fd, int *stage);
/// Attaches a tree from lane_open_tree at `target` (move_mount). Returns 0 or -1 with errno.
int lane_attach_tree(int tree, const char *target);
/// The most fds one lane_send_fds carries.
#define LANE_MAX_PASSED_FDS 32
/// Sends `count` fds over a unix socket (SCM_RIGHTS) with a one-byte count. Why C: cmsg macros.
int lane_send_fds(int sock, const int *fds, int count);
/// Receives fds sent by lane_send_fds (CLOEXEC); returns how many, 0 when the sender closed its
/// end, or -1 with errno.
int lane_recv_fds(int sock, int *fds, int max);
/// A non-blocking signalfd for every signal (the caller has blocked them all).
int lane_signalfd_all(void);
/// One system call the seccomp policy refused, as PID 1 saw it.
struct lane_denial_event {
    int nr;           // syscall number (native arch)
    int pid;          // the calling process, in the sandbox's pid namespace
    int setid_bits;   // non-zero: a mode-setting call refused for S_ISUID/S_ISGID
};
/// Receives one notification from a seccomp listener, answers it with an error (EPERM; EACCES
/// for ioctl) so the call fails as the errno action would, and describes it in *event. Why C:
/// struct seccomp_notif and the SECCOMP_IOCTL_NOTIF_* numbers come from kernel headers, and
/// ioctl is variadic. Returns 0, or -1 with errno (ENOENT: the caller died first, still 0).
int lane_notif_answer(int listener, struct lane_denial_event *event);
/// Drops supplementary groups with the raw syscall (affects only the calling thread, which is
/// what a single-threaded helper wants; glibc's wrapper would broadcast to all threads).
int lane_setgroups_empty(void);

#ifdef __cplusplus
}
#endif
#endif
