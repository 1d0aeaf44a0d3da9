/// A network endpoint of an upstream member: an IP literal and a port.
public struct MemberAddress: Hashable, Sendable, CustomStringConvertible {
    /// IPv4 dotted quad or IPv6 literal without brackets.
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with brackets around IPv6 literals.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Parses `host:port` or `[v6]:port`. Returns nil when malformed.
    public static func parse(_ text: String) -> MemberAddress? {
        var host: Substring
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }
        }
        guard !host.isEmpty, let port = UInt16(portText), port > 0 else { return nil }
        return MemberAddress(host: String(host), port: port)
    }
}

/// One origin server in a pool.
public struct PoolMember: Hashable, Sendable {
    public var address: MemberAddress
    /// Relative share of the pool's traffic; 0 takes none.
    public var weight: Int
    /// Drained by an operator: takes no new requests; requests in flight finish.
    public var isDrained: Bool

    public init(address: MemberAddress, weight: Int = 1, isDrained: Bool = false) {
        self.address = address
        self.weight = weight
        self.isDrained = isDrained
    }

    /// True when the member may be given new requests (weight above 0, not drained).
    public var takesTraffic: Bool { weight > 0 && !isDrained }
}

/// How a pool spreads its requests over its members.
public enum BalancePolicy: String, Hashable, Sendable, CaseIterable {
    /// Smooth weighted round robin (nginx's algorithm): exact shares, interleaved.
    case roundRobin = "round_robin"
    /// Two members drawn at random (by weight), the one with fewer outstanding requests
    /// per unit of weight wins: adapts to slow members without global coordination.
    case powerOfTwoChoices = "p2c"
}

/// A named group of interchangeable origins (e.g. `blue`, `green`, `canary`).
public struct Pool: Hashable, Sendable {
    public var name: String
    public var members: [PoolMember]
    public var balance: BalancePolicy

    public init(name: String, members: [PoolMember], balance: BalancePolicy = .roundRobin) {
        self.name = name
        self.members = members
        self.balance = balance
    }
}
