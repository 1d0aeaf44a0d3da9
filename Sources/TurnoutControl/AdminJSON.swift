import TurnoutRouting

#if canImport(Glibc)
    import Glibc
#endif

/// Reading admin request bodies (JSON) into changes, and writing JSON answers.
enum AdminJSON {
    static func parseNetwork(_ text: String) -> IPNetwork? {
        if case .valid(let n) = NetworkSyntax.parse(text) { return n }
        return nil
    }

    /// The body as a JSON object; an empty body is an empty object. Invalid JSON is refused
    /// with the parser's reason (where and what).
    static func object(_ body: [UInt8]) throws(AdminError) -> [String: Any] {
        if body.isEmpty || body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return [:] }
        let value: Any
        do {
            value = try JSON.parse(body)
        } catch {
            throw AdminError(400, "the body must be a JSON object: \(error)")
        }
        guard let object = value as? [String: Any] else { throw AdminError(400, "the body must be a JSON object") }
        return object
    }

    /// A percentage: `"5%"`, `"0.05%"`, `"5"` or the number 5 (or 5.0) or 0.05; up to four decimals.
    static func percent(_ value: Any, key: String) throws(AdminError) -> UInt32 {
        let text: String
        if let s = value as? String {
            text = s
        } else if value is Bool {
            throw AdminError(400, "\(key): expected a percentage such as \"5%\" or 0.05, got a boolean")
        } else if let n = JSON.integer(value) {
            text = String(n)
        } else if let d = value as? Double {
            text = "\(d)"
        } else {
            throw AdminError(400, "\(key): expected a percentage such as \"5%\" or 0.05")
        }
        guard let ppm = Split.parsePercent(text) else {
            throw AdminError(422, "\(key): \"\(text)\" is not a percentage from 0% to 100% with up to four decimals")
        }
        return ppm
    }

    /// `{"blue": "90%", "green": "10%"}` over `pools`; pools not named get 0 %.
    static func split(_ value: Any, pools: [Pool]) throws(AdminError) -> Split {
        guard let object = value as? [String: Any], !object.isEmpty else {
            throw AdminError(400, "split: expected an object of pool names to percentages")
        }
        var shares = [UInt32](repeating: 0, count: pools.count)
        for (name, share) in object {
            guard let i = pools.firstIndex(where: { $0.name == name }) else {
                throw AdminError(404, "split: no pool is named \"\(name)\"; the pools are: \(pools.map(\.name).joined(separator: ", "))")
            }
            shares[i] = try percent(share, key: "split.\(name)")
        }
        guard let split = Split(partsPerMillion: shares) else {
            let sum = shares.reduce(0, +)
            throw AdminError(422, "split: the shares add up to \(Split.formatPercent(sum)); they must add up to exactly 100%")
        }
        return split
    }

    static func flip(_ value: Any, pools: [Pool]) throws(AdminError) -> Split {
        guard let name = value as? String else { throw AdminError(400, "pool: expected a pool name") }
        guard let i = pools.firstIndex(where: { $0.name == name }) else {
            throw AdminError(404, "no pool is named \"\(name)\"; the pools are: \(pools.map(\.name).joined(separator: ", "))")
        }
        return Split.all(to: i, of: pools.count)
    }

    static func address(_ value: Any?, key: String) throws(AdminError) -> MemberAddress {
        guard let text = value as? String else { throw AdminError(400, "\(key): expected \"host:port\"") }
        guard let address = MemberAddress.parse(text), SocketAddressCheck.isIPLiteral(address.host) else {
            throw AdminError(422, "\(key): \"\(text)\" is not an IP address and port such as 10.0.0.5:8080 or [::1]:8080")
        }
        return address
    }

    /// One member change: `{"pool", "address", "action", "weight"?}`.
    static func memberChange(_ value: Any, index: Int) throws(AdminError) -> MemberChange {
        let key = "members[\(index)]"
        guard let object = value as? [String: Any] else { throw AdminError(400, "\(key): expected an object") }
        guard let pool = object["pool"] as? String else { throw AdminError(400, "\(key).pool: expected a pool name") }
        let address = try address(object["address"], key: "\(key).address")
        guard let actionText = object["action"] as? String, let action = MemberAction(rawValue: actionText) else {
            throw AdminError(400, "\(key).action: expected one of \(MemberAction.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var weight: Int?
        if let w = object["weight"] {
            guard let n = JSON.integer(w) else { throw AdminError(400, "\(key).weight: expected an integer") }
            weight = n
        }
        return MemberChange(pool: pool, address: address, action: action, weight: weight)
    }

    /// `{"header", "cookie", "trusted_networks", "token"}`; absent keys turn that part off.
    static func overrides(_ value: Any) throws(AdminError) -> OverridePolicy {
        guard let object = value as? [String: Any] else { throw AdminError(400, "overrides: expected an object") }
        var policy = OverridePolicy()
        for (key, v) in object {
            switch key {
            case "header", "cookie":
                guard let name = v as? String, ConfigValues.isHeaderToken(name) else {
                    throw AdminError(422, "overrides.\(key): expected a name of letters, digits and !#$%&'*+-.^_`|~")
                }
                if key == "header" { policy.header = name } else { policy.cookie = name }
            case "trusted_networks":
                guard let list = v as? [String] else { throw AdminError(400, "overrides.trusted_networks: expected a list of networks") }
                for text in list {
                    guard let n = parseNetwork(text) else { throw AdminError(422, "overrides.trusted_networks: \"\(text)\" is not a network") }
                    policy.trustedNetworks.append(n)
                }
            case "token":
                guard let token = v as? String, ConfigValues.isOverrideToken(token) else {
                    throw AdminError(422, "overrides.token: expected at least 8 characters from A-Z a-z 0-9 - . _ ~ + / =")
                }
                policy.token = token
            default:
                throw AdminError(400, "overrides.\(key): unknown key; expected header, cookie, trusted_networks, token")
            }
        }
        return policy
    }

    /// A boolean option such as `dry_run`: false when absent; only `true` or `false` are taken.
    static func flag(_ value: Any?, key: String) throws(AdminError) -> Bool {
        guard let value else { return false }
        guard let flag = value as? Bool else { throw AdminError(400, "\(key): expected true or false") }
        return flag
    }

    /// A whole transaction body: `split` or `flip`, `members`, `overrides`.
    static func change(_ object: [String: Any], pools: [Pool]) throws(AdminError) -> RoutingChange {
        var change = RoutingChange()
        for key in object.keys where !["split", "flip", "members", "overrides", "dry_run"].contains(key) {
            throw AdminError(400, "\(key): unknown key; a change takes split, flip, members, overrides, dry_run")
        }
        if object["split"] != nil && object["flip"] != nil { throw AdminError(400, "give either split or flip, not both") }
        if let s = object["split"] { change.split = try split(s, pools: pools) }
        if let f = object["flip"] { change.split = try flip(f, pools: pools) }
        if let m = object["members"] {
            guard let list = m as? [Any] else { throw AdminError(400, "members: expected a list") }
            for (i, item) in list.enumerated() { change.members.append(try memberChange(item, index: i)) }
        }
        if let o = object["overrides"] { change.overrides = try overrides(o) }
        return change
    }

    /// Pretty, sorted JSON bytes with a final newline (`{}` if `object` is not JSON).
    static func encode(_ object: Any) -> [UInt8] {
        let bytes = (try? JSON.serialize(object, pretty: true, sortedKeys: true)) ?? Array("{}".utf8)
        return bytes + [0x0A]
    }

    /// The override policy for humans (the token itself is never shown).
    static func overridesJSON(_ o: OverridePolicy) -> [String: Any] {
        var out: [String: Any] = [
            "enabled": !o.isDisabled, "trusted_networks": o.trustedNetworks.map(\.description), "token_required": o.token != nil,
        ]
        if let h = o.header { out["header"] = h }
        if let c = o.cookie { out["cookie"] = c }
        return out
    }
}

/// IP literal check without the socket layer.
enum SocketAddressCheck {
    static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return host.withCString { inet_pton(AF_INET, $0, &v4) == 1 || inet_pton(AF_INET6, $0, &v6) == 1 }
    }
}
