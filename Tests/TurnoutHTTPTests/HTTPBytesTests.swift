import Testing
import TurnoutHTTP

/// RFC 9110 §5.6.2:
/// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
private let rfcTokenChars: Set<UInt8> = {
    var set = Set<UInt8>("!#$%&'*+-.^_`|~".utf8)
    set.formUnion(UInt8(ascii: "0")...UInt8(ascii: "9"))
    set.formUnion(UInt8(ascii: "A")...UInt8(ascii: "Z"))
    set.formUnion(UInt8(ascii: "a")...UInt8(ascii: "z"))
    return set
}()

@Suite("HTTPBytes")
struct HTTPBytesTests {
    @Test func tokenCharMatchesRFC9110TcharForAll256Bytes() {
        #expect(rfcTokenChars.count == 77)
        for b in 0...255 {
            let byte = UInt8(b)
            #expect(HTTPBytes.isTokenChar(byte) == rfcTokenChars.contains(byte), "byte 0x\(String(b, radix: 16))")
        }
    }

    @Test func fieldValueCharIsVcharObsTextSpaceAndTab() {
        for b in 0...255 {
            let byte = UInt8(b)
            let expected = byte == 0x09 || byte == 0x20 || (0x21...0x7E).contains(byte) || byte >= 0x80
            #expect(HTTPBytes.isFieldValueChar(byte) == expected, "byte 0x\(String(b, radix: 16))")
        }
    }

    @Test func targetCharIsVisibleASCIIOnly() {
        for b in 0...255 {
            let byte = UInt8(b)
            #expect(HTTPBytes.isTargetChar(byte) == (0x21...0x7E).contains(byte), "byte 0x\(String(b, radix: 16))")
        }
    }

    @Test func hexValueDecodesBothCasesAndNothingElse() {
        let digits = Array("0123456789abcdef".utf8)
        let upper = Array("0123456789ABCDEF".utf8)
        for b in 0...255 {
            let byte = UInt8(b)
            let expected = digits.firstIndex(of: byte) ?? upper.firstIndex(of: byte)
            #expect(HTTPBytes.hexValue(byte) == expected.map { UInt8($0) }, "byte 0x\(String(b, radix: 16))")
        }
    }

    @Test func lowerFoldsOnlyASCIIUppercase() {
        for b in 0...255 {
            let byte = UInt8(b)
            let expected = (0x41...0x5A).contains(byte) ? byte + 0x20 : byte
            #expect(HTTPBytes.lower(byte) == expected)
        }
    }

    @Test func equalsLowercaseComparesCaseInsensitivelyAndByLength() {
        let bytes = utf8("xContent-LENGTHy")
        bytes.withUnsafeBytes { buffer in
            #expect(HTTPBytes.equalsLowercase(buffer, 1..<15, "content-length"))
            #expect(!HTTPBytes.equalsLowercase(buffer, 1..<14, "content-length"))
            #expect(!HTTPBytes.equalsLowercase(buffer, 1..<15, "content-lengtx"))
            #expect(!HTTPBytes.equalsLowercase(buffer, 0..<14, "content-length"))
        }
    }
}

