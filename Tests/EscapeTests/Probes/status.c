// status: prints who it runs as and what it may do, for the setuid test.
//
// Prints "euid N", then the CapEff and NoNewPrivs lines of /proc/self/status.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    printf("euid %u\n", (unsigned)geteuid());
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 1;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "NoNewPrivs:", 11)) fputs(line, stdout);
    }
    fclose(f);
    return 0;
}
