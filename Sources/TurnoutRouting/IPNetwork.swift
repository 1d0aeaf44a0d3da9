/// An IPv4 or IPv6 address as 128 bits; IPv4 is held IPv4-mapped (`::ffff:a.b.c.d`), so
/// one comparison covers both families. Built from bytes: text parsing lives with the
/// config loader, so this module stays free of system calls.
public struct IPAddress: Hashable, Sendable {
    public var high: UInt64
    public var low: UInt64

    /// From 16 bytes in network order (an IPv6 address).
    public init(ipv6 bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 16, "an IPv6 address has 16 bytes")
        var h: UInt64 = 0
        var l: UInt64 = 0
        for i in 0..<8 { h = h << 8 | UInt64(bytes[i]) }
        for i in 8..<16 { l = l << 8 | UInt64(bytes[i]) }
        high = h
        low = l
    }

    /// From an IPv4 address in host order (`0x7F000001` is 127.0.0.1).
    public init(ipv4 value: UInt32) {
        high = 0
        low = 0x0000_FFFF_0000_0000 | UInt64(value)
    }

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// True for IPv4 (and IPv4-mapped IPv6) addresses.
    public var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }
}

/// A CIDR block such as `10.0.0.0/8` or `2001:db8::/32`.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    /// Prefix length in the 128-bit space (an IPv4 `/8` is stored as `/104`).
    public let prefixLength: Int

    /// `address` is masked to the prefix; `prefixLength` counts in the address's own family
    /// (an IPv4 or IPv4-mapped address counts 32 bits).
    public init(address: IPAddress, prefixLength: Int) {
        self.init(address: address, bitsIn128: address.isIPv4 ? 96 + prefixLength : prefixLength)
    }

    /// `address` masked to its first `bits` bits of 128.
    public init(address: IPAddress, bitsIn128 bits: Int) {
        precondition((0...128).contains(bits), "prefix length out of range")
        self.prefixLength = bits
        let (mh, ml) = IPNetwork.mask(bits)
        self.address = IPAddress(high: address.high & mh, low: address.low & ml)
    }

    static func mask(_ bits: Int) -> (UInt64, UInt64) {
        let h: UInt64 = bits >= 64 ? ~0 : (bits == 0 ? 0 : ~0 << (64 - bits))
        let l: UInt64 = bits <= 64 ? 0 : (bits >= 128 ? ~0 : ~0 << (128 - bits))
        return (h, l)
    }

    public func contains(_ ip: IPAddress) -> Bool {
        let (mh, ml) = IPNetwork.mask(prefixLength)
        return ip.high & mh == address.high && ip.low & ml == address.low
    }

    public var description: String {
        if address.isIPv4 {
            let v = UInt32(truncatingIfNeeded: address.low)
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)/\(prefixLength - 96)"
        }
        var groups: [String] = []
        for i in 0..<8 {
            let word = i < 4 ? address.high >> UInt64(48 - 16 * i) : address.low >> UInt64(48 - 16 * (i - 4))
            groups.append(String(word & 0xFFFF, radix: 16))
        }
        return groups.joined(separator: ":") + "/\(prefixLength)"
    }
}
