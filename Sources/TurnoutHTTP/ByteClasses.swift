// Character classes of RFC 9110 §5.6 as literal bit masks: no tables to initialise, no allocation.
// The token mask is checked against the RFC list in HTTPBytesTests.

/// Byte predicates used by the parsers.
public enum HTTPBytes {
    /// `tchar` of RFC 9110: the characters of a token (method, header name, coding).
    @inlinable @inline(__always)
    public static func isTokenChar(_ b: UInt8) -> Bool {
        // Literal masks keep this free of lazy-global access on the hot path.
        if b < 64 { return (0x03FF_6CFA_0000_0000 as UInt64) >> UInt64(b) & 1 == 1 }
        if b < 128 { return (0x57FF_FFFF_C7FF_FFFE as UInt64) >> UInt64(b - 64) & 1 == 1 }
        return false
    }

    /// Whether any of the eight bytes in `word` is below 0x20 (a control byte, HTAB and
    /// CR included) or DEL: the exact "has less than" and "has zero" bit tricks.
    @inlinable @inline(__always)
    public static func hasControlOrDEL(_ word: UInt64) -> Bool {
        controlOrDELMask(word) != 0
    }

    /// The same test as a mask: nonzero when a byte of `word` is below 0x20 or DEL, and
    /// then its lowest set bit is the high bit of the first such byte in memory order (a
    /// little-endian load), so `trailingZeroBitCount / 8` is that byte's offset. Bits above
    /// it may be set falsely (borrows run upward), never below.
    @inlinable @inline(__always)
    public static func controlOrDELMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let below0x20 = (word &- ones &* 0x20) & ~word & highs
        let del = word ^ (ones &* 0x7F)
        let isDEL = (del &- ones) & ~del & highs
        return below0x20 | isDEL
    }

    /// A mask with the high bit of every byte of `word` that is not an ASCII letter, digit
    /// or `-` (the characters of nearly every field name) set, exactly byte by byte: on the
    /// low seven bits of each byte, `x + (0x80 - c)` has its high bit set when `x >= c`, and
    /// never carries into the next byte. Bytes with the high bit set are never name bytes.
    @inlinable @inline(__always)
    public static func nonNameByteMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let low = word & ~highs
        @inline(__always) func atLeast(_ x: UInt64, _ c: UInt64) -> UInt64 { (x &+ ones &* (0x80 - c)) & highs }
        let folded = low | (ones &* 0x20)
        let letter = atLeast(folded, 0x61) & ~atLeast(folded, 0x7B)
        let digit = atLeast(low, 0x30) & ~atLeast(low, 0x3A)
        let dash = atLeast(low, 0x2D) & ~atLeast(low, 0x2E)
        return (~(letter | digit | dash) & highs) | (word & highs)
    }

    /// A byte allowed in a field value: VCHAR, obs-text, SP or HTAB (no CTL, no DEL).
    @inlinable @inline(__always)
    public static func isFieldValueChar(_ b: UInt8) -> Bool {
        (b >= 0x20 && b != 0x7F) || b == 0x09
    }

    /// A byte allowed in a request target: visible ASCII only.
    @inlinable @inline(__always)
    public static func isTargetChar(_ b: UInt8) -> Bool {
        b > 0x20 && b < 0x7F
    }

    @inlinable @inline(__always)
    public static func lower(_ b: UInt8) -> UInt8 {
        (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b
    }

    /// Value of a hexadecimal digit, or nil.
    @inlinable @inline(__always)
    public static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }

    /// Case-insensitive comparison of `bytes[range]` with an ASCII lowercase literal.
    @inlinable
    public static func equalsLowercase(
        _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ literal: StaticString
    ) -> Bool {
        guard range.count == literal.utf8CodeUnitCount else { return false }
        let lit = literal.utf8Start
        var i = 0
        var p = range.lowerBound
        while p < range.upperBound {
            if lower(bytes[p]) != lit[i] { return false }
            i += 1
            p += 1
        }
        return true
    }

    /// `equalsLowercase` for a field name already checked to hold token characters only, a
    /// word at a time (two or three loads per side instead of a loop over the bytes).
    ///
    /// OR-ing 0x20 into a token character gives a lowercase letter or `-` only when it was
    /// that letter in either case, or `-` (the other byte that maps onto `-` is CR, which
    /// is no token character), so for a `literal` of lowercase letters and `-` the masked
    /// words are equal exactly when the name equals the literal ignoring case.
    /// `literal` is at most 24 bytes.
    @inlinable @inline(__always)
    public static func tokenEqualsLowercase(
        _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ literal: StaticString
    ) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard range.count == n, let base = bytes.baseAddress else { return false }
        let p = base + range.lowerBound
        let lit = UnsafeRawPointer(literal.utf8Start)
        if n >= 8 {
            let mask: UInt64 = 0x2020_2020_2020_2020
            if p.loadUnaligned(as: UInt64.self) | mask != lit.loadUnaligned(as: UInt64.self) { return false }
            if n > 16, (p + 8).loadUnaligned(as: UInt64.self) | mask != (lit + 8).loadUnaligned(as: UInt64.self) {
                return false
            }
            return (p + n - 8).loadUnaligned(as: UInt64.self) | mask == (lit + n - 8).loadUnaligned(as: UInt64.self)
        }
        if n >= 4 {
            let mask: UInt32 = 0x2020_2020
            return p.loadUnaligned(as: UInt32.self) | mask == lit.loadUnaligned(as: UInt32.self)
                && (p + n - 4).loadUnaligned(as: UInt32.self) | mask == (lit + n - 4).loadUnaligned(as: UInt32.self)
        }
        if n >= 2 {
            let mask: UInt16 = 0x2020
            return p.loadUnaligned(as: UInt16.self) | mask == lit.loadUnaligned(as: UInt16.self)
                && (p + n - 2).loadUnaligned(as: UInt16.self) | mask == (lit + n - 2).loadUnaligned(as: UInt16.self)
        }
        return n == 0 || p.load(as: UInt8.self) | 0x20 == lit.load(as: UInt8.self)
    }
}
