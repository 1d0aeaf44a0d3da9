import Testing
@testable import TurnoutRouting

@Suite("SmoothWeightedRoundRobin")
struct SmoothWeightedRoundRobinTests {
    @Test func everyWindowHonoursTheWeightsExactly() {
        var rr = SmoothWeightedRoundRobin(weights: [5, 1, 1])
        for _ in 0..<10 {
            var counts = [0, 0, 0]
            for _ in 0..<7 { counts[rr.next(isEligible: { _ in true })!] += 1 }
            #expect(counts == [5, 1, 1])
        }
    }

    @Test func picksAreInterleavedNotBursts() {
        var rr = SmoothWeightedRoundRobin(weights: [5, 1, 1])
        let picks = (0..<7).map { _ in rr.next(isEligible: { _ in true })! }
        // nginx's documented sequence for weights 5, 1, 1: a a b a c a a.
        #expect(picks == [0, 0, 1, 0, 2, 0, 0])
    }

    @Test func ineligibleAndZeroWeightMembersAreSkipped() {
        var rr = SmoothWeightedRoundRobin(weights: [1, 0, 3])
        for _ in 0..<20 {
            #expect(rr.next(isEligible: { $0 != 2 }) == 0)
        }
        #expect(rr.next(isEligible: { $0 == 1 }) == nil)
    }
}
