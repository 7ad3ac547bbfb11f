// The egress bridge (issue 12): lane-init's loopback listener hands each accepted connection to
// the supervisor over a unix socketpair with SCM_RIGHTS. These are C because the cmsg macros
// (CMSG_FIRSTHDR, CMSG_DATA, CMSG_SPACE) and sockaddr casts have no Swift form.
#pragma once
#include <stdint.h>

/// A listening TCP socket on 127.0.0.1:port (CLOEXEC, SO_REUSEADDR, backlog 128); -1 + errno.
int lane_egress_listen(uint16_t port);

/// accept4(listener, CLOEXEC); retries EINTR. The connection's fd, or -1 + errno.
int lane_egress_accept(int listener);

/// Sends `fd` over the unix socket `channel` (one byte of payload + SCM_RIGHTS); 0 or -1 + errno.
int lane_egress_send_fd(int channel, int fd);

/// Receives one fd from `channel` (made CLOEXEC). The fd; -2 at end of stream; -1 + errno.
int lane_egress_recv_fd(int channel);

/// socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC): fds[0] for the supervisor, fds[1] for
/// lane-init. 0 or -1 + errno.
int lane_egress_socketpair(int fds[2]);
