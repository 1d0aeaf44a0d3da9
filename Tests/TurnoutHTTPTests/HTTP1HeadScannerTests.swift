import Testing
import TurnoutHTTP

private let simpleHead = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"

@Suite("HTTP1HeadScanner")
struct HTTP1HeadScannerTests {
    @Test func completeHeadInOneBufferGivesItsRange() throws {
        let raw = utf8(simpleHead)
        #expect(try scanWhole(raw).get() == .complete(0..<raw.count))
    }

    @Test func bytesAfterTheHeadAreNotPartOfTheRange() throws {
        let head = utf8(simpleHead)
        let raw = head + utf8("hello GET / HTTP/1.1\r\n\r\n")
        #expect(try scanWhole(raw).get() == .complete(0..<head.count))
    }

    @Test func headFedByteByByteGivesTheSameRange() throws {
        let raw = utf8(simpleHead) + utf8("BODY")
        let whole = try scanWhole(raw).get()
        #expect(whole == .complete(0..<(raw.count - 4)))
        for step in [1, 2, 3, 5, 7, 13] {
            #expect(try scanIncrementally(raw, step: step).get() == whole, "step \(step)")
        }
    }

    @Test func headSplitAtEveryPointGivesTheSameRange() throws {
        let raw = utf8(simpleHead)
        for cut in 1..<raw.count {
            var scanner = HTTP1HeadScanner()
            let first = try scanPrefix(raw, cut, with: &scanner, limits: HTTPHeadLimits()).get()
            #expect(first == .incomplete, "cut \(cut)")
            let second = try scanPrefix(raw, raw.count, with: &scanner, limits: HTTPHeadLimits()).get()
            #expect(second == .complete(0..<raw.count), "cut \(cut)")
        }
    }

    @Test func leadingEmptyLinesAreSkipped() throws {
        let raw = utf8("\r\n\r\n" + simpleHead)
        #expect(try scanWhole(raw).get() == .complete(4..<raw.count))
        #expect(try scanIncrementally(raw).get() == .complete(4..<raw.count))
    }

    @Test func tooManyLeadingEmptyLinesAreRefused() {
        let raw = utf8(String(repeating: "\r\n", count: 5) + simpleHead)
        #expect(scanWhole(raw).failure == .invalidMethod)
        #expect(scanIncrementally(raw).failure == .invalidMethod)
    }

    @Test(arguments: [
        "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: \r\r\n\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: b\n\n",
    ])
    func bareLineFeedAnywhereIsRefused(_ head: String) {
        let raw = utf8(head)
        #expect(scanWhole(raw).failure == .bareLineFeed)
        #expect(scanIncrementally(raw).failure == .bareLineFeed)
    }

    @Test func incompleteHeadStaysIncomplete() throws {
        let raw = utf8(simpleHead)
        for cut in 0..<raw.count {
            let prefix = Array(raw[0..<cut])
            #expect(try scanWhole(prefix).get() == .incomplete, "cut \(cut)")
        }
        // Scanning again with no new bytes changes nothing.
        var scanner = HTTP1HeadScanner()
        #expect(try scanPrefix(raw, 20, with: &scanner, limits: HTTPHeadLimits()).get() == .incomplete)
        #expect(try scanPrefix(raw, 20, with: &scanner, limits: HTTPHeadLimits()).get() == .incomplete)
        #expect(try scanPrefix(raw, raw.count, with: &scanner, limits: HTTPHeadLimits()).get() == .complete(0..<raw.count))
    }

    /// Found by fuzzing: a request line over the limit that ends in a bare LF was refused
    /// as "too long" when it arrived in pieces but as "bare LF" when it arrived whole.
    @Test(arguments: [
        String(repeating: "a", count: 1100) + "\nHost: x\r\n\r\n",
        "GET /" + String(repeating: "a", count: 1100) + "\r x\n\r\n",
        "GET / HTTP/1.1\r\nX: " + String(repeating: "b", count: 5000) + "\n\r\n",
    ])
    func theVerdictDoesNotDependOnHowBytesArrive(_ head: String) {
        let raw = utf8(head)
        let limits = HTTPHeadLimits(maxStartLineBytes: 1024, maxHeadBytes: 4096, maxHeaderCount: 32)
        let whole = scanWhole(raw, limits: limits)
        for step in [1, 7, 100] {
            #expect(scanIncrementally(raw, step: step, limits: limits) == whole, "step \(step)")
        }
        #expect(whole.failure != nil)
    }

