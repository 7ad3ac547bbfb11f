// Tries every system call that sets a file mode with S_ISUID or S_ISGID, in the current
// directory, and prints "NAME ok" or "NAME errno N" for each (issue 10). Raw syscalls, so no
// libc fallback hides which call was made.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, long r) {
    if (r < 0) printf("%s errno %d\n", name, errno);
    else printf("%s ok\n", name);
    fflush(stdout);
}

static int plain(const char *path) {
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
    return fd;
}

struct open_how_probe { uint64_t flags, mode, resolve; };

int main(void) {
    int fd = plain("m-chmod"); if (fd >= 0) close(fd);
    report("chmod", syscall(SYS_chmod, "m-chmod", 04755));
    fd = plain("m-fchmod");
    report("fchmod", syscall(SYS_fchmod, fd, 04755));
    if (fd >= 0) close(fd);
    fd = plain("m-fchmodat"); if (fd >= 0) close(fd);
    report("fchmodat", syscall(SYS_fchmodat, AT_FDCWD, "m-fchmodat", 02755));
    fd = plain("m-fchmodat2"); if (fd >= 0) close(fd);
    report("fchmodat2", syscall(452, AT_FDCWD, "m-fchmodat2", 04755, 0));
    long r = syscall(SYS_open, "m-open", O_WRONLY | O_CREAT | O_CLOEXEC, 04755);
    report("open", r); if (r >= 0) close((int)r);
    r = syscall(SYS_openat, AT_FDCWD, "m-openat", O_WRONLY | O_CREAT | O_CLOEXEC, 06755);
    report("openat", r); if (r >= 0) close((int)r);
    r = syscall(SYS_creat, "m-creat", 04755);
    report("creat", r); if (r >= 0) close((int)r);
    report("mkdir", syscall(SYS_mkdir, "m-mkdir", 02755));
    report("mkdirat", syscall(SYS_mkdirat, AT_FDCWD, "m-mkdirat", 04755));
    report("mknod", syscall(SYS_mknod, "m-mknod", S_IFREG | 04755, 0));
    report("mknodat", syscall(SYS_mknodat, AT_FDCWD, "m-mknodat", S_IFREG | 02755, 0));
    struct open_how_probe how = {O_WRONLY | O_CREAT | O_CLOEXEC, 04755, 0};
    r = syscall(SYS_openat2, AT_FDCWD, "m-openat2", &how, sizeof how);
    report("openat2", r); if (r >= 0) close((int)r);
    // Allowed: an executable bit and a sticky directory.
    fd = plain("m-plusx"); if (fd >= 0) close(fd);
    report("chmod_plus_x", syscall(SYS_chmod, "m-plusx", 0755));
    report("mkdir_sticky", syscall(SYS_mkdir, "m-sticky", 01777));
    report("chmod_sticky", syscall(SYS_chmod, "m-sticky", 01777));
    return 0;
}
