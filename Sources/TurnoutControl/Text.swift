import TurnoutHTTP

/// String helpers the control plane used to take from Foundation.
enum Text {
    /// `text` without the leading and trailing Unicode scalars for which `isTrimmed` holds.
    static func trimming(_ text: String, where isTrimmed: (Unicode.Scalar) -> Bool) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isTrimmed($0) }),
            let last = scalars.lastIndex(where: { !isTrimmed($0) })
        else { return "" }
        return String(scalars[first...last])
    }

    /// Whether `scalar` is in Foundation's `CharacterSet.whitespaces`: a tab, a space
    /// separator (general category Zs: space, no-break space, U+2000-U+200A, ...) or, as
    /// CoreFoundation still counts it, U+200B ZERO WIDTH SPACE.
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\t" || scalar == "\u{200B}" || scalar.properties.generalCategory == .spaceSeparator
    }

    /// `text` with each `%XX` replaced by that byte, or nil (as Foundation's
    /// `removingPercentEncoding`) when a `%` is not followed by two hexadecimal digits or
    /// the bytes are not UTF-8. `+` stays `+`.
    static func removingPercentEncoding(_ text: String) -> String? {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return text }
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "%") else {
                out.append(bytes[i])
                i += 1
                continue
            }
            guard i + 2 < bytes.count, let high = HTTPBytes.hexValue(bytes[i + 1]), let low = HTTPBytes.hexValue(bytes[i + 2])
            else { return nil }
            out.append(high << 4 | low)
            i += 3
        }
        // Decoding replaces invalid UTF-8 with U+FFFD, so the bytes change exactly when they were not UTF-8.
        let decoded = String(decoding: out, as: UTF8.self)
        return decoded.utf8.elementsEqual(out) ? decoded : nil
    }

    /// `n` in decimal, zero-padded to `width` characters as printf's `%0*d` (`zeroPadded(7, width: 3)` is `007`).
    static func zeroPadded(_ n: Int, width: Int) -> String {
        let sign = n < 0 ? "-" : ""
        let digits = String(n.magnitude)
        return sign + String(repeating: "0", count: max(0, width - sign.count - digits.count)) + digits
    }
}
