// Routing decision micro-benchmarks for TurnoutRouting: the cost of one `decide` call on
// a prepared request, in ns and mallocs. The target is 0 mallocs per decision.

import Benchmark
import TurnoutRouting

/// Byte views for one request, prepared once; `decide` reads them in place.
final class RoutingFixture {
    let table: RouteTable
    let host: [UInt8]
    let path: [UInt8]
    let userID: [UInt8]
    let overrideHeader: [UInt8]

    init(table: RouteTable) {
        self.table = table
        host = Array("shop.example.com".utf8)
        path = Array("/products/12345?ref=home".utf8)
        userID = Array("user-8f3a2c91".utf8)
        overrideHeader = Array("green;token=change-me-testers-2026".utf8)
    }

    /// One decision; `cohort`/`override` choose which fields the request carries.
    @inline(never)
    func decide(random: UInt32, cohort: Bool, override: Bool) -> Int {
        host.withUnsafeBytes { h in
            path.withUnsafeBytes { p in
                userID.withUnsafeBytes { u in
                    overrideHeader.withUnsafeBytes { o in
                        let request = RoutingRequest(
                            host: h, path: p, client: IPAddress(ipv4: 0x0A00_0107), random: random,
                            overrideHeader: override ? o : nil, cohortHeader: cohort ? u : nil)
                        return table.decide(request, available: RouteTable.allAvailable).poolIndex
                    }
                }
            }
        }
    }
}

func makeRoutingBenchmarks() {
    let pools = ["blue", "green"].enumerated().map { i, name in
        Pool(name: name, members: [PoolMember(address: MemberAddress(host: "10.0.0.\(i + 1)", port: 8080))])
    }
    let canary = Split(partsPerMillion: [950_000, 50_000])!
    let policy = RoutingPolicy(
        cohort: CohortPolicy(header: "X-User-Id"),
        overrides: OverridePolicy(
            header: "X-Turnout-Pool", cookie: "turnout_pool",
            trustedNetworks: [IPNetwork(address: IPAddress(ipv4: 0x0A00_0000), prefixLength: 8)],
            token: "change-me-testers-2026"),
        rules: [
            RouteRule(pathPrefix: "/api/v2/", split: Split(partsPerMillion: [0, 1_000_000])!),
            RouteRule(host: "*.beta.example.com", split: Split(partsPerMillion: [500_000, 500_000])!),
        ])
    let active = RoutingFixture(table: RouteTable(generation: 1, pools: pools, activePoolIndex: 0))
    let full = RoutingFixture(table: RouteTable(generation: 1, pools: pools, split: canary, policy: policy))

    Benchmark("Routing: active pool, no policy") { benchmark in
        for i in benchmark.scaledIterations {
            blackHole(active.decide(random: UInt32(truncatingIfNeeded: i), cohort: false, override: false))
        }
    }

    Benchmark("Routing: 95/5 split by user-id header, 2 rules, overrides enabled") { benchmark in
        for i in benchmark.scaledIterations {
            blackHole(full.decide(random: UInt32(truncatingIfNeeded: i), cohort: true, override: false))
        }
    }

    Benchmark("Routing: trusted override with token") { benchmark in
        for i in benchmark.scaledIterations {
            blackHole(full.decide(random: UInt32(truncatingIfNeeded: i), cohort: true, override: true))
        }
    }
}
