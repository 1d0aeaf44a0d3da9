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
    #expect(address.ipTextBytes == Array(expected.utf8))
}
