import TurnoutCore
import TurnoutRouting

#if canImport(Glibc)
    import Glibc
#endif

extension ConfigLoader {
    /// The default split: `active: NAME` (100 % to one pool) or `split: {NAME: PERCENT, ...}`; exactly one of them.
    static func readSplit(in top: ConfigMapping, pools: [Pool], _ reader: ConfigReader) throws(ConfigError) -> Split {
        switch (top["active"], top["split"]) {
        case (let active?, nil): return try activeSplit(active, pools: pools, reader)
        case (nil, let split?): return try percentSplit(split, pools: pools, reader)
        case (_?, let split?):
            throw reader.error(
                at: split.keyNode, split.path, "give either \"active\" or \"split\", not both (\"active: X\" means 100% X)")
        case (nil, nil):
            throw reader.error(
                at: top.node, "active", "required key is missing: name the pool that takes traffic (\"active\") or give a \"split\"")
        }
    }

    /// `active: NAME`: everything to one pool.
    private static func activeSplit(_ entry: ConfigEntry, pools: [Pool], _ reader: ConfigReader) throws(ConfigError) -> Split {
        let index = try poolIndex(entry.value, entry.path, pools: pools, reader)
        return Split.all(to: index, of: pools.count)
    }

    /// `split: {blue: 95%, green: 5%}`: shares with up to four decimals adding up to exactly 100 %; pools left out get 0 %.
    private static func percentSplit(_ entry: ConfigEntry, pools: [Pool], _ reader: ConfigReader) throws(ConfigError) -> Split {
        let mapping = try reader.mapping(entry.value, entry.path, what: "a mapping of pool names to percentages", allowsNull: false)
        guard !mapping.entries.isEmpty else { throw reader.error(at: entry.value, entry.path, "expected at least one pool") }
        var shares = [UInt32](repeating: 0, count: pools.count)
        for item in mapping.entries {
            guard let index = pools.firstIndex(where: { $0.name == item.name }) else {
                let names = pools.map(\.name).joined(separator: ", ")
                throw reader.error(at: item.keyNode, item.path, "no pool is named \"\(item.name)\"; the pools are: \(names)")
            }
            let what = "a percentage from 0% to 100% with up to four decimals, such as \"5%\" or \"0.05%\""
            let text = try reader.text(item.value, item.path, what: what)
            guard text.hasSuffix("%"), let ppm = Split.parsePercent(text) else {
                throw reader.error(at: item.value, item.path, "expected \(what), got \(ConfigReader.describe(item.value))")
            }
            shares[index] = ppm
        }
        guard let split = Split(partsPerMillion: shares) else {
            let sum = shares.reduce(0, +)
            throw reader.error(
                at: entry.value, entry.path, "the shares add up to \(Split.formatPercent(sum)); they must add up to exactly 100%")
        }
        return split
    }

    private static func poolIndex(_ node: YAMLNode, _ path: String, pools: [Pool], _ reader: ConfigReader) throws(ConfigError) -> Int {
        let name = try reader.text(node, path, what: "the name of a pool")
        guard let index = pools.firstIndex(where: { $0.name == name }) else {
            let names = pools.map(\.name).joined(separator: ", ")
            throw reader.error(at: node, path, "no pool is named \"\(name)\"; the pools are: \(names)")
        }
        return index
    }

    /// `routing`: cohorts, overrides, rules and the pool header.
    static func readRouting(_ entry: ConfigEntry, pools: [Pool], _ reader: ConfigReader) throws(ConfigError) -> RoutingPolicy {
        var policy = RoutingPolicy()
        for item in try reader.mapping(entry.value, entry.path).entries {
            switch item.name {
            case "pool_header": policy.poolHeader = try headerName(item, reader)
            case "cohort": policy.cohort = try cohort(item, reader)
            case "overrides": policy.overrides = try overrides(item, reader)
            case "rules": policy.rules = try rules(item, pools: pools, reader)
            default: throw reader.unknownKey(item, allowed: ["pool_header", "cohort", "overrides", "rules"])
            }
        }
        return policy
    }

