import TurnoutRouting

extension ConfigLoader {
    /// Largest accepted member weight; keeps weight sums far from overflow in the balancer.
    static let maxWeight = 10_000

    /// `pools`: a non-empty mapping of pool name to pool, kept in file order. Names are unique because YAML keys are
    /// (a repeated name is reported while composing).
    static func readPools(_ entry: ConfigEntry, _ reader: ConfigReader) throws(ConfigError) -> [Pool] {
        let mapping = try reader.mapping(
            entry.value, entry.path, what: "a mapping of pool names to pools", allowsNull: false
        )
        guard !mapping.entries.isEmpty else {
            throw reader.error(at: entry.value, entry.path, "expected at least one pool")
        }
        guard mapping.entries.count <= RouteTable.maxPools else {
            throw reader.error(at: entry.value, entry.path, "at most \(RouteTable.maxPools) pools are supported")
        }
        var pools: [Pool] = []
        for item in mapping.entries {
            guard ConfigValues.isPoolName(item.name) else {
                throw reader.error(
                    at: item.keyNode, item.path,
                    "invalid pool name \"\(item.name)\": use only letters, digits, \"_\" and \"-\""
                )
            }
            pools.append(try readPool(item, reader))
        }
        return pools
    }

    /// One pool: a mapping whose only key is `members`.
    private static func readPool(_ entry: ConfigEntry, _ reader: ConfigReader) throws(ConfigError) -> Pool {
        let body = try reader.mapping(
            entry.value, entry.path, what: "a pool (a mapping with \"members\")", allowsNull: false
        )
        var members: [PoolMember]?
        var balance = BalancePolicy.roundRobin
        for item in body.entries {
            switch item.name {
            case "members": members = try readMembers(item, pool: entry.name, reader)
            case "balance":
                let names = BalancePolicy.allCases.map(\.rawValue)
                let text = try reader.text(item.value, item.path, what: "one of \(names.joined(separator: ", "))")
                guard let policy = BalancePolicy(rawValue: text) else {
                    throw reader.error(
                        at: item.value, item.path, "expected one of \(names.joined(separator: ", ")), got \"\(text)\"")
                }
                balance = policy
            default: throw reader.unknownKey(item, allowed: ["members", "balance"])
            }
        }
        guard let members else { throw reader.missingKey("members", in: body) }
        return Pool(name: entry.name, members: members, balance: balance)
    }

    /// `members`: a non-empty list of distinct members, at least one with a positive weight.
    private static func readMembers(_ entry: ConfigEntry, pool: String, _ reader: ConfigReader) throws(ConfigError)
        -> [PoolMember]
    {
        let items = try reader.sequence(entry.value, entry.path, what: "a list of members")
        guard !items.isEmpty else {
            throw reader.error(at: entry.value, entry.path, "pool \"\(pool)\" needs at least one member")
        }
        var members: [PoolMember] = []
        var firstLines: [MemberAddress: Int] = [:]
        for item in items {
            let (member, addressNode, addressPath) = try readMember(item.node, item.path, reader)
            if let first = firstLines[member.address] {
                throw reader.error(
                    at: addressNode, addressPath,
                    "\(member.address) is listed twice in pool \"\(pool)\" (first at line \(first))"
                )
            }
            firstLines[member.address] = addressNode.mark.line
            members.append(member)
        }
        guard members.contains(where: { $0.weight > 0 }) else {
            throw reader.error(
                at: entry.value, entry.path,
                "every member of pool \"\(pool)\" has weight 0, so the pool could never take traffic"
            )
        }
        return members
    }

    /// One member: `host:port`, or a mapping with `address` and an optional `weight` (default 1).
    private static func readMember(_ node: YAMLNode, _ path: String, _ reader: ConfigReader) throws(ConfigError)
        -> (member: PoolMember, addressNode: YAMLNode, addressPath: String)
    {
        if case .mapping = node {
            let mapping = try reader.mapping(node, path)
            var address: (node: YAMLNode, path: String, value: MemberAddress)?
            var weight = 1
            for item in mapping.entries {
                switch item.name {
                case "address":
                    let (host, port) = try reader.address(item.value, item.path)
                    address = (item.value, item.path, MemberAddress(host: host, port: port))
                case "weight":
                    weight = try reader.integer(item.value, item.path, in: 0...maxWeight)
                default:
                    throw reader.unknownKey(item, allowed: ["address", "weight"])
                }
            }
            guard let address else { throw reader.missingKey("address", in: mapping) }
            return (PoolMember(address: address.value, weight: weight), address.node, address.path)
        }
        let what = "\"host:port\" or a mapping with \"address\" and \"weight\""
        guard case .scalar = node else {
            throw reader.error(at: node, path, "expected \(what), got \(ConfigReader.describe(node))")
        }
        let (host, port) = try reader.address(node, path)
        return (PoolMember(address: MemberAddress(host: host, port: port)), node, path)
    }
}
