#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "CTurnoutSys.h"
#include <fcntl.h>
#include <sched.h>
#include <sys/random.h>

_Static_assert(sizeof(struct epoll_event) == 12, "x86_64 packs epoll_event; Swift mirrors that layout");

int cturnout_accept4_nonblocking(int fd, struct sockaddr *addr, socklen_t *len) {
    return (int)cturnout_raw_syscall6(SYS_accept4, fd, (long)addr, (long)len, SOCK_NONBLOCK | SOCK_CLOEXEC, 0, 0);
}

int cturnout_pipe_nonblocking(int fds[2], int capacity) {
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return -1;
    int size = capacity > 0 ? fcntl(fds[1], F_SETPIPE_SZ, capacity) : -1;
    if (size < 0) size = fcntl(fds[1], F_GETPIPE_SZ);
    if (size < 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        errno = saved;
        return -1;
    }
    return size;
}

ssize_t cturnout_splice(int fd_in, int fd_out, size_t len) {
    return cturnout_raw_syscall6(SYS_splice, fd_in, 0, fd_out, 0, (long)len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
}

int cturnout_socket_nonblocking(int domain, int type, int protocol) {
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
}

int cturnout_fill_random(void *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom((char *)buf + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

int cturnout_usable_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

int cturnout_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

const uint32_t cturnout_EPOLLIN = EPOLLIN;
const uint32_t cturnout_EPOLLOUT = EPOLLOUT;
const uint32_t cturnout_EPOLLERR = EPOLLERR;
const uint32_t cturnout_EPOLLHUP = EPOLLHUP;
const uint32_t cturnout_EPOLLRDHUP = EPOLLRDHUP;
const uint32_t cturnout_EPOLLET = EPOLLET;
const int cturnout_EFD_NONBLOCK_CLOEXEC = EFD_NONBLOCK | EFD_CLOEXEC;
const int cturnout_MSG_NOSIGNAL = MSG_NOSIGNAL;
const int cturnout_MSG_MORE = MSG_MORE;
const int cturnout_SFD_NONBLOCK_CLOEXEC = SFD_NONBLOCK | SFD_CLOEXEC;
