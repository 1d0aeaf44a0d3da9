import Testing
@testable import TurnoutRouting

@Suite("RouteTable split and cohorts")
struct RouteTableSplitTests {
    let cohortByHeader = RoutingPolicy(cohort: CohortPolicy(header: "X-User-Id"))

    @Test(arguments: [
        ["95%", "5%"], ["90%", "10%"], ["50%", "50%"], ["99.95%", "0.05%"],
        ["33.3333%", "33.3333%", "33.3334%"], ["70%", "0%", "30%"],
    ])
    func observedSharesMatchTheWeights(_ percents: [String]) {
        let names = percents.indices.map { "p\($0)" }
        let table = RouteTable(
            generation: 1, pools: names.map { Pool(name: $0, members: [PoolMember(address: MemberAddress(host: "127.0.0.1", port: 1))]) },
            split: Split(partsPerMillion: percents.map { Split.parsePercent($0)! })!, policy: cohortByHeader)
        var rng = SplitMix64(seed: 42)
        var counts = [Int](repeating: 0, count: names.count)
        let n = 200_000
        for _ in 0..<n {
            let key = String(rng.next(), radix: 36)
            counts[decide(table, cohortHeader: key).poolIndex] += 1
        }
        for (i, p) in percents.enumerated() {
            let expected = Double(Split.parsePercent(p)!) / 10_000
            let observed = Double(counts[i]) * 100 / Double(n)
            #expect(abs(observed - expected) <= 0.5, "pool \(i): \(observed)% for a weight of \(expected)%")
        }
    }

    @Test(arguments: [true, false])
    func rampingTheCanaryNeverMovesAKeyOut(canaryLast: Bool) {
        var rng = SplitMix64(seed: canaryLast ? 7 : 8)
        let names = canaryLast ? ["baseline", "canary"] : ["canary", "baseline"]
        let canary = canaryLast ? 1 : 0
        func table(_ canaryPPM: UInt32) -> RouteTable {
            let shares = canaryLast ? [Split.total - canaryPPM, canaryPPM] : [canaryPPM, Split.total - canaryPPM]
            return RouteTable(generation: 1, pools: pools(names[0], names[1]), split: Split(partsPerMillion: shares)!, policy: cohortByHeader)
        }
        for _ in 0..<2_000 {
            let w1 = UInt32(rng.next() % UInt64(Split.total))
            let w2 = w1 + UInt32(rng.next() % UInt64(Split.total - w1 + 1))
            let (t1, t2) = (table(w1), table(w2))
            for _ in 0..<20 {
                let key = String(rng.next(), radix: 16)
                if decide(t1, cohortHeader: key).poolIndex == canary {
                    #expect(decide(t2, cohortHeader: key).poolIndex == canary, "key \(key) left the canary going \(w1) → \(w2) ppm")
                }
            }
        }
    }

