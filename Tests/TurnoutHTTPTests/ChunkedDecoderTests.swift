import Testing
import TurnoutHTTP

private let sampleBody = "5\r\nhello\r\n1;ext=1\r\n \r\nB\r\n, chunked!!\r\n0\r\nX-Sum: 1\r\n\r\n"
private let sampleDecoded = utf8("hello , chunked!!")

@Suite("ChunkedDecoder")
struct ChunkedDecoderTests {
    @Test func simpleBody() {
        let raw = utf8("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        let out = decodeChunked(raw)
        #expect(out.error == nil)
        #expect(out.ended)
        #expect(out.body == utf8("hello world"))
        #expect(out.consumed == raw.count)
    }

    @Test func dataRangesPointIntoTheGivenBuffer() throws {
        let raw = utf8("3\r\nabc\r\n0\r\n\r\n")
        var decoder = ChunkedDecoder()
        var index = 0
        #expect(try decodeStep(&decoder, raw, &index) == .data(3..<6))
        #expect(decoder.remainingInChunk == 0)
        #expect(try decodeStep(&decoder, raw, &index) == .end)
        #expect(decoder.isDone)
        #expect(index == raw.count)
    }

    @Test func emptyBody() {
        let raw = utf8("0\r\n\r\n")
        let out = decodeChunked(raw)
        #expect(out == ChunkedOutcome(body: [], ended: true, consumed: raw.count, error: nil))
    }

    @Test func hexSizesInBothCasesAndLeadingZeros() {
        let payload = String(repeating: "x", count: 26)
        let raw = utf8("1a\r\n\(payload)\r\n00001A\r\n\(payload)\r\n000\r\n\r\n")
        let out = decodeChunked(raw)
        #expect(out.error == nil)
        #expect(out.ended)
        #expect(out.body == utf8(payload + payload))
    }

    @Test func bodySplitAtEveryByteBoundaryDecodesIdentically() {
        let raw = utf8(sampleBody) + utf8("GET / HTTP/1.1\r\n")
        let whole = decodeChunked(raw)
        #expect(whole.error == nil)
        #expect(whole.ended)
        #expect(whole.body == sampleDecoded)
        #expect(whole.consumed == utf8(sampleBody).count)
        for cut in 1..<raw.count {
            #expect(decodeChunked(raw, cuts: [cut]) == whole, "cut at \(cut)")
        }
        for first in 1..<raw.count {
            for second in (first + 1)..<raw.count {
                #expect(decodeChunked(raw, cuts: [first, second]) == whole, "cuts at \(first), \(second)")
            }
        }
    }

    @Test func bodyFedByteByByteDecodesIdentically() {
        let raw = utf8(sampleBody) + utf8("NEXT")
        let out = decodeChunked(raw, cuts: Array(1..<raw.count))
        #expect(out == ChunkedOutcome(body: sampleDecoded, ended: true, consumed: utf8(sampleBody).count, error: nil))
    }

    @Test func indexAfterEndPointsJustPastTheFinalCRLF() throws {
        let body = utf8("4\r\nWiki\r\n0\r\nExpires: never\r\n\r\n")
        let pipelined = utf8("GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        let raw = body + pipelined
        var decoder = ChunkedDecoder()
        var index = 0
        var data: [UInt8] = []
        while true {
            let event = try decodeStep(&decoder, raw, &index)
            if case .data(let r) = event { data += raw[r]; continue }
            #expect(event == .end)
            break
        }
        #expect(index == body.count)
        #expect(Array(raw[index...]) == pipelined)
        // Once done, further calls report .end and consume nothing.
        #expect(try decodeStep(&decoder, raw, &index) == .end)
        #expect(index == body.count)
        #expect(data == utf8("Wiki"))
    }

    @Test func resetKeepsLimitsAndStartsOver() throws {
        var decoder = ChunkedDecoder()
        decoder.maxExtensionBytes = 3
        decoder.maxTrailerBytes = 10
        decoder.maxChunkSize = 100
        let raw = utf8("0\r\n\r\n")
        var index = 0
        #expect(try decodeStep(&decoder, raw, &index) == .end)
        decoder.reset()
        #expect(!decoder.isDone)
        #expect(decoder.maxExtensionBytes == 3 && decoder.maxTrailerBytes == 10 && decoder.maxChunkSize == 100)
        index = 0
        #expect(try decodeStep(&decoder, raw, &index) == .end)
    }

    @Test(arguments: [
        "3;a\r\nabc\r\n0\r\n\r\n",
        "3;a=b\r\nabc\r\n0\r\n\r\n",
        "3;a=b;c;d=e\r\nabc\r\n0\r\n\r\n",
        "3;name=\"quoted value\"\r\nabc\r\n0\r\n\r\n",
        "3;name=\"with \\\"escapes\\\" and \\\\ and \\t\"\r\nabc\r\n0\r\n\r\n",
        "3;name=\"\"\r\nabc\r\n0\r\n\r\n",
        "3;name=\"semi;colon=in\tquotes\"\r\nabc\r\n0\r\n\r\n",
        "3 ;a=b\r\nabc\r\n0\r\n\r\n",
        "3\t;\ta\t=\tb\t\r\nabc\r\n0\r\n\r\n",
        "3 ; a = b ; c = \"d\" \r\nabc\r\n0\r\n\r\n",
        "3;a=\"x\" ;b\r\nabc\r\n0\r\n\r\n",
        "3;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nabc\r\n0\r\n\r\n",
        "3;a\r\nabc\r\n0;last=1\r\n\r\n",
    ])
    func chunkExtensionsAreAccepted(_ body: String) {
        let raw = utf8(body)
        let out = decodeChunked(raw)
        #expect(out.error == nil)
        #expect(out.ended)
        #expect(out.body == utf8("abc"))
        #expect(out.consumed == raw.count)
        // And byte by byte.
        #expect(decodeChunked(raw, cuts: Array(1..<raw.count)) == out)
    }

    @Test(arguments: [
        "0\r\nX-Checksum: abc\r\n\r\n",
        "0\r\nA: 1\r\nB:2\r\nc-d:  spaced value \r\n\r\n",
        "0\r\nEmpty:\r\n\r\n",
        "0\r\nX: tab\there\r\n\r\n",
    ])
    func trailersAreAccepted(_ body: String) {
        let raw = utf8(body)
        let out = decodeChunked(raw)
        #expect(out == ChunkedOutcome(body: [], ended: true, consumed: raw.count, error: nil))
        #expect(decodeChunked(raw, cuts: Array(1..<raw.count)) == out)
    }

    @Test func obsTextIsAcceptedInTrailerValuesAndQuotedExtensions() {
        let raw = utf8("1;a=\"") + [0xC3, 0xA9] + utf8("\"\r\nx\r\n0\r\nT: ") + [0xFF] + utf8("\r\n\r\n")
        let out = decodeChunked(raw)
        #expect(out.error == nil)
        #expect(out.ended)
    }

    @Test(arguments: [
        // Chunk size
        ("no digits", "\r\nabc\r\n0\r\n\r\n", ChunkedError.invalidChunkSize),
        ("only extension", ";a\r\n\r\n", .invalidChunkSize),
        ("negative", "-1\r\nx\r\n0\r\n\r\n", .invalidChunkSize),
        ("0x prefix", "0x10\r\n0123456789abcdef\r\n0\r\n\r\n", .invalidChunkSize),
        ("plus sign", "+5\r\nhello\r\n0\r\n\r\n", .invalidChunkSize),
        ("non-hex letter", "5g\r\nhello\r\n0\r\n\r\n", .invalidChunkSize),
        ("space inside size", "1 0\r\n", .invalidChunkSize),
        ("leading space", " 5\r\nhello\r\n0\r\n\r\n", .invalidChunkSize),
        ("bare LF after size", "5\nhello\r\n0\r\n\r\n", .invalidChunkSize),
        ("17 hex digits", "10000000000000000\r\n", .chunkSizeTooLarge),
        ("16 f", "ffffffffffffffff\r\n", .chunkSizeTooLarge),
        ("just over 2^62", "4000000000000001\r\n", .chunkSizeTooLarge),
        ("20 hex digits", "12345678901234567890\r\n", .chunkSizeTooLarge),
        // Extensions
        ("empty extension", "3;\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        ("extension without name", "3;=b\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        ("double semicolon", "3;;a\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        ("extension without value", "3;a=\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        ("invalid char in name", "3;a/b\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        ("two names", "3;a b\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        ("invalid char in token value", "3;a=b/c\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        ("two token values", "3;a=b c\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        ("junk after quoted", "3;a=\"b\"c\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        ("NUL in quoted", "3;a=\"b\u{0}\"\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        ("DEL in quoted", "3;a=\"b\u{7F}\"\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        ("NUL after backslash", "3;a=\"\\\u{0}\"\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        ("bare CR in quoted", "3;a=\"b\rc\"\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        ("equals twice", "3;a==b\r\nabc\r\n0\r\n\r\n", .invalidExtension),
        // Line endings around data
        ("missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", .missingCRLF),
        ("data longer than size", "3\r\nhello\r\n0\r\n\r\n", .missingCRLF),
        ("bare LF after data", "5\r\nhello\n0\r\n\r\n", .missingCRLF),
        ("CR without LF after data", "5\r\nhello\rX0\r\n\r\n", .missingCRLF),
        ("CR without LF after size", "5\rhello\r\n0\r\n\r\n", .missingCRLF),
        ("CR without LF after extension", "5;a=b\rhello\r\n0\r\n\r\n", .missingCRLF),
        ("CR without LF after last chunk", "0\rX", .missingCRLF),
        ("final CR without LF", "0\r\n\rX", .missingCRLF),
        ("trailer CR without LF", "0\r\nA: b\rX\r\n\r\n", .missingCRLF),
        // Trailers
        ("trailer without colon", "0\r\nNoColon\r\n\r\n", .invalidTrailer),
        ("space in trailer name", "0\r\nX Y: z\r\n\r\n", .invalidTrailer),
        ("space before trailer colon", "0\r\nX : z\r\n\r\n", .invalidTrailer),
        ("trailer starting with colon", "0\r\n: z\r\n\r\n", .invalidTrailer),
        ("obs-fold in trailers", "0\r\nA: b\r\n c\r\n\r\n", .invalidTrailer),
        ("NUL in trailer value", "0\r\nA: b\u{0}\r\n\r\n", .invalidTrailer),
        ("DEL in trailer value", "0\r\nA: \u{7F}\r\n\r\n", .invalidTrailer),
        ("bare LF ending trailer section", "0\r\n\n", .invalidTrailer),
    ])
    func malformedBodyIsRefused(_ name: String, _ body: String, _ error: ChunkedError) {
        let raw = utf8(body)
        #expect(decodeChunked(raw).error == error, "\(name)")
        #expect(decodeChunked(raw, cuts: Array(1..<raw.count)).error == error, "\(name), byte by byte")
    }

    @Test func sizeAtLimitIsAcceptedAndOneMoreRefused() {
        let atLimit = decodeChunked(utf8("4000000000000000\r\nab"))
        #expect(atLimit.error == nil)
        #expect(!atLimit.ended)
        #expect(atLimit.body == utf8("ab"))

        let small = decodeChunked(utf8("10\r\n0123456789abcdef\r\n0\r\n\r\n")) { $0.maxChunkSize = 16 }
        #expect(small.error == nil && small.ended)
        let tooBig = decodeChunked(utf8("11\r\n")) { $0.maxChunkSize = 16 }
        #expect(tooBig.error == .chunkSizeTooLarge)
    }

    @Test func remainingInChunkTracksPartialData() throws {
        let raw = utf8("a\r\n01234")
        var decoder = ChunkedDecoder()
        var index = 0
        #expect(try decodeStep(&decoder, raw, &index) == .data(3..<8))
        #expect(decoder.remainingInChunk == 5)
        #expect(try decodeStep(&decoder, raw, &index) == .needMore)
        #expect(index == raw.count)
    }

    @Test func extensionOverLimitIsRefused() {
        // Counted: the bytes after ";" up to and including the CR (7 + 1 here).
        let ok = decodeChunked(utf8("1;abcdefg\r\nx\r\n0\r\n\r\n")) { $0.maxExtensionBytes = 8 }
        #expect(ok.error == nil && ok.ended)
        let tooLong = decodeChunked(utf8("1;abcdefghijklmnop\r\nx\r\n0\r\n\r\n")) { $0.maxExtensionBytes = 8 }
        #expect(tooLong.error == .extensionTooLong)
        // Unterminated extensions cannot grow without bound either.
        let endless = decodeChunked(utf8("1;a=\"" + String(repeating: "z", count: 5000)))
        #expect(endless.error == .extensionTooLong)
        // The limit applies to each chunk line separately.
        let perChunk = decodeChunked(utf8("1;abcdef\r\nx\r\n1;abcdef\r\ny\r\n0;abcdef\r\n\r\n")) { $0.maxExtensionBytes = 8 }
        #expect(perChunk.error == nil && perChunk.ended && perChunk.body == utf8("xy"))
    }

    @Test func trailerOverLimitIsRefused() {
        let trailer = "X-Long: " + String(repeating: "v", count: 100) + "\r\n"
        let raw = utf8("0\r\n" + trailer + "\r\n")
        let fits = decodeChunked(raw) { $0.maxTrailerBytes = trailer.utf8.count + 2 }
        #expect(fits.error == nil && fits.ended)
        let tooLarge = decodeChunked(raw) { $0.maxTrailerBytes = 64 }
        #expect(tooLarge.error == .trailerTooLarge)
        let endless = decodeChunked(utf8("0\r\n" + String(repeating: "A: b\r\n", count: 4000)))
        #expect(endless.error == .trailerTooLarge)
    }
}
