/// An immutable routing snapshot: the pools, the split between them, the match rules and
/// the cohort and override policies, with everything a decision needs precomputed.
///
/// A change never mutates a table: it builds a new one with a higher `generation` and
/// publishes it whole, so a request reads exactly one consistent table.
public final class RouteTable: Sendable {
    /// The most pools a table holds (availability travels as one 64-bit mask).
    public static let maxPools = 64

    public let generation: UInt64
    public let pools: [Pool]
    /// The split of requests that match no rule.
    public let split: Split
    public let policy: RoutingPolicy

    // Precomputed for `decide` (read-only after init).
    /// Cumulative bucket bounds, `pools.count` per route: rules in order, then the default.
    let bounds: [UInt32]
    let shares: [UInt32]
    let poolNames: [[UInt8]]
    let ruleHosts: [[UInt8]?]
    let ruleHostIsWildcard: [Bool]
    let rulePrefixes: [[UInt8]?]
    let token: [UInt8]?

    // Names the worker looks for in a request head (lowercased header names, cookie names as is).
    public let overrideHeaderName: [UInt8]?
    public let overrideCookieName: [UInt8]?
    public let cohortHeaderName: [UInt8]?
    public let cohortCookieName: [UInt8]?
    public let bucketCookieName: [UInt8]?
    public let poolHeaderName: [UInt8]?
    public let poolHeaderNameLowercased: [UInt8]?
    /// True when a decision needs header fields of the request (overrides or a cohort header or cookie).
    public let readsRequestFields: Bool
    /// True when a decision needs cookies.
    public let readsCookies: Bool
    /// True when routing control fields must be removed from forwarded requests.
    public let stripsRequestFields: Bool

    /// `split` and every rule's split must have one share per pool.
    public init(generation: UInt64, pools: [Pool], split: Split, policy: RoutingPolicy = RoutingPolicy()) {
        precondition(!pools.isEmpty && pools.count <= RouteTable.maxPools, "1 to 64 pools")
        precondition(split.partsPerMillion.count == pools.count, "one share per pool")
        self.generation = generation
        self.pools = pools
        self.split = split
        self.policy = policy
        var bounds: [UInt32] = []
        var shares: [UInt32] = []
        for s in policy.rules.map(\.split) + [split] {
            precondition(s.partsPerMillion.count == pools.count, "one share per pool in every rule")
            bounds += s.cumulativeBounds
            shares += s.partsPerMillion
        }
        self.bounds = bounds
        self.shares = shares
        poolNames = pools.map { Array($0.name.utf8) }
        ruleHosts = policy.rules.map { rule in
            rule.host.map { host in
                Array((host.hasPrefix("*.") ? String(host.dropFirst(1)) : host).lowercased().utf8)
            }
        }
        ruleHostIsWildcard = policy.rules.map { $0.host?.hasPrefix("*.") ?? false }
        rulePrefixes = policy.rules.map { $0.pathPrefix.map { Array($0.utf8) } }
        token = policy.overrides.token.map { Array($0.utf8) }
        overrideHeaderName = policy.overrides.header.map { Array($0.lowercased().utf8) }
        overrideCookieName = policy.overrides.cookie.map { Array($0.utf8) }
        cohortHeaderName = policy.cohort.header.map { Array($0.lowercased().utf8) }
        cohortCookieName = policy.cohort.cookie.map { Array($0.utf8) }
        bucketCookieName = policy.cohort.bucketCookie.map { Array($0.name.utf8) }
        poolHeaderName = policy.poolHeader.map { Array($0.utf8) }
        poolHeaderNameLowercased = policy.poolHeader.map { Array($0.lowercased().utf8) }
        readsCookies = overrideCookieName != nil || cohortCookieName != nil || bucketCookieName != nil
        readsRequestFields = readsCookies || overrideHeaderName != nil || cohortHeaderName != nil
        stripsRequestFields = overrideHeaderName != nil || poolHeaderName != nil
    }

    /// Everything to one pool (`active: NAME`).
    public convenience init(generation: UInt64, pools: [Pool], activePoolIndex: Int, policy: RoutingPolicy = RoutingPolicy()) {
        self.init(
            generation: generation, pools: pools, split: .all(to: activePoolIndex, of: pools.count), policy: policy)
    }

    /// Index of the pool named `name`, or nil.
    public func poolIndex(named name: String) -> Int? {
        pools.firstIndex { $0.name == name }
    }

    /// The same table with another generation, split or policy.
    public func with(generation: UInt64, split: Split? = nil, policy: RoutingPolicy? = nil) -> RouteTable {
        RouteTable(generation: generation, pools: pools, split: split ?? self.split, policy: policy ?? self.policy)
    }

    /// True when the default split or a rule gives pool `poolIndex` a share above 0.
    public func receivesWeightedTraffic(poolIndex: Int) -> Bool {
        var r = poolIndex
        while r < shares.count {
            if shares[r] > 0 { return true }
            r += pools.count
        }
        return false
    }

    /// Name bytes of pool `index` (for logs and the pool header).
    public func poolNameBytes(_ index: Int) -> [UInt8] { poolNames[index] }
}
