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
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let below0x20 = (word &- ones &* 0x20) & ~word & highs
        let del = word ^ (ones &* 0x7F)
        let isDEL = (del &- ones) & ~del & highs
        return (below0x20 | isDEL) != 0
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
}
