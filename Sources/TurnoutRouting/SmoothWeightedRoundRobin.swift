/// Smooth weighted round robin (the nginx algorithm): over any window of
/// `sum(weights)` picks each member is chosen exactly `weight` times, interleaved
/// rather than in bursts. Members the caller marks ineligible are skipped.
///
/// The state is per worker and mutated in place; it never allocates after `init`.
public struct SmoothWeightedRoundRobin: Sendable {
    private var weights: [Int]
    private var current: [Int]

    public init(weights: [Int]) {
        self.weights = weights
        self.current = Array(repeating: 0, count: weights.count)
    }

    public var count: Int { weights.count }

    /// Picks the next member among those for which `isEligible` is true; nil when none is.
    public mutating func next(isEligible: (Int) -> Bool) -> Int? {
        var total = 0
        var best = -1
        for i in weights.indices where weights[i] > 0 && isEligible(i) {
            current[i] += weights[i]
            total += weights[i]
            if best < 0 || current[i] > current[best] { best = i }
        }
        guard best >= 0 else { return nil }
        current[best] -= total
        return best
    }
}
