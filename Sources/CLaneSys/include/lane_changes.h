#ifndef LANE_CHANGES_H
#define LANE_CHANGES_H
// C for the change-set engine (LaneChanges, issue 14).

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// openat2(2) resolve flags. Why here: <linux/openat2.h> is not in Swift's Glibc module.
#define LANE_RESOLVE_NO_XDEV       0x01
#define LANE_RESOLVE_NO_MAGICLINKS 0x02
#define LANE_RESOLVE_NO_SYMLINKS   0x04
#define LANE_RESOLVE_BENEATH       0x08

/// fgetxattr(2) on an fd. Why C: <sys/xattr.h> is not in Swift's Glibc module. Used to read
/// overlayfs' `user.overlay.opaque` marker on upper directories (which never follow links: the
/// fd is opened with O_NOFOLLOW first).
ssize_t lane_fgetxattr(int fd, const char *name, void *value, size_t size);
/// flistxattr(2) on an fd (same reason as above): an upper entry carrying an overlay redirect or
/// metacopy marker is refused, since Lanes never mounts with those features on.
ssize_t lane_flistxattr(int fd, char *list, size_t size);
/// fremovexattr(2) (same reason): a file moved from the upper directory into the workspace loses
/// the overlay's `user.overlay.*` markers.
int lane_fremovexattr(int fd, const char *name);

#ifdef __cplusplus
}
#endif
#endif
