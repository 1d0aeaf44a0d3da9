import Testing
import TurnoutCore

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