/// Calls `body` with every eight-byte word that holds one byte of any value at any position
/// among `filler` bytes (as bytes and as the little-endian word they load as).
func forEveryByteAtEveryPosition(among fillers: [UInt8], _ body: ([UInt8], UInt64) -> Void) {
    for filler in fillers {
        for position in 0..<8 {
            for value in 0...255 {
                var bytes = [UInt8](repeating: filler, count: 8)
                bytes[position] = UInt8(value)
                body(bytes, bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            }
        }
    }
}

@Test func hasControlOrDELAgreesWithTheBytePredicate() {
    // Among fillers that are allowed (including obs-text, whose high bit must not disturb
    // the bit tricks) and not.
    forEveryByteAtEveryPosition(among: [0x41, 0x20, 0x80, 0xFF, 0x7E, 0x21]) { bytes, word in
        let expected = bytes.contains { $0 < 0x20 || $0 == 0x7F }
        #expect(HTTPBytes.hasControlOrDEL(word) == expected, "\(bytes)")
    }
}

/// Every field name the parser classifies, against every token character at every position and
/// every case of each letter: the word-at-a-time comparison agrees with the byte-by-byte one.
@Test func tokenEqualsLowercaseAgreesWithTheByteComparisonOnAllTokenNames() {
    let literals: [StaticString] = [
        "te", "host", "expect", "upgrade", "connection", "keep-alive", "close", "x-request-id", "content-length",
        "x-forwarded-for", "proxy-connection", "x-forwarded-host", "transfer-encoding", "x-forwarded-proto", "a",
    ]
    let tokens = (0...255).map(UInt8.init).filter(HTTPBytes.isTokenChar)
    var checked = 0
    for literal in literals {
        let word = Array(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
        for position in word.indices {
            for byte in tokens {
                var name = word
                name[position] = byte
                // Upper-case every other letter too, so masks are exercised on every byte.
                for i in name.indices where i != position && i % 2 == 0 && name[i] >= 0x61 && name[i] <= 0x7A {
                    name[i] -= 0x20
                }
                let expected = name.map(HTTPBytes.lower) == word
                let padded = [0x41] + name + [0x3A]  // not at offset 0, followed by a byte that is not compared
                padded.withUnsafeBytes { raw in
                    #expect(HTTPBytes.tokenEqualsLowercase(raw, 1..<(1 + name.count), literal) == expected)
                    #expect(HTTPBytes.equalsLowercase(raw, 1..<(1 + name.count), literal) == expected)
                }
                checked += 1
            }
        }
        // A different length never matches.
        [UInt8](repeating: 0x61, count: word.count + 1).withUnsafeBytes { raw in
            #expect(!HTTPBytes.tokenEqualsLowercase(raw, 0..<raw.count, literal))
        }
    }
    #expect(checked > 10_000)
}

/// The mask's lowest set bit names the first control byte or DEL of the word, whatever the
/// bytes after it: every byte value at every position, followed by allowed and by
/// disallowed bytes (whose borrows could only set bits above it).
@Test func controlOrDELMaskPointsAtTheFirstControlByteOrDEL() {
    let fillers: [UInt8] = [0x41, 0x20, 0x80, 0xFF, 0x00, 0x09, 0x0D, 0x7F, 0x1F, 0x21]
    for before in [0x41, 0x80, 0xFF, 0x20] as [UInt8] {
        for after in fillers {
            for position in 0..<8 {
                for value in 0...255 {
                    var bytes = [UInt8](repeating: before, count: 8)
                    bytes[position] = UInt8(value)
                    for k in position + 1..<8 { bytes[k] = after }
                    let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                    let first = bytes.firstIndex { $0 < 0x20 || $0 == 0x7F }
                    let mask = HTTPBytes.controlOrDELMask(word)
                    #expect((mask == 0) == (first == nil))
                    if let first {
                        #expect(mask.trailingZeroBitCount >> 3 == first, "byte \(value) at \(position), then \(after)")
                    }
                }
            }
        }
    }
}

/// The name-byte mask is exact byte by byte: every byte value at every position, among
/// name bytes and among other bytes.
@Test func nonNameByteMaskFlagsExactlyTheBytesThatAreNotLettersDigitsOrDash() {
    func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2D
    }
    forEveryByteAtEveryPosition(among: [0x61, 0x5A, 0x30, 0x2D, 0x3A, 0x20, 0x00, 0x80, 0xE1, 0x7B, 0x40, 0x2E]) { bytes, word in
        var expected: UInt64 = 0
        for (k, b) in bytes.enumerated() where !isNameByte(b) { expected |= 0x80 << (8 * UInt64(k)) }
        #expect(HTTPBytes.nonNameByteMask(word) == expected, "\(bytes)")
    }
}
