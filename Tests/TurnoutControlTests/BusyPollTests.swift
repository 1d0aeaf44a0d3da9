import Testing
import TurnoutCore

@testable import TurnoutControl

private let base = "listen: [127.0.0.1:8080]\npools: {app: {members: [127.0.0.1:9001]}}\nactive: app\n"

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

// MARK: - The key

@Test func microsecondDurations() {
    #expect(ConfigValues.microseconds("50us") == 50)
    #expect(ConfigValues.microseconds("50µs") == 50)
    #expect(ConfigValues.microseconds("1ms") == 1_000)
    #expect(ConfigValues.microseconds("1s") == 1_000_000)
    #expect(ConfigValues.microseconds("0") == 0)
    #expect(ConfigValues.microseconds("50") == nil)  // bare seconds elsewhere: ambiguous here
    #expect(ConfigValues.microseconds("us") == nil)
    #expect(ConfigValues.microseconds("5 us") == nil)
    #expect(ConfigValues.microseconds("5ns") == nil)
    #expect(ConfigValues.microseconds("99999999999999999999us") == nil)
}

@Test func busyPollKeyReadsOffAndDurations() throws {
    #expect(try ConfigLoader.parse(yaml: base, path: "t.yaml").settings.busyPollMicroseconds == 0)
    #expect(try ConfigLoader.parse(yaml: base + "busy_poll: off\n", path: "t.yaml").settings.busyPollMicroseconds == 0)
    #expect(try ConfigLoader.parse(yaml: base + "busy_poll: 0\n", path: "t.yaml").settings.busyPollMicroseconds == 0)
    #expect(try ConfigLoader.parse(yaml: base + "busy_poll: 50us\n", path: "t.yaml").settings.busyPollMicroseconds == 50)
    #expect(try ConfigLoader.parse(yaml: base + "busy_poll: 1ms\n", path: "t.yaml").settings.busyPollMicroseconds == 1_000)
}

@Test func busyPollKeyErrorsNameLineAndKey() {
    for (value, fragment) in [("2ms", "at most 1ms"), ("50", "expected off or a duration"), ("fast", "expected off"),
                              ("[1]", "expected off")] {
        do {
            let config = try ConfigLoader.parse(yaml: base + "busy_poll: \(value)\n", path: "t.yaml")
            Issue.record("busy_poll: \(value) loaded as \(config.settings.busyPollMicroseconds)")
        } catch {
            #expect(error.file == "t.yaml")
            #expect(error.line == 4, "\(error)")
            #expect(error.key == "busy_poll", "\(error)")
            #expect(error.message.contains(fragment), "\(error)")
        }
    }
}

@Test func lowLatencyExampleSetsBusyPoll() throws {
    let path = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
    let config = try ConfigLoader.load(path: "/" + path + "/config/examples/low-latency.yaml")
    #expect(config.settings.busyPollMicroseconds == 50)
    #expect(config.settings.workers == 2)
}