    private static func cohort(_ entry: ConfigEntry, _ reader: ConfigReader) throws(ConfigError) -> CohortPolicy {
        var cohort = CohortPolicy()
        for item in try reader.mapping(entry.value, entry.path).entries {
            switch item.name {
            case "header": cohort.header = try headerName(item, reader)
            case "cookie": cohort.cookie = try cookieName(item, reader)
            case "bucket_cookie":
                if case .scalar = item.value, try reader.bool(item.value, item.path) == false {
                    cohort.bucketCookie = nil
                    continue
                }
                var bucket = BucketCookiePolicy()
                if case .mapping = item.value {
                    for field in try reader.mapping(item.value, item.path).entries {
                        switch field.name {
                        case "name": bucket.name = try cookieName(field, reader)
                        case "max_age":
                            bucket.maxAgeSeconds = try reader.duration(field.value, field.path, allowsZero: false) / 1000
                        default: throw reader.unknownKey(field, allowed: ["name", "max_age"])
                        }
                    }
                }
                cohort.bucketCookie = bucket
            default: throw reader.unknownKey(item, allowed: ["header", "cookie", "bucket_cookie"])
            }
        }
        return cohort
    }

    private static func overrides(_ entry: ConfigEntry, _ reader: ConfigReader) throws(ConfigError) -> OverridePolicy {
        var overrides = OverridePolicy()
        for item in try reader.mapping(entry.value, entry.path).entries {
            switch item.name {
            case "header": overrides.header = try headerName(item, reader)
            case "cookie": overrides.cookie = try cookieName(item, reader)
            case "trusted_networks":
                for network in try reader.sequence(item.value, item.path, what: "a list of networks such as 10.0.0.0/8") {
                    overrides.trustedNetworks.append(try cidr(network.node, network.path, reader))
                }
            case "token":
                let token = try reader.text(item.value, item.path, what: "a secret")
                guard ConfigValues.isOverrideToken(token) else {
                    throw reader.error(
                        at: item.value, item.path,
                        "a token needs at least 8 characters from A-Z a-z 0-9 - . _ ~ + / = (it travels in a header and a cookie)")
                }
                overrides.token = token
            default: throw reader.unknownKey(item, allowed: ["header", "cookie", "trusted_networks", "token"])
            }
        }
        return overrides
    }

    private static func rules(_ entry: ConfigEntry, pools: [Pool], _ reader: ConfigReader) throws(ConfigError) -> [RouteRule] {
        var rules: [RouteRule] = []
        for item in try reader.sequence(entry.value, entry.path, what: "a list of rules") {
            let mapping = try reader.mapping(item.node, item.path, what: "a rule (host, path_prefix, active or split)", allowsNull: false)
            var host: String?
            var prefix: String?
            for field in mapping.entries {
                switch field.name {
                case "host":
                    let text = try reader.text(field.value, field.path, what: "a host name such as api.example.com or *.example.com")
                    let body = text.hasPrefix("*.") ? String(text.dropFirst(2)) : text
                    guard !body.isEmpty, body.utf8.allSatisfy({ b in
                        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x2E
                    }) else {
                        throw reader.error(at: field.value, field.path, "expected a host name such as api.example.com or *.example.com, got \"\(text)\"")
                    }
                    host = text
                case "path_prefix":
                    let text = try reader.text(field.value, field.path, what: "a path prefix starting with /")
                    guard text.hasPrefix("/"), !text.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) else {
                        throw reader.error(at: field.value, field.path, "expected a path prefix starting with /, got \"\(text)\"")
                    }
                    prefix = text
                case "active", "split": break
                default: throw reader.unknownKey(field, allowed: ["host", "path_prefix", "active", "split"])
                }
            }
            guard host != nil || prefix != nil else {
                throw reader.error(at: item.node, item.path, "a rule needs \"host\" or \"path_prefix\" (or both) to match on")
            }
            let split = try readSplit(in: mapping, pools: pools, reader)
            rules.append(RouteRule(host: host, pathPrefix: prefix, split: split))
        }
        return rules
    }

    /// An HTTP field name (an RFC 9110 token).
    private static func headerName(_ entry: ConfigEntry, _ reader: ConfigReader) throws(ConfigError) -> String {
        try tokenName(entry, reader, what: "a header name")
    }

    /// A cookie name (an RFC 9110 token, as RFC 6265 requires).
    private static func cookieName(_ entry: ConfigEntry, _ reader: ConfigReader) throws(ConfigError) -> String {
        try tokenName(entry, reader, what: "a cookie name")
    }

    private static func tokenName(_ entry: ConfigEntry, _ reader: ConfigReader, what: String) throws(ConfigError)
        -> String
    {
        let text = try reader.text(entry.value, entry.path, what: what)
        guard ConfigValues.isHeaderToken(text) else {
            throw reader.error(at: entry.value, entry.path, "expected \(what) (letters, digits and !#$%&'*+-.^_`|~), got \"\(text)\"")
        }
        return text
    }

    /// `10.0.0.0/8`, `2001:db8::/32`, or a single address (a /32 or /128).
    private static func cidr(_ node: YAMLNode, _ path: String, _ reader: ConfigReader) throws(ConfigError) -> IPNetwork {
        let text = try reader.text(node, path, what: "a network such as 10.0.0.0/8 or ::1/128")
        switch NetworkSyntax.parse(text) {
        case .valid(let network): return network
        case .badPrefix(let maxBits):
            throw reader.error(at: node, path, "the prefix length of \"\(text)\" must be from 0 to \(maxBits)")
        case .malformed:
            throw reader.error(at: node, path, "expected a network such as 10.0.0.0/8 or ::1/128, got \"\(text)\"")
        }
    }
}

