import Testing
import TurnoutCore

// MARK: - The adaptive window

@Test func busyPollWindowIsClosedUntilALoopSleepsBriefly() {
    var w = BusyPollWindow(maxNs: 50_000)
    #expect(w.windowNs == 0)
    #expect(w.startNs == 5_000)
    w.slept(2_000_000)  // a long sleep: stays closed
    #expect(w.windowNs == 0)
    w.slept(30_000)  // woken within the bound: opens at the start value
    #expect(w.windowNs == 5_000)
}

@Test func busyPollWindowDoublesUpToTheBoundAndHalvesShut() {
    var w = BusyPollWindow(maxNs: 50_000)
    var seen: [UInt64] = []
    for _ in 0..<6 {
        w.slept(10_000)
        seen.append(w.windowNs)
    }
    #expect(seen == [5_000, 10_000, 20_000, 40_000, 50_000, 50_000])
    w.slept(50_001)
    #expect(w.windowNs == 25_000)
    w.slept(1_000_000)
    #expect(w.windowNs == 12_500)
    w.slept(1_000_000)
    #expect(w.windowNs == 6_250)
    w.slept(1_000_000)  // 3_125 is below the start value: closed
    #expect(w.windowNs == 0)
}

@Test func busyPollWindowStaysClosedWhenOff() {
    var w = BusyPollWindow(maxNs: 0)
    for _ in 0..<4 { w.slept(0) }
    #expect(w.windowNs == 0)
}

@Test func busyPollStartValueIsAtLeastOneMicrosecond() {
    var w = BusyPollWindow(maxNs: 3_000)
    #expect(w.startNs == 1_000)
    w.slept(100)
    #expect(w.windowNs == 1_000)
    var tiny = BusyPollWindow(maxNs: 500)
    tiny.slept(100)
    #expect(tiny.windowNs == 500)  // never above the bound
}
