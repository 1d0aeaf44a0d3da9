@testable import TurnoutRouting

/// A seeded generator so property tests are repeatable.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func pools(_ names: String...) -> [Pool] {
    names.enumerated().map { i, name in
        Pool(name: name, members: [PoolMember(address: MemberAddress(host: "127.0.0.1", port: UInt16(9000 + i)))])
    }
}

func split(_ percents: String...) -> Split {
    Split(partsPerMillion: percents.map { Split.parsePercent($0)! })!
}

let loopback = IPAddress(ipv4: 0x7F00_0001)
let publicClient = IPAddress(ipv4: 0xCB00_7107)  // 203.0.113.7

/// Runs `decide` with byte views of the given strings.
func decide(
    _ table: RouteTable, host: String = "example.com", path: String = "/", client: IPAddress = publicClient,
    random: UInt32 = 0, overrideHeader: String? = nil, overrideCookie: String? = nil, cohortHeader: String? = nil,
    cohortCookie: String? = nil, bucketCookie: String? = nil, clientBucket: UInt32? = nil,
    available: UInt64 = RouteTable.allAvailable
) -> RoutingDecision {
    func view(_ s: String?, _ body: (UnsafeRawBufferPointer?) -> RoutingDecision) -> RoutingDecision {
        guard let s else { return body(nil) }
        var copy = s
        return copy.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }
    return view(host) { h in
        view(path) { p in
            view(overrideHeader) { oh in
                view(overrideCookie) { oc in
                    view(cohortHeader) { ch in
                        view(cohortCookie) { cc in
                            view(bucketCookie) { bc in
                                table.decide(
                                    RoutingRequest(
                                        host: h!, path: p!, client: client, random: random, overrideHeader: oh,
                                        overrideCookie: oc, cohortHeader: ch, cohortCookie: cc, bucketCookie: bc,
                                        clientBucket: clientBucket),
                                    available: available)
                            }
                        }
                    }
                }
            }
        }
    }
}
