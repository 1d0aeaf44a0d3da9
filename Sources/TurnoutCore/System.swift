import CTurnoutSys
#if canImport(Glibc)
import Glibc
#endif

/// An `errno` failure of a named system call.
public struct IOError: Error, CustomStringConvertible, Equatable, Sendable {
    public var call: StaticString
    public var errnoCode: Int32

    public init(_ call: StaticString, errno code: Int32) {
        self.call = call
        self.errnoCode = code
    }

    public static func == (a: IOError, b: IOError) -> Bool {
        a.errnoCode == b.errnoCode && "\(a.call)" == "\(b.call)"
    }

    public var description: String {
        "\(call): \(String(cString: strerror(errnoCode))) (errno \(errnoCode))"
    }
}

/// The result of a non-blocking call: a value, or "try again when the fd is ready".
public enum IOResult<T> {
    case processed(T)
    case wouldBlock
}

/// Thin wrappers over the system calls the event loop makes. Each retries `EINTR`,
/// returns `EAGAIN` as `.wouldBlock`, traps on `EBADF`/`EFAULT` (a programmer error:
/// an fd used after close) and throws `IOError` naming the call otherwise.
/// They are `@inline(never)` so nothing runs between the call and reading `errno`.
public enum Syscall {
    @inline(never)
    static func check(_ call: StaticString, _ body: () -> Int) throws(IOError) -> IOResult<Int> {
        while true {
            let r = body()
            if r >= 0 { return .processed(r) }
            let e = errno
            switch e {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            case EBADF, EFAULT: preconditionFailure("\(call) failed with errno \(e): fd misuse")
            default: throw IOError(call, errno: e)
            }
        }
    }

    @inline(never)
    public static func read(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ count: Int) throws(IOError) -> IOResult<Int> {
        try check("read") { Glibc.read(fd, buf, count) }
    }

    @inline(never)
    public static func writev(_ fd: Int32, _ iov: UnsafePointer<iovec>, _ count: Int32) throws(IOError) -> IOResult<Int> {
        try check("writev") { Glibc.writev(fd, iov, count) }
    }

    /// Receives from a connected socket (`recv(2)`). The proxy's sockets use this rather than
    /// `read(2)`: it enters the socket layer directly, without the VFS layer's position lock
    /// lookup, access checks and fsnotify hook (`vfs_read`, `vfs_writev` and `fdget_pos` were
    /// 5.6 % of the proxy's CPU profile under load; see docs/benchmarks.md).
    @inline(never)
    public static func receive(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ count: Int) throws(IOError)
        -> IOResult<Int>
    {
        try check("recv") { cturnout_recv(fd, buf, count, 0) }
    }

    /// Sends `count` buffers to a connected socket in one call: `send(2)` for one buffer,
    /// `sendmsg(2)` for several (the socket-layer counterparts of `write`/`writev`, see
    /// `receive`). `MSG_NOSIGNAL`: a peer that has gone away is an `EPIPE` error, not a signal.
    /// `moreFollows` adds `MSG_MORE`: the kernel holds back a segment shorter than the MSS
    /// until the next send, `shutdown` or `close` (which then carries the FIN with it).
    @inline(never)
    public static func send(
        _ fd: Int32, _ iov: UnsafePointer<iovec>, _ count: Int32, moreFollows: Bool = false
    ) throws(IOError) -> IOResult<Int> {
        let flags = moreFollows ? cturnout_MSG_NOSIGNAL | cturnout_MSG_MORE : cturnout_MSG_NOSIGNAL
        if count == 1 {
            let (base, length) = (iov.pointee.iov_base, iov.pointee.iov_len)
            return try check("send") { cturnout_send(fd, base, length, flags) }
        }
        var message = msghdr()
        message.msg_iov = UnsafeMutablePointer(mutating: iov)
        message.msg_iovlen = Int(count)
        return try check("sendmsg") { cturnout_sendmsg(fd, &message, flags) }
    }

    /// Writes `count` buffers into a pipe (`writev(2)`): the head and first body bytes of a
    /// response whose body is then spliced after them, so that all of it reaches the
    /// client in one splice.
    @inline(never)
    public static func writePipe(_ fd: Int32, _ iov: UnsafePointer<iovec>, _ count: Int32) throws(IOError) -> IOResult<Int> {
        try check("writev") { cturnout_writev(fd, iov, count) }
    }

    /// Moves up to `count` bytes between a socket and a pipe inside the kernel.
    /// `.wouldBlock`: the source is empty or the destination full.
    @inline(never)
    public static func splice(from source: Int32, to destination: Int32, _ count: Int) throws(IOError) -> IOResult<Int> {
        try check("splice") { cturnout_splice(source, destination, count) }
    }

    @inline(never)
    public static func write(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) throws(IOError) -> IOResult<Int> {
        try check("write") { Glibc.write(fd, buf, count) }
    }

    /// accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC. Transient per-connection errors
    /// (ECONNABORTED, EPROTO, EPERM) come back as `.wouldBlock`-free `-1` values.
    @inline(never)
    public static func accept(_ fd: Int32, _ addr: UnsafeMutablePointer<sockaddr_storage>) throws(IOError) -> IOResult<Int32> {
        while true {
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let r = addr.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                cturnout_accept4_nonblocking(fd, $0, &len)
            }
            if r >= 0 { return .processed(r) }
            let e = errno
            switch e {
            case EINTR, ECONNABORTED, EPROTO: continue
            case EAGAIN: return .wouldBlock
            case EBADF, EFAULT: preconditionFailure("accept4 on a bad fd")
            default: throw IOError("accept4", errno: e)
            }
        }
    }

    /// Starts a non-blocking connect: `.processed(())` when connected at once,
    /// `.wouldBlock` while in progress (wait for writability, then `socketError`).
    @inline(never)
    public static func connect(_ fd: Int32, _ addr: UnsafePointer<sockaddr>, _ len: socklen_t) throws(IOError) -> IOResult<Void> {
        while true {
            if Glibc.connect(fd, addr, len) == 0 { return .processed(()) }
            let e = errno
            switch e {
            case EINTR: continue
            case EINPROGRESS, EAGAIN: return .wouldBlock
            case EBADF, EFAULT: preconditionFailure("connect on a bad fd")
            default: throw IOError("connect", errno: e)
            }
        }
    }

    /// The pending error of a socket (SO_ERROR), 0 when none.
    public static func socketError(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &len) != 0 { return errno }
        return value
    }

    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ call: StaticString) throws(IOError) {
        var v = value
        if setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw IOError(call, errno: errno)
        }
    }

    public static func close(_ fd: Int32) {
        // close(2) must not be retried on EINTR on Linux: the fd is released either way.
        _ = cturnout_close(fd)
    }

    /// Whether bytes (or a reset) wait unread on the socket: a one-byte `MSG_PEEK` that
    /// takes nothing. End of stream and `EAGAIN` count as nothing waiting.
    public static func hasUnreadInput(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        while true {
            let r = cturnout_recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if r > 0 { return true }
            if r == 0 { return false }
            switch errno {
            case EINTR: continue
            case EAGAIN: return false
            default: return true  // a pending error: let the careful path deal with it
            }
        }
    }

    public static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }
}

/// Monotonic clock in milliseconds and nanoseconds.
public enum Clock {
    @inline(__always)
    public static func nowNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    @inline(__always)
    public static func nowMilliseconds() -> UInt64 {
        nowNanoseconds() / 1_000_000
    }
}
