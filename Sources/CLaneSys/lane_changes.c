#include "lane_changes.h"

#include <sys/xattr.h>

ssize_t lane_fgetxattr(int fd, const char *name, void *value, size_t size) {
    return fgetxattr(fd, name, value, size);
}

ssize_t lane_flistxattr(int fd, char *list, size_t size) { return flistxattr(fd, list, size); }

int lane_fremovexattr(int fd, const char *name) { return fremovexattr(fd, name); }