    @Test func resetStartsANewHead() throws {
        let first = utf8("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
        let second = utf8("GET /bb HTTP/1.1\r\nHost: b\r\n\r\n")
        var scanner = HTTP1HeadScanner()
        #expect(try scanPrefix(first, first.count, with: &scanner, limits: HTTPHeadLimits()).get() == .complete(0..<first.count))
        scanner.reset()
        #expect(try scanPrefix(second, second.count, with: &scanner, limits: HTTPHeadLimits()).get() == .complete(0..<second.count))
    }

    // MARK: Limits

    @Test func requestLineOverLimitIsRefusedWhenComplete() {
        let limits = HTTPHeadLimits(maxStartLineBytes: 16)
        let raw = utf8("GET /0123456789ab HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(scanWhole(raw, limits: limits).failure == .requestLineTooLong)
        #expect(HTTPParseError.requestLineTooLong.status == 414)
    }

    @Test func requestLineOverLimitIsRefusedBeforeItsCRLFArrives() {
        let limits = HTTPHeadLimits(maxStartLineBytes: 16)
        // 17 bytes, no line ending at all yet.
        let raw = utf8("GET /0123456789ab")
        #expect(raw.count == 17)
        #expect(scanWhole(raw, limits: limits).failure == .requestLineTooLong)
        #expect(scanIncrementally(raw, limits: limits).failure == .requestLineTooLong)
        // Exactly at the limit is still fine.
        #expect(scanWhole(Array(raw[0..<16]), limits: limits).failure == nil)
    }

    @Test func requestLineExactlyAtLimitIsAcceptedHoweverItIsFed() throws {
        let line = "GET /0123456 HTTP/1.1"
        let limits = HTTPHeadLimits(maxStartLineBytes: line.utf8.count)
        let raw = utf8(line + "\r\nHost: a\r\n\r\n")
        #expect(try scanWhole(raw, limits: limits).get() == .complete(0..<raw.count))
        for step in 1...4 {
            #expect(try scanIncrementally(raw, step: step, limits: limits).get() == .complete(0..<raw.count), "step \(step)")
        }
        // One byte more is refused, however it is fed.
        let longer = HTTPHeadLimits(maxStartLineBytes: line.utf8.count - 1)
        #expect(scanWhole(raw, limits: longer).failure == .requestLineTooLong)
        #expect(scanIncrementally(raw, limits: longer).failure == .requestLineTooLong)
    }

    @Test func headOverLimitIsRefused() {
        let raw = utf8(simpleHead)
        let limits = HTTPHeadLimits(maxHeadBytes: raw.count - 1)
        #expect(scanWhole(raw, limits: limits).failure == .headerSectionTooLarge)
        #expect(scanIncrementally(raw, limits: limits).failure == .headerSectionTooLarge)
        #expect(HTTPParseError.headerSectionTooLarge.status == 431)
    }

    @Test func headExactlyAtLimitIsAccepted() throws {
        let raw = utf8(simpleHead)
        let limits = HTTPHeadLimits(maxHeadBytes: raw.count)
        #expect(try scanWhole(raw, limits: limits).get() == .complete(0..<raw.count))
        #expect(try scanIncrementally(raw, limits: limits).get() == .complete(0..<raw.count))
    }

    @Test func headLimitExcludesLeadingEmptyLines() throws {
        let head = utf8(simpleHead)
        let raw = utf8("\r\n\r\n") + head
        let limits = HTTPHeadLimits(maxHeadBytes: head.count)
        #expect(try scanWhole(raw, limits: limits).get() == .complete(4..<raw.count))
        #expect(try scanIncrementally(raw, limits: limits).get() == .complete(4..<raw.count))
    }

    @Test func unterminatedHeadOverLimitIsRefusedBeforeTheBlankLine() {
        let limits = HTTPHeadLimits(maxHeadBytes: 64)
        let raw = utf8("GET / HTTP/1.1\r\nX-Filler: " + String(repeating: "a", count: 100))
        #expect(scanWhole(raw, limits: limits).failure == .headerSectionTooLarge)
        #expect(scanIncrementally(raw, limits: limits).failure == .headerSectionTooLarge)
    }
}
