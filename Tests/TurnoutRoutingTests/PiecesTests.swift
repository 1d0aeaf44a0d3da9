import Testing
@testable import TurnoutRouting

@Suite("Routing building blocks")
struct RoutingPiecesTests {
    @Test(arguments: [
        ("5%", 50_000), ("0.05%", 500), ("100%", 1_000_000), ("0%", 0), ("12.3456%", 123_456), ("33.3%", 333_000),
        ("7", 70_000), ("0.0001%", 1),
    ] as [(String, UInt32)])
    func percentagesParse(_ text: String, _ ppm: UInt32) {
        #expect(Split.parsePercent(text) == ppm)
    }

    @Test(arguments: ["100.0001%", "101%", "0.00001%", "-5%", "5.%", ".5%", "5%%", "", "%", "1e2%", " 5%", "5 %", "1000%"])
    func badPercentagesAreRefused(_ text: String) {
        #expect(Split.parsePercent(text) == nil)
    }

    @Test func percentagesFormatBack() {
        for ppm: UInt32 in [0, 1, 500, 50_000, 123_456, 333_000, 1_000_000] {
            #expect(Split.parsePercent(Split.formatPercent(ppm)) == ppm)
        }
        #expect(Split.formatPercent(500) == "0.05%")
        #expect(Split.formatPercent(50_000) == "5%")
    }

    @Test func sharesMustSumToOneHundredPercent() {
        #expect(Split(partsPerMillion: [500_000, 500_000]) != nil)
        #expect(Split(partsPerMillion: [500_000, 499_999]) == nil)
        #expect(Split(partsPerMillion: []) == nil)
        #expect(Split.all(to: 1, of: 3).partsPerMillion == [0, 1_000_000, 0])
    }

    @Test func cookiesAreFoundByExactName() {
        func find(_ name: String, _ header: String) -> String? {
            var n = name, h = header
            return n.withUTF8 { nb in
                h.withUTF8 { hb in
                    Cookies.value(named: UnsafeRawBufferPointer(nb), in: UnsafeRawBufferPointer(hb)).map {
                        String(decoding: $0, as: UTF8.self)
                    }
                }
            }
        }
        #expect(find("a", "a=1; b=2") == "1")
        #expect(find("b", "a=1; b=2") == "2")
        #expect(find("b", "a=1;b=2 ") == "2")
        #expect(find("b", "ab=1; b=\"q\"") == "q")
        #expect(find("turnout_pool", "x=y; turnout_pool=green:tok; z=1") == "green:tok")
        #expect(find("a", "aa=1; ba=2") == nil)
        #expect(find("a", "a; a=3") == "3")
        #expect(find("a", "") == nil)
        #expect(find("a", "a=") == "")
    }

    @Test func networksContainTheirAddresses() {
        let ten = IPNetwork(address: IPAddress(ipv4: 0x0A01_0203), prefixLength: 8)
        #expect(ten.contains(IPAddress(ipv4: 0x0AFF_FFFF)))
        #expect(!ten.contains(IPAddress(ipv4: 0x0B00_0000)))
        #expect(ten.description == "10.0.0.0/8")
        let v6 = IPNetwork(address: IPAddress(high: 0x2001_0DB8_0000_0000, low: 0), prefixLength: 32)
        #expect(v6.contains(IPAddress(high: 0x2001_0DB8_FFFF_0000, low: 5)))
        #expect(!v6.contains(IPAddress(high: 0x2001_0DB9_0000_0000, low: 0)))
        #expect(!v6.contains(IPAddress(ipv4: 0x0A00_0000)))
        let any4 = IPNetwork(address: IPAddress(ipv4: 0), prefixLength: 0)
        #expect(any4.contains(IPAddress(ipv4: 0xFFFF_FFFF)) && !any4.contains(IPAddress(high: 0, low: 1)))
        #expect(IPNetwork(address: IPAddress(high: 0, low: 0), prefixLength: 0).contains(IPAddress(ipv4: 1)))
    }

    @Test func sipHashMatchesTheReferenceConstruction() {
        // Buckets are stable: these values must never change, or every cohort moves.
        let a = [UInt8]("user-42".utf8).withUnsafeBytes { CohortHash.bucket(of: $0) }
        let b = [UInt8]("user-42".utf8).withUnsafeBytes { CohortHash.bucket(of: $0) }
        #expect(a == b && a < CohortHash.bucketCount)
        var seen = Set<UInt32>()
        for i in 0..<1000 { seen.insert([UInt8]("k\(i)".utf8).withUnsafeBytes { CohortHash.bucket(of: $0) }) }
        #expect(seen.count > 990)
    }

    @Test func powerOfTwoChoicesPrefersTheLessLoadedMember() {
        var rng = SplitMix64(seed: 1)
        let load = [100, 0, 100]
        var counts = [0, 0, 0]
        for _ in 0..<10_000 {
            let i = PowerOfTwoChoices.pick(weights: [1, 1, 1], random: rng.next(), outstanding: { load[$0] }, isEligible: { _ in true })!
            counts[i] += 1
        }
        // Member 1 wins every draw it is part of: 1 - (2/3)^2 = 5/9 of picks.
        #expect(abs(Double(counts[1]) / 10_000 - 5.0 / 9.0) < 0.03)
        #expect(PowerOfTwoChoices.pick(weights: [1, 1], random: 0, outstanding: { _ in 0 }, isEligible: { _ in false }) == nil)
        for _ in 0..<1000 {
            #expect(PowerOfTwoChoices.pick(weights: [1, 0, 1], random: rng.next(), outstanding: { _ in 0 }, isEligible: { $0 != 2 }) == 0)
        }
    }
}
