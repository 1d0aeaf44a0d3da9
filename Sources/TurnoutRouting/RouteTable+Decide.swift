/// Why a request went to the pool it went to. Logged and used as a metrics label.
public enum RoutingReason: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// The split, by a bucket that is not sticky (the client address, or a bucket cookie
    /// issued with this response).
    case weight
    /// An override header named the pool.
    case header
    /// An override cookie named the pool.
    case cookie
    /// The split, by a sticky cohort key (a user id, or a bucket cookie the client sent).
    case sticky
    /// The pool the split chose has no available member; another pool took the request.
    case fallback

    /// The reason's name, without allocating (for log lines).
    public var staticName: StaticString {
        switch self {
        case .weight: return "weight"
        case .header: return "header"
        case .cookie: return "cookie"
        case .sticky: return "sticky"
        case .fallback: return "fallback"
        }
    }

    public var description: String { "\(staticName)" }
}

/// Why an override present in the request was not followed.
public enum IgnoredOverride: UInt8, Sendable {
    case none
    /// The value names no pool of the table.
    case unknownPool
    /// The client is outside `trusted_networks` or the token is missing or wrong.
    case untrusted
    /// The named pool has no available member.
    case unavailable
}

/// The parts of a request that routing reads, as views into the request head. Every
/// optional is nil when the request does not carry it (or the policy does not use it).
public struct RoutingRequest {
    /// `Host` value (a port is ignored); empty when absent.
    public var host: UnsafeRawBufferPointer
    /// The request target (origin-form path and query).
    public var path: UnsafeRawBufferPointer
    public var overrideHeader: UnsafeRawBufferPointer?
    public var overrideCookie: UnsafeRawBufferPointer?
    public var cohortHeader: UnsafeRawBufferPointer?
    public var cohortCookie: UnsafeRawBufferPointer?
    public var bucketCookie: UnsafeRawBufferPointer?
    public var client: IPAddress
    /// `CohortHash.bucket(of: client)` when the caller has it already (a client connection
    /// computes it once for all its requests); nil: computed here when needed.
    public var clientBucket: UInt32?
    /// Random bits, used only to place a visitor who gets a new bucket cookie.
    public var random: UInt32

    @inlinable
    public init(
        host: UnsafeRawBufferPointer, path: UnsafeRawBufferPointer, client: IPAddress, random: UInt32,
        overrideHeader: UnsafeRawBufferPointer? = nil, overrideCookie: UnsafeRawBufferPointer? = nil,
        cohortHeader: UnsafeRawBufferPointer? = nil, cohortCookie: UnsafeRawBufferPointer? = nil,
        bucketCookie: UnsafeRawBufferPointer? = nil, clientBucket: UInt32? = nil
    ) {
        self.host = host
        self.path = path
        self.client = client
        self.clientBucket = clientBucket
        self.random = random
        self.overrideHeader = overrideHeader
        self.overrideCookie = overrideCookie
        self.cohortHeader = cohortHeader
        self.cohortCookie = cohortCookie
        self.bucketCookie = bucketCookie
    }
}

/// The outcome of routing one request: a small value, no allocation.
public struct RoutingDecision: Equatable, Sendable {
    public var poolIndex: Int
    public var reason: RoutingReason
    /// Index of the matching rule, or -1 for the default split.
    public var ruleIndex: Int
    /// The request's bucket (0 ..< 1 000 000).
    public var bucket: UInt32
    /// Send `Set-Cookie` with `bucket` in the response.
    public var issueBucketCookie: Bool
    public var ignoredOverride: IgnoredOverride

    public init(
        poolIndex: Int, reason: RoutingReason, ruleIndex: Int = -1, bucket: UInt32 = 0,
        issueBucketCookie: Bool = false, ignoredOverride: IgnoredOverride = .none
    ) {
        self.poolIndex = poolIndex
        self.reason = reason
        self.ruleIndex = ruleIndex
        self.bucket = bucket
        self.issueBucketCookie = issueBucketCookie
        self.ignoredOverride = ignoredOverride
    }
}

extension RouteTable {
    /// All pools available (every bit set).
    public static let allAvailable: UInt64 = ~0

