import Testing
@testable import TurnoutCore

@Test func responseSizeHistoryExpectsSmallUntilHalfOfTheLastEightWereLarge() {
    var h = ResponseSizeHistory()
    #expect(!h.expectsLarge)  // a new member: whole reads
    for _ in 0..<3 { h.record(isLarge: true) }
    #expect(!h.expectsLarge)
    h.record(isLarge: true)
    #expect(h.expectsLarge)
}

@Test func responseSizeHistoryForgetsWhatCameMoreThanEightResponsesAgo() {
    var h = ResponseSizeHistory()
    for _ in 0..<8 { h.record(isLarge: true) }
    #expect(h.expectsLarge)
    for _ in 0..<4 { h.record(isLarge: false) }
    #expect(h.expectsLarge)  // four large among the last eight
    h.record(isLarge: false)
    #expect(!h.expectsLarge)
    for _ in 0..<20 { h.record(isLarge: false) }
    #expect(!h.expectsLarge)
}

@Test func responseSizeHistoryFollowsAnAlternatingMember() {
    var h = ResponseSizeHistory()
    var answers: [Bool] = []
    for i in 0..<16 {
        h.record(isLarge: i % 2 == 0)
        answers.append(h.expectsLarge)
    }
    // One in two large: the seventh response is the fourth large one, and from then on
    // every window of eight holds four.
    #expect(answers[0..<6].allSatisfy { !$0 })
    #expect(answers[6...].allSatisfy { $0 })
}
