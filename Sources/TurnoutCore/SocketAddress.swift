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
    public var ipText: String { IPAddressText(self).string }

    /// `ipText` held inline, for a connection to keep without an allocation.
    public var ipAddressText: IPAddressText { IPAddressText(self) }

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

/// An IP address as text, at most 45 bytes (`INET6_ADDRSTRLEN` less the NUL), held inline:
/// a connection keeps its client's address for `X-Forwarded-For` and the logs with no
/// allocation. Formatted here digit by digit, as `inet_ntop` writes it (RFC 5952 for IPv6:
/// lowercase hex, the first longest run of two or more zero groups as `::`; IPv4-mapped
/// addresses shown as IPv4) but without its `sprintf` per group.
public struct IPAddressText: Sendable, Equatable {
    private var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    /// Bytes used.
    public private(set) var count = 0

    /// The address of `address`, or "unix" for anything but IPv4 and IPv6.
    public init(_ address: SocketAddress) {
        withUnsafeBytes(of: address.storage) { raw in
            if address.family == AF_INET {
                let a = raw.load(fromByteOffset: MemoryLayout<sockaddr_in>.offset(of: \.sin_addr)!, as: UInt32.self)
                setIPv4(UInt32(bigEndian: a))
                return
            }
            guard address.family == AF_INET6 else {
                set("unix")
                return
            }
            let a = raw.load(fromByteOffset: MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!, as: in6_addr.self)
            withUnsafeBytes(of: a) { b in
                if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF {
                    setIPv4(IPAddressText.lastFour(b))
                    return
                }
                setIPv6(b)
            }
        }
    }

    private mutating func set(_ text: StaticString) {
        withUnsafeMutableBytes(of: &storage) { out in
            out.copyMemory(from: UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        }
        count = text.utf8CodeUnitCount
    }

    /// The IPv4 address in the last four of an IPv6 address's 16 bytes (host byte order).
    private static func lastFour(_ b: UnsafeRawBufferPointer) -> UInt32 {
        UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15])
    }

    /// Dotted decimal of `ip` (host byte order).
    private mutating func setIPv4(_ ip: UInt32) {
        count = 0
        appendIPv4(ip)
    }

    /// The 16 bytes of an IPv6 address that is not IPv4-mapped.
    private mutating func setIPv6(_ b: UnsafeRawBufferPointer) {
        func group(_ i: Int) -> UInt16 { UInt16(b[2 * i]) << 8 | UInt16(b[2 * i + 1]) }
        // The first longest run of zero groups, if it is at least two long.
        var best = -1
        var bestLength = 0
        var run = -1
        for i in 0..<8 {
            if group(i) != 0 {
                run = -1
                continue
            }
            if run < 0 { run = i }
            if i - run + 1 > bestLength {
                best = run
                bestLength = i - run + 1
            }
        }
        if bestLength < 2 { best = -1 }
        count = 0
        if best == 0 && bestLength == 6 {
            // IPv4-compatible (deprecated), which inet_ntop writes as ::a.b.c.d.
            append(byte: UInt8(ascii: ":"))
            append(byte: UInt8(ascii: ":"))
            appendIPv4(IPAddressText.lastFour(b))
            return
        }
        var needsColon = false
        var i = 0
        while i < 8 {
            if i == best {
                append(byte: UInt8(ascii: ":"))
                append(byte: UInt8(ascii: ":"))
                i += bestLength
                needsColon = false
                continue
            }
            if needsColon { append(byte: UInt8(ascii: ":")) }
            let g = group(i)
            var shift = 12
            while shift > 0 && (g >> UInt16(shift)) == 0 { shift -= 4 }
            while shift >= 0 {
                let digit = UInt8((g >> UInt16(shift)) & 0xF)
                append(byte: digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
                shift -= 4
            }
            needsColon = true
            i += 1
        }
    }

    private mutating func append(byte: UInt8) {
        let n = count
        withUnsafeMutableBytes(of: &storage) { $0[n] = byte }
        count = n + 1
    }

    private mutating func appendIPv4(_ ip: UInt32) {
        var n = count
        withUnsafeMutableBytes(of: &storage) { out in
            for shift in stride(from: 24, through: 0, by: -8) {
                let octet = Int((ip >> UInt32(shift)) & 0xFF)
                if octet >= 100 {
                    out[n] = UInt8(ascii: "0") + UInt8(octet / 100)
                    n += 1
                }
                if octet >= 10 {
                    out[n] = UInt8(ascii: "0") + UInt8(octet / 10 % 10)
                    n += 1
                }
                out[n] = UInt8(ascii: "0") + UInt8(octet % 10)
                n += 1
                if shift > 0 {
                    out[n] = UInt8(ascii: ".")
                    n += 1
                }
            }
        }
        count = n
    }

    /// Calls `body` with the text's bytes (valid only during the call).
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(of: storage) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }

    public var string: String { withBytes { String(decoding: $0, as: UTF8.self) } }

    public static func == (a: IPAddressText, b: IPAddressText) -> Bool {
        a.withBytes { x in b.withBytes { y in x.elementsEqual(y) } }
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
