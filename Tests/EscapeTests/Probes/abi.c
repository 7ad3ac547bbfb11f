// abi: makes one system call through an alternate x86 ABI and reports what came back.
//
// Usage: abi x32|int80
// Prints "x32 ok" / "x32 errno N" (or the same for int80) and exits 0. Inside the sandbox the
// seccomp filter kills the process with SIGSYS before anything is printed.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define X32_SYSCALL_BIT 0x40000000L

/// getpid (39) with the x32 bit set: the x32 ABI on an x86_64 kernel.
static long x32_getpid(void) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(X32_SYSCALL_BIT | 39L) : "rcx", "r11", "memory");
    return ret;
}

/// getpid (20) through int 0x80: the i386 ABI.
static long int80_getpid(void) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    return ret;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    long r;
    if (!strcmp(argv[1], "x32")) r = x32_getpid();
    else if (!strcmp(argv[1], "int80")) r = int80_getpid();
    else return 2;
    if (r < 0) printf("%s errno %ld\n", argv[1], -r);
    else printf("%s ok\n", argv[1]);
    return 0;
}
