import TurnoutRouting

/// The part of routing that operators change while Turnout runs: the default split, the
/// members of each pool (added, removed, drained), and the override policy. Pool names,
/// their order, cohort settings and match rules come from the configuration file.
///
/// A value type: a change builds a new state from the old one, or fails and leaves the
/// old one as it was.
public struct RoutingState: Equatable, Sendable {
    public var split: Split
    public var pools: [Pool]
    public var overrides: OverridePolicy

    public init(split: Split, pools: [Pool], overrides: OverridePolicy) {
        self.split = split
        self.pools = pools
        self.overrides = overrides
    }

    /// The state a configuration starts with.
    public init(config: TurnoutConfig) {
        self.init(split: config.split, pools: config.pools, overrides: config.routing.overrides)
    }

    /// The snapshot workers route by.
    public func makeRouteTable(generation: UInt64, config: TurnoutConfig) -> RouteTable {
        var policy = config.routing
        policy.overrides = overrides
        return RouteTable(generation: generation, pools: pools, split: split, policy: policy)
    }

    /// The pool taking 100 %, if one does.
    public var activePool: String? { split.soleIndex.map { pools[$0].name } }

    public func poolIndex(_ name: String) -> Int? { pools.firstIndex { $0.name == name } }
}

/// A refused admin request: the HTTP status and what is wrong.
public struct AdminError: Error, Equatable, CustomStringConvertible {
    public var status: Int
    public var message: String

    public init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }
}

/// What an operator does to one member.
public enum MemberAction: String, Sendable, CaseIterable {
    /// No new requests; requests in flight finish.
    case drain
    /// Takes requests again.
    case enable
    /// Joins the pool.
    case add
    /// Leaves the pool (requests in flight finish).
    case remove
}

/// One member change inside a transaction.
public struct MemberChange: Equatable, Sendable {
    public var pool: String
    public var address: MemberAddress
    public var action: MemberAction
    /// For `add` (default 1).
    public var weight: Int?

    public init(pool: String, address: MemberAddress, action: MemberAction, weight: Int? = nil) {
        self.pool = pool
        self.address = address
        self.action = action
        self.weight = weight
    }
}

/// Everything one admin call changes, applied as one transaction.
public struct RoutingChange: Equatable, Sendable {
    /// The new default split (`flip` is a split of 100 % to one pool).
    public var split: Split?
    public var members: [MemberChange] = []
    public var overrides: OverridePolicy?

    public init(split: Split? = nil, members: [MemberChange] = [], overrides: OverridePolicy? = nil) {
        self.split = split
        self.members = members
        self.overrides = overrides
    }

    public var isEmpty: Bool { split == nil && members.isEmpty && overrides == nil }
}

extension RoutingState {
    /// The state after `change`, or the reason it cannot be applied (nothing is applied then).
    public func applying(_ change: RoutingChange) throws(AdminError) -> RoutingState {
        var next = self
        if let split = change.split {
            guard split.partsPerMillion.count == pools.count else {
                throw AdminError(422, "the split must give one share per pool")
            }
            next.split = split
        }
        for m in change.members {
            guard let p = next.poolIndex(m.pool) else {
                throw AdminError(404, "no pool is named \"\(m.pool)\"; the pools are: \(pools.map(\.name).joined(separator: ", "))")
            }
            let existing = next.pools[p].members.firstIndex { $0.address == m.address }
            switch m.action {
            case .add:
                guard existing == nil else { throw AdminError(409, "\(m.address) is already a member of \(m.pool)") }
                let weight = m.weight ?? 1
                guard (0...10_000).contains(weight) else { throw AdminError(422, "weight must be from 0 to 10000") }
                next.pools[p].members.append(PoolMember(address: m.address, weight: weight))
            case .remove, .drain, .enable:
                guard let i = existing else { throw AdminError(404, "\(m.address) is not a member of \(m.pool)") }
                switch m.action {
                case .remove:
                    guard next.pools[p].members.count > 1 else {
                        throw AdminError(422, "\(m.address) is the last member of \(m.pool); a pool needs at least one")
                    }
                    next.pools[p].members.remove(at: i)
                case .drain: next.pools[p].members[i].isDrained = true
                case .enable: next.pools[p].members[i].isDrained = false
                case .add: break
                }
            }
            guard next.pools[p].members.contains(where: { $0.weight > 0 }) else {
                throw AdminError(422, "pool \(m.pool) would have no member with a weight above 0")
            }
        }
        if let overrides = change.overrides { next.overrides = overrides }
        return next
    }

    /// Pools that get a share of the split but have no member taking traffic.
    public var poolsWithoutTakers: [String] {
        pools.indices.filter { split.partsPerMillion[$0] > 0 && !pools[$0].members.contains(where: \.takesTraffic) }
            .map { pools[$0].name }
    }
}

// MARK: - JSON

extension RoutingState {
    /// `{"blue": "95%", "green": "5%"}` for every pool, in pool order when serialised sorted.
    public func splitJSON() -> [String: Any] {
        var out: [String: Any] = [:]
        for (i, p) in pools.enumerated() { out[p.name] = Split.formatPercent(split.partsPerMillion[i]) }
        return out
    }

    /// The durable form (state file and rollback history): exact shares in parts per million.
    func durableJSON() -> [String: Any] {
        var split: [String: Any] = [:]
        for (i, p) in pools.enumerated() { split[p.name] = Int(self.split.partsPerMillion[i]) }
        var pools: [String: Any] = [:]
        for p in self.pools {
            pools[p.name] = p.members.map { ["address": $0.address.description, "weight": $0.weight, "drained": $0.isDrained] as [String: Any] }
        }
        var overrides: [String: Any] = ["trusted_networks": self.overrides.trustedNetworks.map(\.description)]
        if let h = self.overrides.header { overrides["header"] = h }
        if let c = self.overrides.cookie { overrides["cookie"] = c }
        if let t = self.overrides.token { overrides["token"] = t }
        return ["split": split, "pools": pools, "overrides": overrides]
    }

