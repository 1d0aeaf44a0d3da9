import TurnoutHTTP

/// A strict JSON codec (RFC 8259) for the admin API, the state file and the audit log.
///
/// Parsed values are plain Swift values: `String`; `Int` for an integer literal that fits
/// (`-0` is `0`); `Double` for a literal with a fraction or an exponent (`1.0` and `1e2`
/// included) and for an integer too large for `Int`; `Bool`; `[Any]`; `[String: Any]`; and
/// `JSON.null`. Unlike `JSONSerialization`'s `NSNumber`s, a number never casts to `Bool`,
/// a boolean never casts to a number, and a `Double` never casts to `Int`: read integers
/// with `JSON.integer(_:)`, which takes `5` and `5.0` alike (JSON has one number type).
///
/// The parser refuses what RFC 8259 does not allow (trailing commas, leading zeros, raw
/// control characters in strings, invalid UTF-8, lone surrogate escapes, bytes after the
/// value), refuses duplicate keys in an object (the RFC leaves their meaning open; an admin
/// change must not be ambiguous), and refuses nesting deeper than `maxDepth`, so a hostile
/// body cannot exhaust the stack. A leading UTF-8 byte order mark is skipped, as RFC 8259
/// allows. Any value may be the top-level one; callers check for the object they need.
enum JSON {
    /// JSON's `null`, in parsed values and in values to serialise.
    struct Null: Equatable, Sendable {}

    /// The null value.
    static let null = Null()

    /// Most arrays and objects one inside another that `parse` accepts.
    static let maxDepth = 128

    /// Parses one JSON text in UTF-8.
    static func parse(_ bytes: [UInt8]) throws(JSONError) -> Any {
        var parser = Parser(bytes: bytes)
        return try parser.parseText()
    }

    /// The JSON text of `value`: `String`, `Bool`, any integer type, finite `Double`,
    /// `JSON.null`, `[String: Any]` and `[Any]` of those. `pretty` indents by two spaces and
    /// writes `"key" : value` as `JSONSerialization` does; `sortedKeys` orders keys by their
    /// UTF-8 bytes. `/` is not escaped, nor is any character from U+0020 up but `"` and `\`.
    /// No final newline. Throws for any other value (and for NaN and infinities).
    static func serialize(_ value: Any, pretty: Bool = false, sortedKeys: Bool = false) throws(JSONError) -> [UInt8] {
        var writer = Writer(pretty: pretty, sortedKeys: sortedKeys)
        try writer.write(value, depth: 0)
        return writer.output
    }

    /// An integer: an `Int`, or a `Double` that is a whole number within `Int`'s range
    /// (`5.0`, `1e3`). Nil for anything else, booleans included.
    static func integer(_ value: Any?) -> Int? {
        switch value {
        case let n as Int: return n
        case let d as Double: return Int(exactly: d)
        default: return nil
        }
    }

    /// The text of a finite number: a whole number below 10^16 in magnitude without a
    /// fraction (`5`; `-0.0` as `0`), anything else as Swift's shortest round-trip form (`0.1`, `1e+20`).
    static func format(_ number: Double) throws(JSONError) -> String {
        guard number.isFinite else { throw JSONError("\(number) cannot be written as JSON") }
        if number.rounded(.towardZero) == number && number.magnitude < 1e16 {
            // Negative zero is written `0`: read back, `-0` is the integer 0, and writing that
            // again must give the same text (found by `make fuzz-config`).
            if number == 0 { return "0" }
            return String(Int64(number))
        }
        return number.description
    }
}

/// A JSON text that was refused, or a value that cannot be written as JSON.
struct JSONError: Error, Equatable, CustomStringConvertible {
    /// What is wrong.
    var message: String
    /// The byte of the text where it was found (nil when writing).
    var offset: Int?

    /// An error at `offset` of the text, or while writing when nil.
    init(_ message: String, offset: Int? = nil) {
        self.message = message
        self.offset = offset
    }

    /// The message, with the byte offset when there is one.
    var description: String { offset.map { "\(message) at byte \($0)" } ?? message }
}

// MARK: - Parsing

extension JSON {
    /// A recursive-descent parser over one UTF-8 text.
    struct Parser {
        /// The text.
        let bytes: [UInt8]
        /// The next byte to read.
        var index = 0

