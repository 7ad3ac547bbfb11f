// maxrss: runs a command, then prints its peak resident set size to stderr.
//
// Usage: maxrss CMD [ARG...]
// Its stdin, stdout and stderr are the command's. After the command ends it writes
// "maxrss_kb N" (getrusage of the waited-for child) as the last line of stderr and exits with
// the command's status (128+N when it was killed by signal N).
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[1], argv + 1);
        perror("exec");
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    if (wait4(pid, &status, 0, &usage) != pid) return 2;
    fprintf(stderr, "\nmaxrss_kb %ld\n", usage.ru_maxrss);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