    @Test func rampingTheLastOfThreePoolsOnlyMovesKeysIntoIt() {
        var rng = SplitMix64(seed: 9)
        let before = RouteTable(generation: 1, pools: pools("a", "b", "c"), split: split("45%", "45%", "10%"), policy: cohortByHeader)
        let after = RouteTable(generation: 2, pools: pools("a", "b", "c"), split: split("40%", "35%", "25%"), policy: cohortByHeader)
        for _ in 0..<50_000 {
            let key = String(rng.next(), radix: 16)
            if decide(before, cohortHeader: key).poolIndex == 2 { #expect(decide(after, cohortHeader: key).poolIndex == 2) }
        }
    }

    @Test func theSameKeyAlwaysGetsTheSamePool() {
        let table = RouteTable(generation: 1, pools: pools("blue", "green"), split: split("50%", "50%"), policy: cohortByHeader)
        var rng = SplitMix64(seed: 3)
        for _ in 0..<5_000 {
            let key = String(rng.next(), radix: 16)
            let first = decide(table, random: UInt32(truncatingIfNeeded: rng.next()), cohortHeader: key)
            let again = decide(table, random: UInt32(truncatingIfNeeded: rng.next()), cohortHeader: key)
            #expect(first == again)
            #expect(first.reason == .sticky)
        }
    }

    @Test func theKeyPrecedenceIsCookieThenHeaderThenBucketCookieThenAddress() {
        let policy = RoutingPolicy(cohort: CohortPolicy(cookie: "uid", header: "X-User-Id", bucketCookie: BucketCookiePolicy()))
        let table = RouteTable(generation: 1, pools: pools("blue", "green"), split: split("50%", "50%"), policy: policy)
        let byCookie = decide(table, cohortHeader: "h", cohortCookie: "c", bucketCookie: "17")
        let cookieBucket = "c".utf8CString.withUnsafeBytes { CohortHash.bucket(of: UnsafeRawBufferPointer(rebasing: $0.dropLast())) }
        #expect(byCookie.bucket == cookieBucket && byCookie.reason == .sticky && !byCookie.issueBucketCookie)
        let byHeader = decide(table, cohortHeader: "h", bucketCookie: "17")
        #expect(byHeader.bucket != 17 && byHeader.reason == .sticky)
        let byBucket = decide(table, bucketCookie: "17")
        #expect(byBucket.bucket == 17 && byBucket.reason == .sticky && !byBucket.issueBucketCookie)
        let fresh = decide(table, random: 2_000_123)
        #expect(fresh.bucket == 123 && fresh.reason == .weight && fresh.issueBucketCookie)
        for bad in ["", "1000000", "-1", "12a", "0000001"] {
            let d = decide(table, random: 5, bucketCookie: bad)
            #expect(d.issueBucketCookie && d.bucket == 5, "bucket cookie \"\(bad)\" must be replaced")
        }
        let noCookies = RouteTable(generation: 1, pools: pools("blue", "green"), split: split("50%", "50%"))
        let byAddress = decide(noCookies, client: loopback)
        #expect(byAddress.bucket == CohortHash.bucket(of: loopback) && byAddress.reason == .weight && !byAddress.issueBucketCookie)
    }

    @Test func aClientBucketGivenByTheCallerStandsForTheAddress() {
        let table = RouteTable(generation: 1, pools: pools("blue", "green"), split: split("90%", "10%"))
        let computed = CohortHash.bucket(of: publicClient)
        #expect(decide(table, clientBucket: computed) == decide(table))
        // The given bucket is the one used: the address is not hashed again.
        let low = decide(table, clientBucket: 0), high = decide(table, clientBucket: 999_999)
        #expect(low.bucket == 0 && low.poolIndex == 0 && low.reason == .weight)
        #expect(high.bucket == 999_999 && high.poolIndex == 1 && high.reason == .weight)
        // A sticky key still decides over it.
        let sticky = RouteTable(generation: 1, pools: pools("blue", "green"), split: split("90%", "10%"), policy: cohortByHeader)
        let keyed = decide(sticky, cohortHeader: "user-1", clientBucket: 999_999)
        #expect(keyed == decide(sticky, cohortHeader: "user-1") && keyed.reason == .sticky)
    }

    @Test func theBucketDecidesThePoolByCumulativeRanges() {
        let policy = RoutingPolicy(cohort: CohortPolicy(bucketCookie: BucketCookiePolicy()))
        let table = RouteTable(generation: 1, pools: pools("blue", "green"), split: split("90%", "10%"), policy: policy)
        #expect(decide(table, bucketCookie: "0").poolIndex == 0)
        #expect(decide(table, bucketCookie: "899999").poolIndex == 0)
        #expect(decide(table, bucketCookie: "900000").poolIndex == 1)
        #expect(decide(table, bucketCookie: "999999").poolIndex == 1)
    }

    @Test func anUnavailablePoolNeverTakesWeightedTraffic() {
        let table = RouteTable(generation: 1, pools: pools("a", "b", "c"), split: split("20%", "30%", "50%"), policy: cohortByHeader)
        var rng = SplitMix64(seed: 11)
        var counts = [0, 0, 0]
        for _ in 0..<30_000 {
            let d = decide(table, cohortHeader: String(rng.next(), radix: 16), available: 0b101)
            counts[d.poolIndex] += 1
            if d.poolIndex != 1 { #expect(d.reason == .fallback || d.reason == .sticky) }
        }
        #expect(counts[1] == 0)
        // b's 30 % is spread over a and c in proportion to their shares (2:5).
        let aShare = Double(counts[0]) / 30_000
        #expect(abs(aShare - 2.0 / 7.0) < 0.02, "a took \(aShare)")
        // No pool in the split available: the first available pool takes it.
        let onlyB = RouteTable(generation: 1, pools: pools("a", "b"), split: split("100%", "0%"))
        #expect(decide(onlyB, available: 0b10) == RoutingDecision(poolIndex: 1, reason: .fallback, bucket: CohortHash.bucket(of: publicClient)))
        // Nothing available: the split's own choice (the worker answers 503).
        #expect(decide(onlyB, available: 0).poolIndex == 0)
    }
}

@Suite("RouteTable overrides")
struct RouteTableOverrideTests {
    let blueGreen = pools("blue", "green")

    func table(trusted: [IPNetwork] = [], token: String? = nil) -> RouteTable {
        RouteTable(
            generation: 1, pools: blueGreen, split: split("100%", "0%"),
            policy: RoutingPolicy(overrides: OverridePolicy(header: "X-Turnout-Pool", cookie: "turnout_pool", trustedNetworks: trusted, token: token)))
    }

    @Test func headerAndCookieNameAPool() {
        let t = table()
        #expect(decide(t, overrideHeader: "green").poolIndex == 1)
        #expect(decide(t, overrideHeader: "green").reason == .header)
        #expect(decide(t, overrideCookie: "green").reason == .cookie)
        #expect(decide(t, overrideHeader: " green ").poolIndex == 1)
        // The header wins over the cookie.
        #expect(decide(t, overrideHeader: "blue", overrideCookie: "green").poolIndex == 0)
    }

    @Test func unknownPoolsAreIgnored() {
        let t = table()
        for value in ["purple", "", "Green", "green2", "gree"] {
            let d = decide(t, overrideHeader: value)
            #expect(d.poolIndex == 0 && d.reason == .weight && d.ignoredOverride == .unknownPool, "\(value)")
        }
        // An ignored header does not stop a valid cookie.
        #expect(decide(t, overrideHeader: "purple", overrideCookie: "green").poolIndex == 1)
    }

    @Test func trustedNetworksRestrictOverrides() {
        let t = table(trusted: [IPNetwork(address: IPAddress(ipv4: 0x7F00_0000), prefixLength: 8), IPNetwork(address: IPAddress(high: 0, low: 1), prefixLength: 128)])
        #expect(decide(t, client: loopback, overrideHeader: "green").poolIndex == 1)
        #expect(decide(t, client: IPAddress(high: 0, low: 1), overrideHeader: "green").poolIndex == 1)
        let outside = decide(t, client: publicClient, overrideHeader: "green", overrideCookie: "green")
        #expect(outside.poolIndex == 0 && outside.ignoredOverride == .untrusted)
    }

    @Test func aTokenIsRequiredWhenConfigured() {
        let t = table(token: "s3cret")
        #expect(decide(t, overrideHeader: "green;token=s3cret").poolIndex == 1)
        #expect(decide(t, overrideHeader: "green; token=s3cret").poolIndex == 1)
        #expect(decide(t, overrideCookie: "green:s3cret").poolIndex == 1)
        for bad in ["green", "green;token=", "green;token=s3cre", "green;token=s3cretX", "green;tok=s3cret"] {
            let d = decide(t, overrideHeader: bad)
            #expect(d.poolIndex == 0 && d.ignoredOverride == .untrusted, "\(bad)")
        }
        #expect(decide(t, overrideCookie: "green").ignoredOverride == .untrusted)
        // Both restrictions at once: the right token from outside the network is not enough.
        let both = table(trusted: [IPNetwork(address: loopback, prefixLength: 32)], token: "s3cret")
        #expect(decide(both, client: publicClient, overrideHeader: "green;token=s3cret").poolIndex == 0)
        #expect(decide(both, client: loopback, overrideHeader: "green;token=s3cret").poolIndex == 1)
    }

    @Test func anOverrideToAnUnavailablePoolFallsBackToTheSplit() {
        let d = decide(table(), overrideHeader: "green", available: 0b01)
        #expect(d.poolIndex == 0 && d.ignoredOverride == .unavailable)
    }

    @Test func randomOverridesRespectTrustRules() {
        let trusted = IPNetwork(address: IPAddress(ipv4: 0x0A00_0000), prefixLength: 8)
        let t = table(trusted: [trusted], token: "tok")
        var rng = SplitMix64(seed: 5)
        for _ in 0..<20_000 {
            let client = IPAddress(ipv4: UInt32(truncatingIfNeeded: rng.next()) & (rng.next() & 1 == 0 ? 0x0AFF_FFFF : 0xFFFF_FFFF))
            let tokens = ["tok", "tok2", "", "to"]
            let tok = tokens[Int(rng.next() % 4)]
            let d = decide(t, client: client, overrideHeader: "green;token=\(tok)")
            let mayOverride = trusted.contains(client) && tok == "tok"
            #expect((d.poolIndex == 1) == mayOverride)
        }
    }
}

@Suite("RouteTable rules")
struct RouteTableRuleTests {
    let table = RouteTable(
        generation: 1, pools: pools("blue", "green"), split: split("100%", "0%"),
        policy: RoutingPolicy(rules: [
            RouteRule(host: "api.example.com", pathPrefix: "/v2/", split: split("0%", "100%")),
            RouteRule(host: "*.beta.example.com", split: split("0%", "100%")),
            RouteRule(pathPrefix: "/green", split: split("0%", "100%")),
            RouteRule(pathPrefix: "/", split: split("100%", "0%")),
        ]))

    @Test func theFirstMatchingRuleWins() {
        #expect(decide(table, host: "api.example.com", path: "/v2/users") == RoutingDecision(poolIndex: 1, reason: .weight, ruleIndex: 0, bucket: CohortHash.bucket(of: publicClient)))
        #expect(decide(table, host: "API.Example.COM:8443", path: "/v2/").ruleIndex == 0)
        #expect(decide(table, host: "api.example.com", path: "/v1/users").ruleIndex == 3)
        #expect(decide(table, host: "x.beta.example.com", path: "/").ruleIndex == 1)
        #expect(decide(table, host: "beta.example.com", path: "/").ruleIndex == 3)
        #expect(decide(table, host: "evilbeta.example.com", path: "/").ruleIndex == 3)
        #expect(decide(table, host: "other", path: "/greenhouse").poolIndex == 1)
        #expect(decide(table, host: "other", path: "*").ruleIndex == -1)
        #expect(decide(table, host: "[::1]:80", path: "*").ruleIndex == -1)
    }
}