    /// Chooses the pool for a request. Pure and allocation-free: the same table, request
    /// and availability always give the same decision.
    /// - Parameter available: bit `i` set when pool `i` has a member that can take traffic.
    public func decide(_ request: RoutingRequest, available: UInt64 = RouteTable.allAvailable) -> RoutingDecision {
        let rule = matchRule(request)
        var decision = RoutingDecision(poolIndex: 0, reason: .weight, ruleIndex: rule)

        // The cohort bucket, computed first: a bucket cookie is issued even when an
        // override decides this request, so the visitor is sticky from the first visit.
        var sticky = false
        if let key = request.cohortCookie, key.count > 0 {
            decision.bucket = CohortHash.bucket(of: key)
            sticky = true
        } else if let key = request.cohortHeader, key.count > 0 {
            decision.bucket = CohortHash.bucket(of: key)
            sticky = true
        } else if bucketCookieName != nil {
            if let text = request.bucketCookie, let b = RouteTable.parseBucket(text) {
                decision.bucket = b
                sticky = true
            } else {
                decision.bucket = request.random % CohortHash.bucketCount
                decision.issueBucketCookie = true
            }
        } else {
            decision.bucket = request.clientBucket ?? CohortHash.bucket(of: request.client)
        }

        // Overrides: header first, then cookie.
        if let value = request.overrideHeader {
            let (pool, outcome) = checkOverride(value, tokenSeparator: .header, client: request.client, available)
            if let pool {
                decision.poolIndex = pool
                decision.reason = .header
                return decision
            }
            decision.ignoredOverride = outcome
        }
        if let value = request.overrideCookie {
            let (pool, outcome) = checkOverride(value, tokenSeparator: .cookie, client: request.client, available)
            if let pool {
                decision.poolIndex = pool
                decision.reason = .cookie
                return decision
            }
            if decision.ignoredOverride == .none { decision.ignoredOverride = outcome }
        }

        // The split.
        let base = (rule < 0 ? policy.rules.count : rule) * pools.count
        var chosen = pools.count - 1
        for i in 0..<pools.count where decision.bucket < bounds[base + i] {
            chosen = i
            break
        }
        decision.reason = sticky ? .sticky : .weight
        if available & (1 << UInt64(chosen)) != 0 {
            decision.poolIndex = chosen
            return decision
        }
        if let other = fallbackPool(base: base, bucket: decision.bucket, available: available) {
            decision.poolIndex = other
            decision.reason = .fallback
        } else {
            decision.poolIndex = chosen  // nothing can take it; the worker answers 503
        }
        return decision
    }

    /// Another available pool: among the available pools with a share in this split,
    /// proportionally (the bucket is spread over their shares); else the first available
    /// pool in order; nil when none is available.
    private func fallbackPool(base: Int, bucket: UInt32, available: UInt64) -> Int? {
        var total: UInt64 = 0
        for i in 0..<pools.count where available & (1 << UInt64(i)) != 0 { total += UInt64(shares[base + i]) }
        if total > 0 {
            var point = UInt64(bucket) * total / UInt64(CohortHash.bucketCount)
            for i in 0..<pools.count where available & (1 << UInt64(i)) != 0 {
                let s = UInt64(shares[base + i])
                if point < s { return i }
                point -= s
            }
        }
        for i in 0..<pools.count where available & (1 << UInt64(i)) != 0 { return i }
        return nil
    }

    enum TokenSeparator { case header, cookie }

