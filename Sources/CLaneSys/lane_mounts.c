// Mount trees, fd passing and the seccomp listener: the C behind binds, the workspace trees
// `lanes` hands to PID 1, and the refusals PID 1 records (see lane_sys.h for each entry's reason
// to be C).
#define _GNU_SOURCE
#include "lane_sys.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

struct lane_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
struct lane_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};
#define LANE_MOUNT_ATTR_RDONLY 0x00000001
#define LANE_MOUNT_ATTR_NOSUID 0x00000002
#define LANE_MOUNT_ATTR_NODEV 0x00000004
#define LANE_MOUNT_ATTR_IDMAP 0x00100000
#define LANE_RESOLVE_NO_SYMLINKS 0x04

int lane_open_tree(const char *source, int read_only, int userns_fd, int *stage) {
    struct lane_open_how how = {O_PATH | O_CLOEXEC, 0, LANE_RESOLVE_NO_SYMLINKS};
    *stage = LANE_STAGE_BIND_OPEN;
    int src = (int)syscall(SYS_openat2, AT_FDCWD, source, &how, sizeof how);
    if (src < 0) return -1;
    *stage = LANE_STAGE_BIND_OPEN_TREE;
    int tree = (int)syscall(SYS_open_tree, src, "", OPEN_TREE_CLONE | AT_RECURSIVE | AT_EMPTY_PATH | O_CLOEXEC);
    int saved = errno;
    close(src);
    if (tree < 0) { errno = saved; return -1; }
    struct lane_mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = LANE_MOUNT_ATTR_NOSUID | LANE_MOUNT_ATTR_NODEV | (read_only ? LANE_MOUNT_ATTR_RDONLY : 0);
    if (!read_only) attr.attr_clr = LANE_MOUNT_ATTR_RDONLY;
    *stage = LANE_STAGE_BIND_SETATTR;
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0) {
        saved = errno; close(tree); errno = saved; return -1;
    }
    if (userns_fd >= 0) {
        // The id map is set alone: the kernel refuses MOUNT_ATTR_IDMAP together with a change
        // of other attributes on some versions, and it must be set before the tree is attached.
        memset(&attr, 0, sizeof attr);
        attr.attr_set = LANE_MOUNT_ATTR_IDMAP;
        attr.userns_fd = (uint64_t)userns_fd;
        *stage = LANE_STAGE_BIND_IDMAP;
        if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0) {
            saved = errno; close(tree); errno = saved; return -1;
        }
    }
    return tree;
}

int lane_attach_tree(int tree, const char *target) {
    return (int)syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
}

int lane_bind(const char *source, const char *target, int read_only, int *stage) {
    int tree = lane_open_tree(source, read_only, -1, stage);
    if (tree < 0) return -1;
    *stage = LANE_STAGE_BIND_MOVE;
    if (lane_attach_tree(tree, target) != 0) {
        int saved = errno; close(tree); errno = saved; return -1;
    }
    close(tree);
    return 0;
}

int lane_send_fds(int sock, const int *fds, int count) {
    if (count <= 0 || count > LANE_MAX_PASSED_FDS) { errno = EINVAL; return -1; }
    char byte = (char)count;
    struct iovec iov = {&byte, 1};
    union { char buf[CMSG_SPACE(sizeof(int) * LANE_MAX_PASSED_FDS)]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)count);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)count);
    long n;
    do { n = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -1;
}

int lane_recv_fds(int sock, int *fds, int max) {
    char byte = 0;
    struct iovec iov = {&byte, 1};
    union { char buf[CMSG_SPACE(sizeof(int) * LANE_MAX_PASSED_FDS)]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = u.buf;
    msg.msg_controllen = sizeof u.buf;
    long n;
    do { n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n == 0) return 0;  // the sender closed its end
    if (n != 1) { if (n >= 0) errno = EPROTO; return -1; }
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) { errno = EPROTO; return -1; }
    int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    if (count > max || count != byte) { errno = EPROTO; return -1; }
    memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)count);
    return count;
}

int lane_signalfd_all(void) {
    sigset_t all;
    sigfillset(&all);
    return (int)syscall(SYS_signalfd4, -1, &all, sizeof(long), O_CLOEXEC | O_NONBLOCK);
}

// The mode argument of every call that can set a mode, by syscall number (x86_64 and aarch64
// names that exist). -1: the call sets no mode.
static int mode_argument(long nr) {
    switch (nr) {
#ifdef SYS_chmod
    case SYS_chmod: return 1;
#endif
    case SYS_fchmod: return 1;
    case SYS_fchmodat: return 2;
#ifdef SYS_fchmodat2
    case SYS_fchmodat2: return 2;
#else
    case 452: return 2;
#endif
#ifdef SYS_open
    case SYS_open: return 2;
#endif
    case SYS_openat: return 3;
#ifdef SYS_creat
    case SYS_creat: return 1;
#endif
#ifdef SYS_mkdir
    case SYS_mkdir: return 1;
#endif
    case SYS_mkdirat: return 2;
#ifdef SYS_mknod
    case SYS_mknod: return 1;
#endif
    case SYS_mknodat: return 2;
    default: return -1;
    }
}

int lane_notif_answer(int listener, struct lane_denial_event *event) {
    struct seccomp_notif req;
    memset(&req, 0, sizeof req);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) return -1;
    event->nr = req.data.nr;
    event->pid = (int)req.pid;
    int arg = mode_argument(req.data.nr);
    event->setid_bits = (arg >= 0 && (req.data.args[arg] & 06000) != 0) ? 1 : 0;
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    // The refused ioctls (TIOCSTI, TIOCLINUX) keep their documented EACCES; everything else
    // the policy refuses gets EPERM, as the plain errno action gave.
    resp.error = req.data.nr == SYS_ioctl ? -EACCES : -EPERM;
    // ENOENT: the process died (or was killed) before the answer; nothing to do.
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0 && errno != ENOENT) return -1;
    return 0;
}