    /// Reads the durable form against the configured pools. Pools are taken from the file
    /// where both have them; a pool only the configuration has keeps its configured
    /// members; a split naming unknown pools is refused.
    static func fromDurableJSON(_ json: [String: Any], config: TurnoutConfig) throws -> RoutingState {
        guard let splitJSON = json["split"] as? [String: Any], let poolsJSON = json["pools"] as? [String: Any] else {
            throw StateFileError("missing \"split\" or \"pools\"")
        }
        var shares = [UInt32](repeating: 0, count: config.pools.count)
        for (name, value) in splitJSON {
            guard let i = config.pools.firstIndex(where: { $0.name == name }) else {
                throw StateFileError("the split names pool \"\(name)\", which the configuration does not have")
            }
            guard let n = JSON.integer(value), (0...Int(Split.total)).contains(n) else {
                throw StateFileError("bad share for \(name)")
            }
            shares[i] = UInt32(n)
        }
        guard let split = Split(partsPerMillion: shares) else { throw StateFileError("the split does not add up to 100%") }
        var pools = config.pools
        for (i, pool) in pools.enumerated() {
            guard let list = poolsJSON[pool.name] else { continue }
            pools[i].members = try members(fromDurable: list, pool: pool.name)
        }
        let overrides = try overrides(fromDurable: json["overrides"], otherwise: config.routing.overrides)
        return RoutingState(split: split, pools: pools, overrides: overrides)
    }

    /// One pool's members in the durable form (at least one).
    private static func members(fromDurable json: Any, pool: String) throws -> [PoolMember] {
        guard let items = json as? [[String: Any]], !items.isEmpty else { throw StateFileError("bad members for \(pool)") }
        var members: [PoolMember] = []
        for item in items {
            // `drained` may be absent (false); a value other than true or false is refused, not guessed.
            let drained = item["drained"] ?? false
            guard let text = item["address"] as? String, let address = MemberAddress.parse(text),
                let weight = JSON.integer(item["weight"]), (0...10_000).contains(weight),
                let isDrained = drained as? Bool
            else { throw StateFileError("bad member in \(pool)") }
            members.append(PoolMember(address: address, weight: weight, isDrained: isDrained))
        }
        return members
    }

    /// The override policy in the durable form, or `otherwise` when the form has none.
    private static func overrides(fromDurable json: Any?, otherwise: OverridePolicy) throws -> OverridePolicy {
        guard let o = json as? [String: Any] else { return otherwise }
        var overrides = otherwise
        overrides.header = o["header"] as? String
        overrides.cookie = o["cookie"] as? String
        overrides.token = o["token"] as? String
        var networks: [IPNetwork] = []
        for text in o["trusted_networks"] as? [String] ?? [] {
            guard let n = AdminJSON.parseNetwork(text) else { throw StateFileError("bad network \(text)") }
            networks.append(n)
        }
        overrides.trustedNetworks = networks
        return overrides
    }
}

// MARK: - Restarting under an edited configuration

extension RoutingState {
    /// The state to start from when the state file holds `saved`, written while the
    /// configuration's own values were `baseline` (the durable form, as the file recorded
    /// it), and the configuration now gives `configured`. Each part an operator can also
    /// change at run time (the split, each pool's members, the override policy) keeps the
    /// file's value, so a restart never undoes a flip, unless the configuration's value for
    /// that part is not what it was when the file was written: then someone edited the
    /// configuration since, and the edit wins. Returns the state and the parts taken from the
    /// configuration (`split`, `members of blue`, `overrides`), in that order.
    static func reconciling(saved: RoutingState, baseline: [String: Any], configured: RoutingState)
        -> (state: RoutingState, edited: [String])
    {
        var state = saved
        var edited: [String] = []
        if splitShares(baseline["split"]) != configured.namedShares {
            state.split = configured.split
            edited.append("split")
        }
        let baselinePools = baseline["pools"] as? [String: Any] ?? [:]
        for (i, pool) in configured.pools.enumerated() {
            // A pool the file's configuration did not have keeps its configured members already.
            guard let then = baselinePools[pool.name] else { continue }
            if (try? members(fromDurable: then, pool: pool.name)) != pool.members {
                state.pools[i].members = pool.members
                edited.append("members of \(pool.name)")
            }
        }
        // An unreadable record of the overrides counts as an edit: the configuration's stand.
        if (try? overrides(fromDurable: baseline["overrides"], otherwise: OverridePolicy())) != configured.overrides {
            state.overrides = configured.overrides
            edited.append("overrides")
        }
        return (state, edited)
    }

    /// Pool name to share, without the pools at 0 % (a pool added at 0 % leaves the split as it was).
    private var namedShares: [String: Int] {
        var out: [String: Int] = [:]
        for (i, p) in pools.enumerated() where split.partsPerMillion[i] > 0 { out[p.name] = Int(split.partsPerMillion[i]) }
        return out
    }

    private static func splitShares(_ json: Any?) -> [String: Int]? {
        guard let object = json as? [String: Any] else { return nil }
        var out: [String: Int] = [:]
        for (name, value) in object {
            guard let n = JSON.integer(value) else { return nil }
            if n > 0 { out[name] = n }
        }
        return out
    }
}

/// A state file that cannot be used.
public struct StateFileError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
