import Testing
@testable import TurnoutCore

@Test func responseSizeHistoryExpectsSmallUntilHalfOfTheLastEightWereLarge() {
    var h = ResponseSizeHistory()
    #expect(!h.expectsLarge)  // a new member: whole reads
    for _ in 0..<3 { h.record(.large) }
    #expect(!h.expectsLarge)
    h.record(.large)
    #expect(h.expectsLarge)
}

@Test func responseSizeHistoryForgetsWhatCameMoreThanEightResponsesAgo() {
    var h = ResponseSizeHistory()
    for _ in 0..<8 { h.record(.large) }
    #expect(h.expectsLarge)
    for _ in 0..<4 { h.record(.small) }
    #expect(h.expectsLarge)  // four large among the last eight
    h.record(.small)
    #expect(!h.expectsLarge)
    for _ in 0..<20 { h.record(.small) }
    #expect(!h.expectsLarge)
}

@Test func responseSizeHistoryFollowsAnAlternatingMember() {
    var h = ResponseSizeHistory()
    var answers: [Bool] = []
    for i in 0..<16 {
        h.record(i % 2 == 0 ? .large : .small)
        answers.append(h.expectsLarge)
    }
    // One in two large: the seventh response is the fourth large one, and from then on
    // every window of eight holds four.
    #expect(answers[0..<6].allSatisfy { !$0 })
    #expect(answers[6...].allSatisfy { $0 })
}

@Test func responseSizeHistoryExpectsMediumOnceHalfOfTheLastEightWereMedium() {
    var h = ResponseSizeHistory()
    for _ in 0..<8 { h.record(.small) }
    for _ in 0..<3 { h.record(.medium) }
    #expect(!h.expectsMedium && !h.expectsLarge)
    h.record(.medium)
    #expect(h.expectsMedium && !h.expectsLarge)
    // Large ones take over once they are half, even with four medium ones left.
    for _ in 0..<3 { h.record(.large) }
    #expect(h.expectsMedium && !h.expectsLarge)
    h.record(.large)
    #expect(h.expectsLarge && !h.expectsMedium)
    // Small ones push both out.
    for _ in 0..<8 { h.record(.small) }
    #expect(!h.expectsMedium && !h.expectsLarge)
}

@Test func responseSizeHistoryCountsEachSizeOnlyAsItself() {
    // Medium and large together make more than half, but neither is half on its own:
    // neither is expected, and heads are read into one buffer.
    var h = ResponseSizeHistory()
    for size in [ResponseSizeHistory.Size.medium, .large, .medium, .large, .medium, .large, .small, .small] {
        h.record(size)
    }
    #expect(!h.expectsMedium && !h.expectsLarge)
}