    /// The pool an override value names, if it may be followed.
    private func checkOverride(
        _ value: UnsafeRawBufferPointer, tokenSeparator: TokenSeparator, client: IPAddress, _ available: UInt64
    ) -> (Int?, IgnoredOverride) {
        // Split `POOL;token=T` (header) or `POOL:T` (cookie).
        var nameEnd = value.count
        var tokenStart = -1
        switch tokenSeparator {
        case .header:
            if let semi = value.firstIndex(of: 0x3B) {
                nameEnd = semi
                var i = semi + 1
                while i < value.count && (value[i] == 0x20 || value[i] == 0x09) { i += 1 }
                let prefix: StaticString = "token="
                if value.count - i >= prefix.utf8CodeUnitCount,
                    HTTPCase.equalsLowercase(value, i, prefix)
                {
                    tokenStart = i + prefix.utf8CodeUnitCount
                }
            }
        case .cookie:
            if let colon = value.firstIndex(of: 0x3A) {
                nameEnd = colon
                tokenStart = colon + 1
            }
        }
        while nameEnd > 0 && (value[nameEnd - 1] == 0x20 || value[nameEnd - 1] == 0x09) { nameEnd -= 1 }
        var nameStart = 0
        while nameStart < nameEnd && (value[nameStart] == 0x20 || value[nameStart] == 0x09) { nameStart += 1 }

        let trusted = policy.overrides.trustedNetworks
        if !trusted.isEmpty && !trusted.contains(where: { $0.contains(client) }) { return (nil, .untrusted) }
        if let token {
            guard tokenStart >= 0 else { return (nil, .untrusted) }
            var end = value.count
            while end > tokenStart && (value[end - 1] == 0x20 || value[end - 1] == 0x09) { end -= 1 }
            if !RouteTable.constantTimeEqual(value, tokenStart..<end, token) { return (nil, .untrusted) }
        }
        var found = -1
        for (i, name) in poolNames.enumerated() where name.count == nameEnd - nameStart {
            var same = true
            for k in 0..<name.count where value[nameStart + k] != name[k] {
                same = false
                break
            }
            if same {
                found = i
                break
            }
        }
        guard found >= 0 else { return (nil, .unknownPool) }
        guard available & (1 << UInt64(found)) != 0 else { return (nil, .unavailable) }
        return (found, .none)
    }

    /// Index of the first rule matching the request, or -1.
    private func matchRule(_ request: RoutingRequest) -> Int {
        guard !ruleHosts.isEmpty else { return -1 }
        // The host without its port (and without brackets around an IPv6 literal's port part).
        var hostEnd = request.host.count
        if let colon = request.host.lastIndex(of: 0x3A), request.host.firstIndex(of: 0x5D).map({ $0 < colon }) ?? true {
            hostEnd = colon
        }
        for r in ruleHosts.indices {
            if let host = ruleHosts[r] {
                if ruleHostIsWildcard[r] {
                    // `.example.com` must end the host and leave at least one label before it.
                    guard hostEnd > host.count, HTTPCase.equalsLowercase(request.host, hostEnd - host.count, host)
                    else { continue }
                } else {
                    guard hostEnd == host.count, HTTPCase.equalsLowercase(request.host, 0, host) else { continue }
                }
            }
            if let prefix = rulePrefixes[r] {
                guard request.path.count >= prefix.count else { continue }
                var same = true
                for k in 0..<prefix.count where request.path[k] != prefix[k] {
                    same = false
                    break
                }
                guard same else { continue }
            }
            return r
        }
        return -1
    }

    /// A bucket cookie value: 1 to 6 decimal digits, below 1 000 000.
    static func parseBucket(_ text: UnsafeRawBufferPointer) -> UInt32? {
        guard text.count >= 1 && text.count <= 6 else { return nil }
        var v: UInt32 = 0
        for b in text {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            v = v * 10 + UInt32(b - 0x30)
        }
        return v
    }

    static func constantTimeEqual(_ a: UnsafeRawBufferPointer, _ range: Range<Int>, _ b: [UInt8]) -> Bool {
        var diff = UInt8(truncatingIfNeeded: range.count ^ b.count)
        for k in 0..<b.count {
            let x = range.lowerBound + k < range.upperBound ? a[range.lowerBound + k] : 0
            diff |= x ^ b[k]
        }
        return diff == 0
    }
}

/// ASCII case-insensitive comparison against lowercase text.
enum HTTPCase {
    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }

    static func equalsLowercase(_ a: UnsafeRawBufferPointer, _ at: Int, _ lower: [UInt8]) -> Bool {
        guard at >= 0, a.count - at >= lower.count else { return false }
        for k in 0..<lower.count where HTTPCase.lower(a[at + k]) != lower[k] { return false }
        return true
    }

    static func equalsLowercase(_ a: UnsafeRawBufferPointer, _ at: Int, _ lower: StaticString) -> Bool {
        let n = lower.utf8CodeUnitCount
        guard at >= 0, a.count - at >= n else { return false }
        for k in 0..<n where HTTPCase.lower(a[at + k]) != lower.utf8Start[k] { return false }
        return true
    }
}
