// CTurnoutSys: the few things Swift cannot call directly on Linux.
// epoll, eventfd, sockets, readv/writev are called from Swift through the system
// headers included here; this target adds only GNU-only calls and macro constants.
// Every symbol carries the `cturnout_` prefix. No policy lives in C.
#ifndef CTURNOUTSYS_H
#define CTURNOUTSYS_H

#include <errno.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

// The calls the event loop makes per request, entered with syscall(2) rather than through
// glibc's wrappers. In a process with more than one thread those wrappers are
// cancellation points and switch the thread's cancellation type around every call
// (__pthread_enable_asynccancel / __pthread_disable_asynccancel, about 50 instructions a
// call, 4 calls per proxied request). Turnout never cancels a thread, so nothing is lost.
// Each returns -1 and sets errno on failure, as the wrappers do.

/// recv(2) (recvfrom with no address).
ssize_t cturnout_recv(int fd, void *buf, size_t len, int flags);

/// send(2) (sendto with no address).
ssize_t cturnout_send(int fd, const void *buf, size_t len, int flags);

/// sendmsg(2).
ssize_t cturnout_sendmsg(int fd, const struct msghdr *message, int flags);

/// epoll_wait(2).
int cturnout_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);

/// close(2).
int cturnout_close(int fd);

/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC; GNU-only, so not visible to Swift.
int cturnout_accept4_nonblocking(int fd, struct sockaddr *addr, socklen_t *len);

/// pipe2(2) with O_NONBLOCK | O_CLOEXEC; GNU-only.
int cturnout_pipe_nonblocking(int fds[2]);

/// splice(2) of up to `len` bytes from `fd_in` to `fd_out` (one of them a pipe), with
/// SPLICE_F_NONBLOCK | SPLICE_F_MOVE; GNU-only.
ssize_t cturnout_splice(int fd_in, int fd_out, size_t len);

/// socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC or-ed into the type.
int cturnout_socket_nonblocking(int domain, int type, int protocol);

/// getrandom(2) filling the whole buffer (blocks only until the kernel pool is initialised).
int cturnout_fill_random(void *buf, size_t len);

/// The number of CPUs this process may run on (sched_getaffinity), at least 1.
int cturnout_usable_cpu_count(void);

/// Reads the peer credentials of a Unix socket (SO_PEERCRED). Returns 0 on success.
int cturnout_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

// epoll flags are enum members or macros with unsigned shifts; exported as constants.
extern const uint32_t cturnout_EPOLLIN;
extern const uint32_t cturnout_EPOLLOUT;
extern const uint32_t cturnout_EPOLLERR;
extern const uint32_t cturnout_EPOLLHUP;
extern const uint32_t cturnout_EPOLLRDHUP;
extern const uint32_t cturnout_EPOLLET;
extern const int cturnout_EFD_NONBLOCK_CLOEXEC;
extern const int cturnout_MSG_NOSIGNAL;
extern const int cturnout_MSG_MORE;
extern const int cturnout_SFD_NONBLOCK_CLOEXEC;

#endif
