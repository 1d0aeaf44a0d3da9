/// An immutable routing snapshot: the pools and which one takes traffic.
///
/// A change never mutates a table: it builds a new one with a higher `generation`
/// and publishes it whole, so a request reads exactly one consistent table.
public final class RouteTable: Sendable {
    public let generation: UInt64
    public let pools: [Pool]
    /// Index into `pools` of the pool that receives traffic.
    public let activePoolIndex: Int

    public init(generation: UInt64, pools: [Pool], activePoolIndex: Int) {
        precondition(pools.indices.contains(activePoolIndex), "active pool must be one of the pools")
        self.generation = generation
        self.pools = pools
        self.activePoolIndex = activePoolIndex
    }

    /// Index of the pool named `name`, or nil.
    public func poolIndex(named name: String) -> Int? {
        pools.firstIndex { $0.name == name }
    }
}

/// Why a request went to the pool it went to.
public enum RoutingReason: UInt8, Sendable {
    case active
}

/// The outcome of routing one request.
public struct RoutingDecision: Equatable, Sendable {
    public var poolIndex: Int
    public var reason: RoutingReason

    public init(poolIndex: Int, reason: RoutingReason) {
        self.poolIndex = poolIndex
        self.reason = reason
    }
}

extension RouteTable {
    /// Chooses the pool for a request. Pure: same table, same answer.
    @inlinable
    public func decide() -> RoutingDecision {
        RoutingDecision(poolIndex: activePoolIndex, reason: .active)
    }
}
