import Testing
import TurnoutCore
#if canImport(Glibc)
import Glibc
#endif

@Test(arguments: [
    ("127.0.0.1", "127.0.0.1"), ("10.20.30.40", "10.20.30.40"), ("::1", "::1"),
    ("2001:db8::7", "2001:db8::7"), ("::ffff:10.1.2.3", "10.1.2.3"),
    ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
])
func clientAddressTextMatchesTheAddress(_ host: String, _ expected: String) throws {
    let address = try #require(SocketAddress(host: host, port: 8080))
    #expect(address.ipText == expected)
    #expect(address.ipAddressText.withBytes { Array($0) } == Array(expected.utf8))
}

/// The IPv4 formatter (digit by digit, no inet_ntop) on every octet value in every position.
@Test func ipv4TextIsDottedDecimalForEveryOctet() throws {
    for octet in 0...255 {
        for position in 0..<4 {
            var parts = [1, 22, 133, 4]
            parts[position] = octet
            let host = parts.map(String.init).joined(separator: ".")
            let address = try #require(SocketAddress(host: host, port: 1))
            #expect(address.ipText == host)
            let mapped = try #require(SocketAddress(host: "::ffff:" + host, port: 1))
            #expect(mapped.ipText == host)
        }
    }
}

@Test func addressTextIsHeldInline() {
    // 48 bytes of text and a count: no heap storage to allocate per connection.
    #expect(MemoryLayout<IPAddressText>.size == 56)
    #expect(SocketAddress(host: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", port: 1)?.ipAddressText.count == 39)
    #expect(SocketAddress(host: "1:0:0:2::3", port: 1)?.ipText == "1:0:0:2::3")
}

/// What glibc's inet_ntop writes for these 16 bytes.
private func inetNtop6(_ bytes: [UInt8]) -> String {
    var a = in6_addr()
    withUnsafeMutableBytes(of: &a) { $0.copyBytes(from: bytes) }
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    return inet_ntop(AF_INET6, &a, &text, socklen_t(text.count)).map { String(cString: $0) } ?? "?"
}

/// The IPv6 formatter against inet_ntop: fixed cases (runs of zeros at the start, middle
/// and end, ties, single zero groups, IPv4-compatible) and 20 000 random addresses whose
/// groups are zero half the time, so every shape of zero runs comes up.
@Test func ipv6TextMatchesInetNtop() throws {
    var cases: [[UInt16]] = [
        [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0, 0, 0],
        [1, 0, 0, 2, 0, 0, 0, 3], [1, 0, 0, 2, 0, 0, 3, 4], [1, 0, 2, 0, 3, 0, 4, 0],
        [0, 0, 0, 0, 0, 0, 0x0102, 0x0304], [0, 0, 0, 0, 0, 1, 0x0102, 0x0304],
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 7], [0xfe80, 0, 0, 0, 0xabc, 0xff, 0xfe00, 0x1234],
        [0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff], [0, 0x10, 0, 0, 0x100, 0, 0, 0x1000],
    ]
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    for _ in 0..<20_000 {
        cases.append((0..<8).map { _ in
            let r = next()
            // Zero half the time; otherwise 1 to 4 hex digits long.
            let masks: [UInt64] = [0xF, 0xFF, 0xFFF, 0xFFFF]
            return r & 1 == 0 ? 0 : UInt16((r >> 16) & masks[Int(r >> 1 & 3)])
        })
    }
    for groups in cases {
        let bytes = groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let isMapped = groups[0..<5].allSatisfy { $0 == 0 } && groups[5] == 0xFFFF
        if isMapped { continue }  // shown as IPv4: see clientAddressTextMatchesTheAddress
        let expected = inetNtop6(bytes)
        let address = try #require(SocketAddress(host: expected, port: 1))
        #expect(address.ipText == expected, "\(groups)")
    }
}
