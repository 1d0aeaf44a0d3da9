/// How weighted traffic is divided between pools, in parts per million (0.0001 %
/// resolution). The shares always add up to exactly 1 000 000.
///
/// Pools take consecutive bucket ranges in pool order: the first pool's range starts at
/// bucket 0 and the last pool's ends at 999 999. A pool at either end therefore only
/// gains buckets when its share grows, so ramping a canary placed last (or first) only
/// ever moves users *into* it.
public struct Split: Hashable, Sendable, CustomStringConvertible {
    /// One share per pool, in pool order.
    public let partsPerMillion: [UInt32]

    public static let total: UInt32 = 1_000_000

    /// nil unless the shares add up to exactly 1 000 000.
    public init?(partsPerMillion: [UInt32]) {
        guard !partsPerMillion.isEmpty,
            partsPerMillion.reduce(UInt64(0), { $0 + UInt64($1) }) == UInt64(Split.total)
        else { return nil }
        self.partsPerMillion = partsPerMillion
    }

    /// Everything to the pool at `index` of `count` pools.
    public static func all(to index: Int, of count: Int) -> Split {
        var shares = [UInt32](repeating: 0, count: count)
        shares[index] = total
        return Split(partsPerMillion: shares)!
    }

    /// The index of the pool taking 100 %, if one does.
    public var soleIndex: Int? { partsPerMillion.firstIndex(of: Split.total) }

    /// Exclusive upper bucket of each pool's range, in pool order.
    public var cumulativeBounds: [UInt32] {
        var sum: UInt32 = 0
        return partsPerMillion.map { sum += $0; return sum }
    }

    /// Parts per million of buckets whose pool differs between `self` and `other` (both
    /// over the same pools): the share of sticky traffic a change moves.
    public func movedParts(to other: Split) -> UInt32 {
        precondition(partsPerMillion.count == other.partsPerMillion.count, "splits over the same pools")
        var kept: UInt32 = 0
        var (a0, b0): (UInt32, UInt32) = (0, 0)
        for i in partsPerMillion.indices {
            let a1 = a0 + partsPerMillion[i]
            let b1 = b0 + other.partsPerMillion[i]
            let low = max(a0, b0)
            let high = min(a1, b1)
            if high > low { kept += high - low }
            (a0, b0) = (a1, b1)
        }
        return Split.total - kept
    }

    /// `12.5%`-style text for parts per million (up to four decimals, trailing zeros cut).
    public static func formatPercent(_ ppm: UInt32) -> String {
        let whole = ppm / 10_000
        var frac = ppm % 10_000
        if frac == 0 { return "\(whole)%" }
        var digits = 4
        while frac % 10 == 0 { frac /= 10; digits -= 1 }
        let text = String(frac)
        return "\(whole)." + String(repeating: "0", count: digits - text.count) + text + "%"
    }

    /// Parses `5%`, `0.05%`, `12.3456%` or the same without `%` into parts per million.
    /// nil for more than four decimals, a value over 100, or anything else.
    public static func parsePercent(_ text: String) -> UInt32? {
        var s = Substring(text)
        if s.hasSuffix("%") { s = s.dropLast() }
        let parts = s.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let wholeText = parts.first, !wholeText.isEmpty, wholeText.count <= 3,
            wholeText.allSatisfy({ $0.isASCII && $0.isNumber }), let whole = UInt32(wholeText)
        else { return nil }
        var frac: UInt32 = 0
        if parts.count == 2 {
            let f = parts[1]
            guard !f.isEmpty, f.count <= 4, f.allSatisfy({ $0.isASCII && $0.isNumber }), let v = UInt32(f) else {
                return nil
            }
            frac = v
            for _ in f.count..<4 { frac *= 10 }
        }
        let ppm = whole * 10_000 + frac
        return ppm <= total ? ppm : nil
    }

    public var description: String {
        partsPerMillion.map { Split.formatPercent($0) }.joined(separator: " ")
    }
}
