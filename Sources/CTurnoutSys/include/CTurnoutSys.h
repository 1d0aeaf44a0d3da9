// CTurnoutSys: the few things Swift cannot call directly on Linux.
// Most of epoll, eventfd and the socket calls are called from Swift through the system
// headers included here; this target adds GNU-only calls, macro constants, and the
// per-request system calls made without glibc's cancellation wrappers (below).
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
#include <sys/syscall.h>

// The calls the event loop makes per request, made with the `syscall` instruction itself
// rather than through glibc's wrappers. In a process with more than one thread those
// wrappers are cancellation points and switch the thread's cancellation type around every
// call (__pthread_enable_asynccancel / __pthread_disable_asynccancel, about 50 instructions
// a call, 4 calls per proxied request); Turnout never cancels a thread, so nothing is lost.
// They are static inline, so Swift code calls no function at all. Each returns -1 and sets
// errno on failure, as the wrappers do. Other architectures go through syscall(2).

#if defined(__x86_64__)
static inline long cturnout_raw_syscall6(long n, long a, long b, long c, long d, long e, long f) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    if ((unsigned long)ret > -4096UL) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}
#else
static inline long cturnout_raw_syscall6(long n, long a, long b, long c, long d, long e, long f) {
    return syscall(n, a, b, c, d, e, f);
}
#endif

/// recv(2) (recvfrom with no address).
static inline ssize_t cturnout_recv(int fd, void *buf, size_t len, int flags) {
    return cturnout_raw_syscall6(SYS_recvfrom, fd, (long)buf, (long)len, flags, 0, 0);
}

/// send(2) (sendto with no address).
static inline ssize_t cturnout_send(int fd, const void *buf, size_t len, int flags) {
    return cturnout_raw_syscall6(SYS_sendto, fd, (long)buf, (long)len, flags, 0, 0);
}

/// sendmsg(2).
static inline ssize_t cturnout_sendmsg(int fd, const struct msghdr *message, int flags) {
    return cturnout_raw_syscall6(SYS_sendmsg, fd, (long)message, flags, 0, 0, 0);
}

/// writev(2): bytes into a splice pipe, ahead of the body spliced after them.
static inline ssize_t cturnout_writev(int fd, const struct iovec *iov, int count) {
    return cturnout_raw_syscall6(SYS_writev, fd, (long)iov, count, 0, 0, 0);
}

/// epoll_wait(2) (epoll_pwait with no signal mask where there is no epoll_wait).
static inline int cturnout_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout) {
#ifdef SYS_epoll_wait
    return (int)cturnout_raw_syscall6(SYS_epoll_wait, epfd, (long)events, maxevents, timeout, 0, 0);
#else
    return (int)cturnout_raw_syscall6(SYS_epoll_pwait, epfd, (long)events, maxevents, timeout, 0, 8);
#endif
}

/// close(2).
static inline int cturnout_close(int fd) {
    return (int)cturnout_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
}

/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC; GNU-only, so not visible to Swift.
int cturnout_accept4_nonblocking(int fd, struct sockaddr *addr, socklen_t *len);

/// pipe2(2) with O_NONBLOCK | O_CLOEXEC (GNU-only), then, when `capacity` > 0, F_SETPIPE_SZ
/// to that many bytes. Returns the pipe's capacity in bytes, or -1 (errno set) when no pipe
/// was made. A pipe the kernel will not grow (above fs.pipe-max-size, or an unprivileged
/// user over fs.pipe-user-pages-soft, whose new pipes get only two pages) keeps the size it
/// has, which the caller sees in the result.
int cturnout_pipe_nonblocking(int fds[2], int capacity);

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