        /// Makes a parser at the start of `bytes`.
        init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        /// The whole text: optional byte order mark, whitespace, one value, whitespace, the end.
        mutating func parseText() throws(JSONError) -> Any {
            if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { index = 3 }
            skipWhitespace()
            let value = try parseValue(depth: 0)
            skipWhitespace()
            guard index == bytes.count else { throw fail("unexpected \(describeNext()) after the JSON value") }
            return value
        }

        /// An error at the current byte.
        func fail(_ message: String) -> JSONError { JSONError(message, offset: index) }

        /// The next byte, if any is left.
        var next: UInt8? { index < bytes.count ? bytes[index] : nil }

        /// The next byte for an error message.
        func describeNext() -> String {
            guard let byte = next else { return "end of the text" }
            if byte >= 0x21 && byte < 0x7F { return "character '\(Character(Unicode.Scalar(byte)))'" }
            return "byte 0x\(String(byte, radix: 16, uppercase: true))"
        }

        /// Skips JSON's four whitespace bytes: space, tab, line feed, carriage return.
        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        /// Any value; `depth` is the number of arrays and objects around it.
        mutating func parseValue(depth: Int) throws(JSONError) -> Any {
            guard let byte = next else { throw fail("unexpected end of the text, expected a value") }
            switch byte {
            case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""): return try parseString()
            case UInt8(ascii: "t"):
                try expect(JSON.trueBytes)
                return true
            case UInt8(ascii: "f"):
                try expect(JSON.falseBytes)
                return false
            case UInt8(ascii: "n"):
                try expect(JSON.nullBytes)
                return JSON.null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw fail("unexpected \(describeNext()), expected a value")
            }
        }

        /// Consumes `literal` (`true`, `false`, `null`) exactly.
        mutating func expect(_ literal: [UInt8]) throws(JSONError) {
            let end = index + literal.count
            guard end <= bytes.count && bytes[index..<end].elementsEqual(literal) else {
                throw fail("invalid literal, expected \(String(decoding: literal, as: UTF8.self))")
            }
            index += literal.count
        }

        /// Refuses a container nested deeper than `maxDepth`.
        func checkDepth(_ depth: Int) throws(JSONError) {
            if depth > JSON.maxDepth { throw fail("arrays and objects are nested more than \(JSON.maxDepth) deep") }
        }

        /// `{ "key": value, ... }`; a key given twice is refused.
        mutating func parseObject(depth: Int) throws(JSONError) -> [String: Any] {
            try checkDepth(depth)
            index += 1
            var object: [String: Any] = [:]
            skipWhitespace()
            if next == UInt8(ascii: "}") {
                index += 1
                return object
            }
            while true {
                guard next == UInt8(ascii: "\"") else {
                    throw fail("unexpected \(describeNext()), expected a string key")
                }
                let keyOffset = index
                let key = try parseString()
                skipWhitespace()
                guard next == UInt8(ascii: ":") else {
                    throw fail("unexpected \(describeNext()), expected ':' after a key")
                }
                index += 1
                skipWhitespace()
                let value = try parseValue(depth: depth)
                if object.updateValue(value, forKey: key) != nil {
                    throw JSONError("the key \"\(key)\" appears twice in one object", offset: keyOffset)
                }
                skipWhitespace()
                switch next {
                case UInt8(ascii: ","):
                    index += 1
                    skipWhitespace()
                case UInt8(ascii: "}"):
                    index += 1
                    return object
                default:
                    throw fail("unexpected \(describeNext()), expected ',' or '}' in an object")
                }
            }
        }

        /// `[ value, ... ]`.
        mutating func parseArray(depth: Int) throws(JSONError) -> [Any] {
            try checkDepth(depth)
            index += 1
            var array: [Any] = []
            skipWhitespace()
            if next == UInt8(ascii: "]") {
                index += 1
                return array
            }
            while true {
                array.append(try parseValue(depth: depth))
                skipWhitespace()
                switch next {
                case UInt8(ascii: ","):
                    index += 1
                    skipWhitespace()
                case UInt8(ascii: "]"):
                    index += 1
                    return array
                default:
                    throw fail("unexpected \(describeNext()), expected ',' or ']' in an array")
                }
            }
        }

