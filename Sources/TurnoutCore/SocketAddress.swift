import CTurnoutSys
import TurnoutRouting
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 socket address held by value (no allocation).
public struct SocketAddress: Sendable {
    var storage = sockaddr_storage()
    var length: socklen_t = 0

    public init() {}

    /// Builds an address from an IP literal; nil if `host` is not one (no DNS here).
    public init?(host: String, port: UInt16) {
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        if host.withCString({ inet_pton(AF_INET, $0, &v4.sin_addr) }) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage) { dst in
                withUnsafeBytes(of: v4) { dst.copyMemory(from: $0) }
            }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        } else if host.withCString({ inet_pton(AF_INET6, $0, &v6.sin6_addr) }) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage) { dst in
                withUnsafeBytes(of: v6) { dst.copyMemory(from: $0) }
            }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            return nil
        }
    }

    public var family: Int32 { Int32(storage.ss_family) }

    /// Calls `body` with the address as a `sockaddr` pointer and its length.
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        try withUnsafeBytes(of: storage) { raw in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    /// Starts a non-blocking connect of `fd` to this address (see `Syscall.connect`).
    public func connect(_ fd: Int32) throws(IOError) -> IOResult<Void> {
        var copy = storage
        return try withUnsafePointer(to: &copy) { p throws(IOError) in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(IOError) in
                try Syscall.connect(fd, sa, length)
            }
        }
    }

    /// The IP address as text (IPv4-mapped IPv6 shown as IPv4), "unix" otherwise.
    public var ipText: String { String(decoding: ipTextBytes, as: UTF8.self) }

    /// `ipText` as bytes, formatted in a stack buffer: the one allocation is the array
    /// returned (made once per accepted connection).
    public var ipTextBytes: [UInt8] {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN) + 1) { buf -> [UInt8] in
            let base = buf.baseAddress!
            let formatted: UnsafePointer<CChar>? = withUnsafeBytes(of: storage) { raw in
                if family == AF_INET {
                    var a = raw.load(as: sockaddr_in.self).sin_addr
                    return inet_ntop(AF_INET, &a, base, socklen_t(buf.count))
                }
                if family == AF_INET6 {
                    var a = raw.load(as: sockaddr_in6.self).sin6_addr
                    let isMapped = withUnsafeBytes(of: a) { b in
                        b[0..<10].allSatisfy { $0 == 0 } && b[10] == 0xFF && b[11] == 0xFF
                    }
                    if isMapped {
                        var v4 = in_addr()
                        withUnsafeMutableBytes(of: &v4) { d in withUnsafeBytes(of: a) { d.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[12..<16])) } }
                        return inet_ntop(AF_INET, &v4, base, socklen_t(buf.count))
                    }
                    return inet_ntop(AF_INET6, &a, base, socklen_t(buf.count))
                }
                return nil
            }
            guard formatted != nil else { return Array("unix".utf8) }
            return Array(UnsafeRawBufferPointer(start: base, count: strlen(base)))
        }
    }

    /// The IP address as 128 bits (IPv4 held IPv4-mapped), for routing and trust checks.
    public var ipAddress: IPAddress {
        withUnsafeBytes(of: storage) { raw in
            if family == AF_INET {
                return IPAddress(ipv4: UInt32(bigEndian: raw.load(as: sockaddr_in.self).sin_addr.s_addr))
            }
            if family == AF_INET6 {
                let a = raw.load(as: sockaddr_in6.self).sin6_addr
                return withUnsafeBytes(of: a) { IPAddress(ipv6: $0) }
            }
            return IPAddress(high: 0, low: 0)
        }
    }

    public var port: UInt16 {
        withUnsafeBytes(of: storage) { raw in
            if family == AF_INET { return UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port) }
            if family == AF_INET6 { return UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port) }
            return 0
        }
    }
}

/// Socket creation helpers.
public enum Sockets {
    /// A non-blocking listening TCP socket with SO_REUSEADDR and SO_REUSEPORT, so every
    /// worker can bind its own socket to the same address and the kernel spreads accepts.
    /// With `deferAccept`, a connection becomes ready to accept once its first bytes arrive
    /// (`TCP_DEFER_ACCEPT` of 1 s; a silent client is accepted after that second anyway).
    public static func makeListener(
        _ address: ListenAddress, backlog: Int32 = 1024, deferAccept: Bool = false
    ) throws -> Int32 {
        guard let addr = SocketAddress(host: address.host, port: address.port) else {
            throw ConfigurationError("listen address \(address) is not an IP literal")
        }
        let fd = cturnout_socket_nonblocking(addr.family, Int32(SOCK_STREAM.rawValue), 0)
        if fd < 0 { throw IOError("socket", errno: errno) }
        do {
            try Syscall.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)")
            try Syscall.setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt(SO_REUSEPORT)")
            if addr.family == AF_INET6 {
                try Syscall.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1, "setsockopt(IPV6_V6ONLY)")
            }
            // Accepted sockets inherit TCP_NODELAY from the listener (Linux copies the
            // listener's TCP options into each child): no setsockopt per connection.
            try Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "setsockopt(TCP_NODELAY)")
            if deferAccept {
                try Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_DEFER_ACCEPT, 1, "setsockopt(TCP_DEFER_ACCEPT)")
            }
            let r = addr.withSockAddr { Glibc.bind(fd, $0, $1) }
            if r != 0 { throw IOError("bind", errno: errno) }
            if Glibc.listen(fd, backlog) != 0 { throw IOError("listen", errno: errno) }
        } catch {
            Syscall.close(fd)
            throw error
        }
        return fd
    }

    /// A non-blocking TCP socket for an upstream connection, with TCP_NODELAY.
    public static func makeClientSocket(family: Int32) throws(IOError) -> Int32 {
        let fd = cturnout_socket_nonblocking(family, Int32(SOCK_STREAM.rawValue), 0)
        if fd < 0 { throw IOError("socket", errno: errno) }
        _ = try? Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "setsockopt(TCP_NODELAY)")
        return fd
    }

    /// The local port a socket is bound to.
    public static func localPort(_ fd: Int32) -> UInt16 {
        var addr = SocketAddress()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutableBytes(of: &addr.storage) {
            getsockname(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &len)
        }
        addr.length = len
        return addr.port
    }
}

/// A setting that cannot work (raised before anything starts).
public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}