/// CIDR text (`10.0.0.0/8`, `2001:db8::/32`, or a bare address) to an `IPNetwork`.
enum NetworkSyntax {
    enum Result {
        case valid(IPNetwork)
        case badPrefix(maxBits: Int)
        case malformed
    }

    static func parse(_ text: String) -> Result {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let host = String(parts[0])
        var v4 = in_addr()
        var v6 = in6_addr()
        let address: IPAddress
        let maxBits: Int
        if host.withCString({ inet_pton(AF_INET, $0, &v4) }) == 1 {
            address = IPAddress(ipv4: UInt32(bigEndian: v4.s_addr))
            maxBits = 32
        } else if host.withCString({ inet_pton(AF_INET6, $0, &v6) }) == 1 {
            address = withUnsafeBytes(of: v6) { IPAddress(ipv6: $0) }
            maxBits = 128
        } else {
            return .malformed
        }
        var bits = maxBits
        if parts.count == 2 {
            guard !parts[1].hasPrefix("+"), !parts[1].hasPrefix("-"), let n = ConfigValues.decimal(String(parts[1])),
                (0...maxBits).contains(n)
            else { return .badPrefix(maxBits: maxBits) }
            bits = n
        }
        return .valid(IPNetwork(address: address, bitsIn128: maxBits == 32 ? 96 + bits : bits))
    }
}

extension ConfigLoader {
    /// `admin`: socket, optional loopback TCP listener with a token file, history depth.
    static func readAdmin(_ entry: ConfigEntry, _ reader: ConfigReader, configPath: String) throws(ConfigError)
        -> AdminSettings
    {
        var admin = AdminSettings()
        for item in try reader.mapping(entry.value, entry.path).entries {
            switch item.name {
            case "socket":
                let text = try reader.text(item.value, item.path, what: "a socket path")
                let path = resolve(text, relativeTo: configPath)
                guard path.utf8.count < 108 else {
                    throw reader.error(at: item.value, item.path, "a Unix socket path must be shorter than 108 bytes")
                }
                admin.socketPath = path
            case "listen":
                let (host, port) = try reader.address(item.value, item.path)
                guard host == "127.0.0.1" || host == "::1" || host.hasPrefix("127.") else {
                    throw reader.error(at: item.value, item.path, "the admin TCP listener must be on a loopback address")
                }
                admin.listen = ListenAddress(host: host, port: port)
            case "token_file":
                admin.tokenFile = resolve(try reader.text(item.value, item.path, what: "a file path"), relativeTo: configPath)
            case "history":
                admin.historyLimit = try reader.integer(item.value, item.path, in: 1...1000)
            default: throw reader.unknownKey(item, allowed: ["socket", "listen", "token_file", "history"])
            }
        }
        if admin.listen != nil && admin.tokenFile == nil, let listen = try reader.mapping(entry.value, entry.path)["listen"] {
            throw reader.error(at: listen.value, listen.path, "the admin TCP listener needs admin.token_file")
        }
        return admin
    }

    /// `state`: the state file, the audit log, and what a corrupt state file does.
    static func readState(_ entry: ConfigEntry, _ reader: ConfigReader, configPath: String) throws(ConfigError)
        -> StateSettings
    {
        var state = StateSettings()
        for item in try reader.mapping(entry.value, entry.path).entries {
            switch item.name {
            case "file": state.file = resolve(try reader.text(item.value, item.path, what: "a file path"), relativeTo: configPath)
            case "audit_log":
                state.auditFile = resolve(try reader.text(item.value, item.path, what: "a file path"), relativeTo: configPath)
            case "on_corrupt":
                let names = StateSettings.OnCorrupt.allCases.map(\.rawValue)
                let text = try reader.text(item.value, item.path, what: names.joined(separator: " or "))
                guard let value = StateSettings.OnCorrupt(rawValue: text) else {
                    throw reader.error(at: item.value, item.path, "expected \(names.joined(separator: " or ")), got \"\(text)\"")
                }
                state.onCorrupt = value
            default: throw reader.unknownKey(item, allowed: ["file", "audit_log", "on_corrupt"])
            }
        }
        return state
    }
}
