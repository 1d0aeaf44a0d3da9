import TurnoutRouting

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Pure parsers for the scalar value syntaxes of the configuration file. Each returns nil (or `.malformed`) instead of
/// throwing; `ConfigReader` turns that into an error that names the key.
enum ConfigValues {
    /// A decimal integer with an optional sign; no spaces, underscores or other bases.
    static func decimal(_ text: String) -> Int? {
        let digits = text.hasPrefix("-") || text.hasPrefix("+") ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return nil
        }
        return Int(text)
    }

    /// Splits `12KiB` into `(12, "KiB")`; nil when there are no leading digits or the number overflows.
    private static func numberAndUnit(_ text: String) -> (Int, Substring)? {
        let digits = text.utf8.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard !digits.isEmpty, let number = Int(Substring(digits)) else { return nil }
        return (number, text.dropFirst(digits.count))
    }

    /// Milliseconds from `250ms`, `10s`, `2m`, `1h`, or a bare integer meaning seconds.
    static func milliseconds(_ text: String) -> Int? {
        guard let (number, unit) = numberAndUnit(text) else { return nil }
        let scale: Int
        switch unit {
        case "ms": scale = 1
        case "", "s": scale = 1_000
        case "m": scale = 60_000
        case "h": scale = 3_600_000
        default: return nil
        }
        let (result, overflow) = number.multipliedReportingOverflow(by: scale)
        return overflow ? nil : result
    }

    /// Microseconds from `50us`, `50µs`, `1ms`, `1s` or a bare `0`; nil for anything else (a bare non-zero number would
    /// be ambiguous next to the bare seconds of the other durations).
    static func microseconds(_ text: String) -> Int? {
        guard let (number, unit) = numberAndUnit(text) else { return nil }
        let scale: Int
        switch unit {
        case "us", "µs": scale = 1
        case "ms": scale = 1_000
        case "s": scale = 1_000_000
        case "" where number == 0: scale = 1
        default: return nil
        }
        let (result, overflow) = number.multipliedReportingOverflow(by: scale)
        return overflow ? nil : result
    }

    /// Bytes from a bare integer or one followed by `k`/`K`/`KiB`, `m`/`M`/`MiB`, `g`/`G`/`GiB` (all 1024-based).
    static func bytes(_ text: String) -> Int64? {
        guard let (number, unit) = numberAndUnit(text) else { return nil }
        let scale: Int64
        switch unit {
        case "": scale = 1
        case "k", "K", "KiB": scale = 1 << 10
        case "m", "M", "MiB": scale = 1 << 20
        case "g", "G", "GiB": scale = 1 << 30
        default: return nil
        }
        let (result, overflow) = Int64(number).multipliedReportingOverflow(by: scale)
        return overflow ? nil : result
    }

    /// `16KiB` for 16384, `1MiB` for 1048576, `1000` for 1000: the largest exact unit.
    static func describeBytes(_ bytes: Int64) -> String {
        for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] where bytes != 0 && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift)\(unit)"
        }
        return "\(bytes)"
    }

    /// What `ipAddress` made of a `host:port` text.
    enum AddressParse: Equatable {
        /// An IP literal host, canonicalised (`::0001` becomes `::1`), and a port from 1 to 65535.
        case valid(host: String, port: UInt16)
        /// Well-formed `host:port`, but the host is a name rather than an IP literal.
        case hostName(String)
        /// Not `host:port` at all, a bad port, an IPv6 literal without brackets or an IPv4 one inside them.
        case malformed
    }

    /// Parses `a.b.c.d:port` or `[v6]:port` with the syntax of `MemberAddress.parse`, and checks the host is an IP
    /// literal with `inet_pton`.
    static func ipAddress(_ text: String) -> AddressParse {
        guard let parsed = MemberAddress.parse(text) else { return .malformed }
        let isBracketed = text.hasPrefix("[")
        if isBracketed {
            guard let host = canonicalIP(parsed.host, family: AF_INET6) else {
                return canonicalIP(parsed.host, family: AF_INET) == nil ? .hostName(parsed.host) : .malformed
            }
            return .valid(host: host, port: parsed.port)
        }
        guard let host = canonicalIP(parsed.host, family: AF_INET) else { return .hostName(parsed.host) }
        return .valid(host: host, port: parsed.port)
    }

    /// `inet_pton` then `inet_ntop`: the canonical text of an IP literal, or nil when `host` is not one.
    private static func canonicalIP(_ host: String, family: Int32) -> String? {
        var address = in6_addr()  // large enough for either family
        let isParsed = withUnsafeMutableBytes(of: &address) { inet_pton(family, host, $0.baseAddress) == 1 }
        guard isParsed else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = withUnsafeBytes(of: &address) { bytes in
            inet_ntop(family, bytes.baseAddress, &buffer, socklen_t(buffer.count))
        }
        guard written != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `name` is a non-empty RFC 9110 token, the syntax of a header field name.
    static func isHeaderToken(_ name: String) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"):
                    return true
                default:
                    return "!#$%&'*+-.^_`|~".utf8.contains(byte)
                }
            }
    }

    /// Whether `token` can be an override secret: at least 8 characters of
    /// `A-Za-z0-9-._~+/=`, so it travels unchanged in a header parameter and a cookie value.
    static func isOverrideToken(_ token: String) -> Bool {
        token.utf8.count >= 8
            && token.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"):
                    return true
                default:
                    return "-._~+/=".utf8.contains(byte)
                }
            }
    }

    /// Whether `name` matches `[A-Za-z0-9_-]+`, the syntax of a pool name.
    static func isPoolName(_ name: String) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    return true
                default:
                    return false
                }
            }
    }
}