        /// A string from its opening quote: escapes decoded, raw bytes checked to be UTF-8.
        mutating func parseString() throws(JSONError) -> String {
            index += 1
            var utf8: [UInt8] = []
            while true {
                let start = index
                while index < bytes.count {
                    let byte = bytes[index]
                    guard byte >= 0x20 && byte < 0x80, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") else {
                        break
                    }
                    index += 1
                }
                utf8.append(contentsOf: bytes[start..<index])
                guard let byte = next else { throw fail("unterminated string") }
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return String(decoding: utf8, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    try parseEscape(into: &utf8)
                case 0x80...:
                    try copyMultibyteCharacter(into: &utf8)
                default:
                    let code = String(byte, radix: 16, uppercase: true)
                    throw fail("control character 0x\(code) in a string; escape it as \\u00XX")
                }
            }
        }

        /// One escape sequence from its backslash, appended as UTF-8; a `\u` high surrogate
        /// must be followed by a `\u` low surrogate, and the pair is one character.
        mutating func parseEscape(into utf8: inout [UInt8]) throws(JSONError) {
            let start = index
            index += 1
            guard let letter = next else { throw fail("unterminated string") }
            index += 1
            switch letter {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(letter)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var value = try hexQuad()
                switch value {
                case 0xD800...0xDBFF:
                    let isEscape = bytes.count - index >= 2 && bytes[index] == UInt8(ascii: "\\")
                    guard isEscape && bytes[index + 1] == UInt8(ascii: "u") else {
                        throw JSONError("a high surrogate escape without a low surrogate after it", offset: start)
                    }
                    index += 2
                    let low = try hexQuad()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw JSONError("a high surrogate escape without a low surrogate after it", offset: start)
                    }
                    value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                case 0xDC00...0xDFFF:
                    throw JSONError("a low surrogate escape without a high surrogate before it", offset: start)
                default:
                    break
                }
                guard let scalar = Unicode.Scalar(value) else { throw JSONError("invalid \\u escape", offset: start) }
                utf8.append(contentsOf: scalar.utf8)
            default:
                index -= 1
                throw fail("invalid escape \\\(Character(Unicode.Scalar(letter))) in a string")
            }
        }

        /// The four hexadecimal digits of a `\u` escape.
        mutating func hexQuad() throws(JSONError) -> UInt32 {
            let message = "\\u must be followed by four hexadecimal digits"
            guard bytes.count - index >= 4 else { throw fail(message) }
            var value: UInt32 = 0
            for i in index..<index + 4 {
                guard let digit = HTTPBytes.hexValue(bytes[i]) else { throw fail(message) }
                value = value << 4 | UInt32(digit)
            }
            index += 4
            return value
        }

        /// Copies one multi-byte UTF-8 character, refusing overlong forms, surrogates,
        /// values above U+10FFFF and truncated sequences.
        mutating func copyMultibyteCharacter(into utf8: inout [UInt8]) throws(JSONError) {
            let lead = bytes[index]
            var length = 0
            var second: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0:
                length = 3
                second = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED:
                length = 3
                second = 0x80...0x9F
            case 0xF0:
                length = 4
                second = 0x90...0xBF
            case 0xF1...0xF3: length = 4
            case 0xF4:
                length = 4
                second = 0x80...0x8F
            default: throw fail("invalid UTF-8 in a string")
            }
            guard bytes.count - index >= length, second.contains(bytes[index + 1]),
                bytes[index + 2..<index + length].allSatisfy({ (0x80...0xBF).contains($0) })
            else { throw fail("invalid UTF-8 in a string") }
            utf8.append(contentsOf: bytes[index..<index + length])
            index += length
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`: an `Int` when there is no
        /// fraction nor exponent and it fits, else a finite `Double`.
        mutating func parseNumber() throws(JSONError) -> Any {
            let start = index
            var isInteger = true
            if next == UInt8(ascii: "-") { index += 1 }
            guard let first = next, isDigit(first) else { throw fail("expected a digit") }
            index += 1
            if first == UInt8(ascii: "0") {
                if let digit = next, isDigit(digit) { throw fail("a number cannot start with 0 followed by digits") }
            } else {
                skipDigits()
            }
            if next == UInt8(ascii: ".") {
                isInteger = false
                index += 1
                guard let digit = next, isDigit(digit) else { throw fail("expected a digit after the decimal point") }
                skipDigits()
            }
            if next == UInt8(ascii: "e") || next == UInt8(ascii: "E") {
                isInteger = false
                index += 1
                if next == UInt8(ascii: "+") || next == UInt8(ascii: "-") { index += 1 }
                guard let digit = next, isDigit(digit) else { throw fail("expected a digit in the exponent") }
                skipDigits()
            }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            if isInteger, let n = Int(text) { return n }
            guard let d = Double(text), d.isFinite else {
                throw JSONError("the number \(text) is too large", offset: start)
            }
            return d
        }

        /// Whether `byte` is an ASCII digit.
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        /// Skips ASCII digits.
        mutating func skipDigits() {
            while let byte = next, isDigit(byte) { index += 1 }
        }
    }

    /// `true` in UTF-8.
    static let trueBytes = Array("true".utf8)
    /// `false` in UTF-8.
    static let falseBytes = Array("false".utf8)
    /// `null` in UTF-8.
    static let nullBytes = Array("null".utf8)
}

// MARK: - Writing

extension JSON {
    /// Appends the JSON text of values to `output`.
    struct Writer {
        /// Indent by two spaces per level, one member per line, `" : "` after keys.
        let pretty: Bool
        /// Write object members in the order of their keys' UTF-8 bytes.
        let sortedKeys: Bool
        /// The text so far.
        var output: [UInt8] = []

        /// Makes an empty writer.
        init(pretty: Bool, sortedKeys: Bool) {
            self.pretty = pretty
            self.sortedKeys = sortedKeys
        }

        /// Appends `value`, which sits inside `depth` arrays and objects.
        mutating func write(_ value: Any, depth: Int) throws(JSONError) {
            switch value {
            case is JSON.Null: output += JSON.nullBytes
            case let text as String: writeString(text)
            case let flag as Bool: output += flag ? JSON.trueBytes : JSON.falseBytes
            case let n as Int: output += String(n).utf8
            case let d as Double: output += try JSON.format(d).utf8
            case let n as any BinaryInteger: output += "\(n)".utf8
            case let object as [String: Any]: try writeObject(object, depth: depth)
            case let array as [Any]: try writeArray(array, depth: depth)
            default: throw JSONError("a value of type \(type(of: value)) cannot be written as JSON")
            }
        }

        /// Appends a line break and the indentation of `depth`.
        mutating func newline(depth: Int) {
            output.append(0x0A)
            output += repeatElement(0x20, count: 2 * depth)
        }

        /// `{"key":value}`; pretty, an empty object is `{`, two line breaks, the indentation, `}`.
        mutating func writeObject(_ object: [String: Any], depth: Int) throws(JSONError) {
            var members = Array(object)
            if sortedKeys { members.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) } }
            output.append(UInt8(ascii: "{"))
            if pretty && members.isEmpty { output.append(0x0A) }
            for (i, member) in members.enumerated() {
                if i > 0 { output.append(UInt8(ascii: ",")) }
                if pretty { newline(depth: depth + 1) }
                writeString(member.key)
                output += pretty ? Array(" : ".utf8) : [UInt8(ascii: ":")]
                try write(member.value, depth: depth + 1)
            }
            if pretty { newline(depth: depth) }
            output.append(UInt8(ascii: "}"))
        }

        /// `[value,value]`; pretty, one element per line, and an empty array like an empty object.
        mutating func writeArray(_ array: [Any], depth: Int) throws(JSONError) {
            output.append(UInt8(ascii: "["))
            if pretty && array.isEmpty { output.append(0x0A) }
            for (i, element) in array.enumerated() {
                if i > 0 { output.append(UInt8(ascii: ",")) }
                if pretty { newline(depth: depth + 1) }
                try write(element, depth: depth + 1)
            }
            if pretty { newline(depth: depth) }
            output.append(UInt8(ascii: "]"))
        }

        /// A quoted string: `"` and `\` escaped, control characters as `\b \f \n \r \t` or
        /// `\u00XX`, everything else (`/`, DEL, non-ASCII) as it is.
        mutating func writeString(_ text: String) {
            output.append(UInt8(ascii: "\""))
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): output += [UInt8(ascii: "\\"), byte]
                case 0x08: output += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
                case 0x0C: output += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
                case 0x0A: output += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
                case 0x0D: output += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
                case 0x09: output += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
                case 0x00..<0x20:
                    let digits = Array("0123456789abcdef".utf8)
                    output += Array("\\u00".utf8) + [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]]
                default: output.append(byte)
                }
            }
            output.append(UInt8(ascii: "\""))
        }
    }
}
