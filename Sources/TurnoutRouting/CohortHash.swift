/// The fixed keyed hash that maps a cohort key to a bucket: SipHash-2-4 with a constant
/// key, so every worker and every restart puts the same key in the same bucket.
public enum CohortHash {
    /// Buckets are 0 ..< `bucketCount`; one bucket is one part per million of traffic.
    public static let bucketCount: UInt32 = 1_000_000

    static let k0: UInt64 = 0x7475_726E_6F75_7431  // "turnout1"
    static let k1: UInt64 = 0x636F_686F_7274_6B79  // "cohortky"

    /// The bucket of `key` (any bytes: a user id, a cookie value, an address).
    public static func bucket(of key: UnsafeRawBufferPointer) -> UInt32 {
        UInt32(truncatingIfNeeded: sipHash24(key) % UInt64(bucketCount))
    }

    /// The bucket of an IP address (its 16 bytes in network order).
    public static func bucket(of address: IPAddress) -> UInt32 {
        var words = (address.high.bigEndian, address.low.bigEndian)
        return withUnsafeBytes(of: &words) { bucket(of: $0) }
    }

    /// SipHash-2-4 of `data` under the fixed key.
    static func sipHash24(_ data: UnsafeRawBufferPointer) -> UInt64 {
        var v0: UInt64 = 0x736F_6D65_7073_6575 ^ k0
        var v1: UInt64 = 0x646F_7261_6E64_6F6D ^ k1
        var v2: UInt64 = 0x6C79_6765_6E65_7261 ^ k0
        var v3: UInt64 = 0x7465_6462_7974_6573 ^ k1

        @inline(__always) func round() {
            v0 = v0 &+ v1; v1 = v1.rotl(13); v1 ^= v0; v0 = v0.rotl(32)
            v2 = v2 &+ v3; v3 = v3.rotl(16); v3 ^= v2
            v0 = v0 &+ v3; v3 = v3.rotl(21); v3 ^= v0
            v2 = v2 &+ v1; v1 = v1.rotl(17); v1 ^= v2; v2 = v2.rotl(32)
        }

        let n = data.count
        var i = 0
        while i + 8 <= n {
            var m: UInt64 = 0
            for b in 0..<8 { m |= UInt64(data[i + b]) << UInt64(8 * b) }
            v3 ^= m
            round(); round()
            v0 ^= m
            i += 8
        }
        var last = UInt64(truncatingIfNeeded: n) << 56
        var shift: UInt64 = 0
        while i < n {
            last |= UInt64(data[i]) << shift
            shift += 8
            i += 1
        }
        v3 ^= last
        round(); round()
        v0 ^= last
        v2 ^= 0xFF
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}

extension UInt64 {
    @inline(__always) fileprivate func rotl(_ k: UInt64) -> UInt64 { self << k | self >> (64 - k) }
}
