// See lane_egress.h: the SCM_RIGHTS bridge between lane-init's listener and the supervisor.
#define _GNU_SOURCE
#include "lane_egress.h"
#include "lane_sys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int lane_egress_listen(uint16_t port) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    int one = 1;
    (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 128) != 0) {
        int saved = errno;
        close(s);
        errno = saved;
        return -1;
    }
    return s;
}

int lane_egress_accept(int listener) {
    for (;;) {
        int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0 || errno != EINTR) return c;
    }
}

int lane_egress_send_fd(int channel, int fd) { return lane_send_fds(channel, &fd, 1); }

int lane_egress_recv_fd(int channel) {
    int fd = -1;
    int n = lane_recv_fds(channel, &fd, 1);
    return n == 1 ? fd : (n == 0 ? -2 : -1);
}

int lane_egress_socketpair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds);
}
