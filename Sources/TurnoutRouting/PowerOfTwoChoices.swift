/// Power-of-two-choices member selection: draw two eligible members with probability
/// proportional to weight, keep the one with fewer outstanding requests per unit of
/// weight. Pure: the caller passes the random bits and the load of each member.
public enum PowerOfTwoChoices {
    /// The chosen member index, or nil when no member is eligible.
    /// - Parameters:
    ///   - weights: member weights (0 never chosen).
    ///   - random: 64 random bits (two 32-bit draws are taken from them).
    ///   - outstanding: requests in flight to member `i`.
    ///   - isEligible: false for members that must be skipped (down, draining).
    public static func pick(
        weights: [Int], random: UInt64, outstanding: (Int) -> Int, isEligible: (Int) -> Bool
    ) -> Int? {
        var total = 0
        for i in weights.indices where weights[i] > 0 && isEligible(i) { total += weights[i] }
        guard total > 0 else { return nil }
        let a = draw(weights, UInt32(truncatingIfNeeded: random), total, isEligible)
        let b = draw(weights, UInt32(truncatingIfNeeded: random >> 32), total, isEligible)
        // Compare outstanding/weight without division: oa * wb vs ob * wa.
        let la = outstanding(a) * weights[b]
        let lb = outstanding(b) * weights[a]
        if la != lb { return la < lb ? a : b }
        return weights[a] >= weights[b] ? a : b
    }

    private static func draw(_ weights: [Int], _ r: UInt32, _ total: Int, _ isEligible: (Int) -> Bool) -> Int {
        var point = Int((UInt64(r) * UInt64(total)) >> 32)
        var last = 0
        for i in weights.indices where weights[i] > 0 && isEligible(i) {
            if point < weights[i] { return i }
            point -= weights[i]
            last = i
        }
        return last
    }
}
