import Foundation
import Testing

@testable import TurnoutControl

// MARK: - Helpers

/// UTF-8 bytes of `text`.
private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Parses `text`.
private func parse(_ text: String) throws -> Any { try JSON.parse(bytes(text)) }

/// The compact JSON text of `value`, as a string.
private func text(_ value: Any, pretty: Bool = false, sorted: Bool = true) throws -> String {
    String(decoding: try JSON.serialize(value, pretty: pretty, sortedKeys: sorted), as: UTF8.self)
}

/// Structural equality of parsed values; an `Int` never equals a `Double` nor a `Bool` here.
private func same(_ a: Any, _ b: Any) -> Bool {
    switch (a, b) {
    case (is JSON.Null, is JSON.Null): return true
    case let (x as String, y as String): return x == y
    case let (x as Bool, y as Bool): return x == y
    case let (x as Int, y as Int): return x == y
    case let (x as Double, y as Double): return x == y && x.sign == y.sign
    case let (x as [String: Any], y as [String: Any]):
        return x.count == y.count && x.allSatisfy { key, value in y[key].map { same(value, $0) } ?? false }
    case let (x as [Any], y as [Any]): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
    default: return false
    }
}

/// Expects `input` to be refused with a message containing `fragment`.
private func expectRefused(
    _ input: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    do {
        let value = try JSON.parse(input)
        Issue.record("expected a refusal, got \(value)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.message.contains(fragment), "\(error)", sourceLocation: sourceLocation)
    }
}

// MARK: - Parsing

@Suite("JSON parsing")
struct JSONParsingTests {
    @Test func nestedValuesParseToPlainSwiftValues() throws {
        let value = try parse(#" { "a" : [1, -2.5, "x", true, false, null, {}, []], "b": {"c": {"d": "e"}} } "#)
        let expected: [String: Any] = [
            "a": [1, -2.5, "x", true, false, JSON.null, [String: Any](), [Any]()] as [Any],
            "b": ["c": ["d": "e"]],
        ]
        #expect(same(value, expected))
    }

    @Test func everyEscapeDecodes() throws {
        let value = try parse(#"["\"\\\/\b\f\n\r\t\u0041\u00e9\u00E9\u20AC\uD83D\uDE00\u0000"]"#)
        #expect(same(value, ["\"\\/\u{8}\u{C}\n\r\tAéé€😀\u{0}"]))
    }

    @Test func aSurrogatePairIsOneCharacter() throws {
        let value = try #require(try parse(#"["\ud83d\ude00"]"#) as? [String])
        #expect(value[0].unicodeScalars.map(\.value) == [0x1F600])
    }

    @Test func rawUTF8PassesThrough() throws {
        #expect(same(try parse("[\"é€😀\u{7F}\"]"), ["é€😀\u{7F}"]))
    }

    @Test func integerLiteralsAreInts() throws {
        let value = try #require(try parse("[0, -0, 42, -42, 9223372036854775807, -9223372036854775808]") as? [Any])
        #expect(value.map { $0 as? Int } == [0, 0, 42, -42, Int.max, Int.min])
    }

    @Test func fractionsAndExponentsAreDoubles() throws {
        let value = try #require(try parse("[1.0, 1e2, 1E2, -1.5e-3, 2.5E+3, 0.1]") as? [Any])
        #expect(value.map { $0 as? Double } == [1.0, 100, 100, -0.0015, 2500, 0.1])
        #expect(value.allSatisfy { !($0 is Int) })
    }

    @Test func negativeZeroWithAFractionKeepsItsSign() throws {
        let value = try #require(try parse("[-0.0]") as? [Double])
        #expect(value[0] == 0 && value[0].sign == .minus)
    }

    @Test func integersBeyondIntBecomeDoubles() throws {
        let text = "[9223372036854775808, -9223372036854775809, 100000000000000000000]"
        let value = try #require(try parse(text) as? [Any])
        #expect(value.map { $0 as? Double } == [9_223_372_036_854_775_808.0, -9_223_372_036_854_775_809.0, 1e20])
    }

    @Test func numbersTooLargeForADoubleAreRefused() {
        expectRefused(bytes("[1e400]"), "too large")
        expectRefused(bytes("[-1e400]"), "too large")
        expectRefused(bytes("[" + String(repeating: "9", count: 400) + "]"), "too large")
    }

    @Test func anyValueMayBeTheWholeText() throws {
        #expect(try parse(" 5 ") as? Int == 5)
        #expect(try parse("\"x\"") as? String == "x")
        #expect(try parse("null") is JSON.Null)
        #expect(try parse("true") as? Bool == true)
    }

    @Test func aLeadingByteOrderMarkIsSkipped() throws {
        #expect(same(try JSON.parse([0xEF, 0xBB, 0xBF] + bytes(#"{"a": 1}"#)), ["a": 1]))
    }

    @Test func nestingUpToTheLimitIsAccepted() throws {
        let depth = JSON.maxDepth
        _ = try parse(String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
        _ = try parse(String(repeating: #"{"a":"#, count: depth - 1) + "{}" + String(repeating: "}", count: depth - 1))
    }

    @Test func nestingBeyondTheLimitIsRefused() {
        let depth = JSON.maxDepth + 1
        expectRefused(bytes(String(repeating: "[", count: depth) + String(repeating: "]", count: depth)), "nested")
        let objects = String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        expectRefused(bytes(objects), "nested")
        // A hostile body deep enough to overflow a recursive parser's stack.
        expectRefused(bytes(String(repeating: "[", count: 1_000_000)), "nested")
    }

    @Test(arguments: [
        ("[1,]", "expected a value"),
        (#"{"a":1,}"#, "expected a string key"),
        ("[,1]", "expected a value"),
        ("[1 2]", "expected ',' or ']'"),
        (#"{"a" 1}"#, "expected ':'"),
        (#"{"a":1 "b":2}"#, "expected ',' or '}'"),
        ("{a:1}", "expected a string key"),
        ("{'a':1}", "expected a string key"),
        ("[01]", "cannot start with 0"),
        ("[-01]", "cannot start with 0"),
        ("[00]", "cannot start with 0"),
        ("[1.]", "after the decimal point"),
        ("[.5]", "expected a value"),
        ("[+1]", "expected a value"),
        ("[-]", "expected a digit"),
        ("[1e]", "exponent"),
        ("[1e+]", "exponent"),
        ("[NaN]", "expected a value"),
        ("[Infinity]", "expected a value"),
        ("[tru]", "expected true"),
        ("[True]", "expected a value"),
        ("[nul]", "expected null"),
        (#"["abc"#, "unterminated string"),
        (#"["abc\"#, "unterminated string"),
        (#"["\x"]"#, "invalid escape"),
        (#"["\'"]"#, "invalid escape"),
        (#"["\u12"]"#, "four hexadecimal digits"),
        (#"["\u12G4"]"#, "four hexadecimal digits"),
        (#"["\uD83D"]"#, "high surrogate"),
        (#"["\uD83Dx"]"#, "high surrogate"),
        (#"["\uD83D\u0041"]"#, "high surrogate"),
        (#"["\uD83D\uD83D"]"#, "high surrogate"),
        (#"["\uDE00"]"#, "low surrogate"),
        (#"["\uDE00\uD83D"]"#, "low surrogate"),
        ("[1] x", "after the JSON value"),
        ("{} {}", "after the JSON value"),
        ("1 2", "after the JSON value"),
        ("[1]]", "after the JSON value"),
        ("", "unexpected end"),
        ("  \n ", "unexpected end"),
        ("[", "unexpected end"),
        (#"{"a":"#, "unexpected end"),
        ("[1] // comment", "after the JSON value"),
        (#"{"a": 1, "a": 2}"#, "appears twice"),
        ("\u{C}[1]", "expected a value"),
        ("[1]\u{A0}", "after the JSON value"),
        ("[1]\u{0}", "after the JSON value"),
    ])
    func malformedTextIsRefused(_ input: String, _ fragment: String) {
        expectRefused(bytes(input), fragment)
    }

    @Test(arguments: [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F] as [UInt8])
    func rawControlCharactersInStringsAreRefused(_ byte: UInt8) {
        expectRefused(bytes("[\"a") + [byte] + bytes("b\"]"), "control character")
    }

    @Test(arguments: [
        [0xFF], [0xC0, 0xAF], [0xC1, 0xBF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF0, 0x80, 0x80, 0xAF],
        [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0x80], [0xE2, 0x82], [0xE2, 0x82, 0x41], [0xC3, 0x22],
    ] as [[UInt8]])
    func invalidUTF8InStringsIsRefused(_ sequence: [UInt8]) {
        expectRefused(bytes("[\"") + sequence + bytes("\"]"), "invalid UTF-8")
    }

    @Test func utf16TextIsRefused() {
        let utf16 = Array(#"{"a":1}"#.utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        expectRefused(utf16, "expected a string key")
    }

    @Test func errorsSayWhereTheyAre() {
        #expect(throws: JSONError("unexpected character ']', expected a value", offset: 3)) { try parse("[1,]") }
        #expect(throws: JSONError("the key \"a\" appears twice in one object", offset: 8)) {
            try parse(#"{"a":1, "a":2}"#)
        }
        #expect("\(JSONError("x", offset: 4))" == "x at byte 4")
    }
}

// MARK: - Writing

@Suite("JSON writing")
struct JSONWritingTests {
    @Test func prettySortedOutputHasJSONSerializationsShape() throws {
        let value: [String: Any] = [
            "b": [1, "x"] as [Any], "a": ["z": true, "y": JSON.null] as [String: Any], "e": [String: Any](),
            "f": [Any](), "c": 0.5,
        ]
        let expected = """
            {
              "a" : {
                "y" : null,
                "z" : true
              },
              "b" : [
                1,
                "x"
              ],
              "c" : 0.5,
              "e" : {

              },
              "f" : [

              ]
            }
            """
        #expect(try text(value, pretty: true) == expected)
    }

    @Test func prettySortedOutputIsByteForByteJSONSerializations() throws {
        let ours: [String: Any] = [
            "generation": 7, "active": JSON.null, "dry_run": false, "warnings": [String](),
            "split": ["blue": "95%", "green": "5%"], "overrides": [String: Any](),
            "pools": [["name": "blue", "members": [["address": "10.0.0.1:80", "weight": 1]]]] as [Any],
            "networks": ["10.0.0.0/8", "a\"b\\c\u{1}\n\t"],
        ]
        var theirs = ours
        theirs["active"] = NSNull()
        let options: JSONSerialization.WritingOptions = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let reference = try JSONSerialization.data(withJSONObject: theirs, options: options)
        #expect(try JSON.serialize(ours, pretty: true, sortedKeys: true) == Array(reference))
    }

    @Test func compactOutputHasNoWhitespace() throws {
        let value: [String: Any] = ["b": [true, false, JSON.null] as [Any], "a": 1, "c": [String: Any]()]
        #expect(try text(value) == #"{"a":1,"b":[true,false,null],"c":{}}"#)
        #expect(try text([Any]()) == "[]")
    }

    @Test func keysAreSortedByTheirUTF8Bytes() throws {
        let value = ["b": 1, "B": 2, "a": 3, "é": 4, "_": 5, "a1": 6, "a10": 7, "a9": 8]
        #expect(try text(value) == #"{"B":2,"_":5,"a":3,"a1":6,"a10":7,"a9":8,"b":1,"é":4}"#)
    }

    @Test func everyCharacterThatMustBeEscapedIs() throws {
        let controls = String(String.UnicodeScalarView((0..<0x20).map { Unicode.Scalar(UInt8($0)) }))
        let expected = #""\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f"#
            + #"\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f""#
        #expect(try text(controls) == expected)
        #expect(try text("\"\\") == #""\"\\""#)
    }

    @Test func slashesDELAndNonASCIIAreNotEscaped() throws {
        #expect(try text("10.0.0.0/8 \u{7F} é \u{2028} 😀") == "\"10.0.0.0/8 \u{7F} é \u{2028} 😀\"")
    }

    @Test func stringsRoundTrip() throws {
        let latin1 = String(String.UnicodeScalarView((0..<0x100).compactMap { Unicode.Scalar(UInt32($0)) }))
        let all = latin1 + "€😀\u{10FFFF}"
        #expect(try JSON.parse(JSON.serialize([all])) as? [String] == [all])
    }

    @Test func integersOfEveryWidthAreWritten() throws {
        let values: [Any] = [0, -42, Int.max, Int.min, UInt64.max, Int32(-5), UInt32.max, UInt8(7)]
        let expected = "[0,-42,9223372036854775807,-9223372036854775808,18446744073709551615,-5,4294967295,7]"
        #expect(try text(values) == expected)
    }

    @Test func doublesAreWrittenShortestAndWholeOnesWithoutAFraction() throws {
        let values: [Any] = [0.1, 0.5, -1.25, 5.0, -0.0, 0.0, 1e15, 1e16, 1e20, 1e-7, 123_456_789.125, 2.5e-300]
        #expect(try text(values) == "[0.1,0.5,-1.25,5,0,0,1000000000000000,1e+16,1e+20,1e-07,123456789.125,2.5e-300]")
    }

    /// Found by `make fuzz-config`: `-0e3` was written `-0`, which reads back as the integer 0 and is then
    /// written `0`, so writing what was read was not stable.
    @Test func writingWhatWasReadIsStable() throws {
        for text in ["[-0e3]", "[-0.0, 5.0, 1e2, -0]", "{\"a\": [0.5, -1e-7, 1e300]}"] {
            let once = try JSON.serialize(try JSON.parse(bytes(text)), sortedKeys: true)
            let twice = try JSON.serialize(try JSON.parse(once), sortedKeys: true)
            #expect(once == twice, "\(text)")
        }
    }

    @Test func doublesRoundTripExactly() throws {
        let values: [Double] = [0.1, 1.0 / 3, -2.5e-300, .greatestFiniteMagnitude, .leastNonzeroMagnitude, 9_007_199_254_740_992]
        let back = try #require(try JSON.parse(JSON.serialize(values)) as? [Any])
        #expect(back.map { ($0 as? Double) ?? ($0 as? Int).map(Double.init) } == values)
    }

    @Test(arguments: [Double.nan, .infinity, -.infinity])
    func nonFiniteNumbersCannotBeWritten(_ value: Double) {
        #expect(throws: JSONError.self) { try JSON.serialize([value]) }
    }

    @Test func valuesThatAreNotJSONCannotBeWritten() {
        #expect(throws: JSONError.self) { try JSON.serialize([1: "one"]) }
        #expect(throws: JSONError.self) { try JSON.serialize(["a": Float(1)]) }
        #expect(throws: JSONError.self) { try JSON.serialize([MemberAction.drain]) }
    }

    @Test func adminAnswersEndWithANewline() {
        #expect(AdminJSON.encode(["a": 1]) == bytes("{\n  \"a\" : 1\n}\n"))
        #expect(AdminJSON.encode(["a": Double.nan]) == bytes("{}\n"))
    }
}

// MARK: - Casts

@Suite("JSON cast semantics")
struct JSONCastTests {
    @Test func anIntegerIsAnIntAndNotADoubleNorABool() throws {
        let value = try #require(try parse("[1, 0]") as? [Any])
        #expect(value[0] as? Int == 1 && value[0] as? Double == nil && value[0] as? Bool == nil && !(value[0] is Bool))
        #expect(value[1] as? Bool == nil && !(value[1] is Bool))
    }

    @Test func aBooleanIsABoolAndNotANumber() throws {
        let value = try #require(try parse("[true, false]") as? [Any])
        #expect(value[0] as? Bool == true && value[0] as? Int == nil && value[0] as? Double == nil)
        #expect(JSON.integer(value[0]) == nil && JSON.integer(value[1]) == nil)
    }

    @Test func oneWithAFractionIsADoubleThatIntegerAccepts() throws {
        let value = try #require(try parse("[1.0, 1e3, 1.5, 1e300, -0.0]") as? [Any])
        #expect(value[0] as? Int == nil && value[0] as? Double == 1.0)
        #expect(value.map { JSON.integer($0) } == [1, 1000, nil, nil, 0])
    }

    @Test func integerTakesNothingButNumbers() {
        #expect(JSON.integer(7) == 7)
        #expect(JSON.integer(nil) == nil)
        #expect(JSON.integer("7") == nil)
        #expect(JSON.integer(JSON.null) == nil)
        #expect(JSON.integer(Double.nan) == nil)
    }

    @Test func nullIsTheNullValueAndNothingElse() throws {
        let value = try #require(try parse(#"{"a": null}"#) as? [String: Any])
        #expect(value["a"] is JSON.Null)
        #expect(value["a"] as? String == nil && value["a"] as? Int == nil && value["a"] as? Bool == nil)
    }

    @Test func listsOfStringsCastToStringArrays() throws {
        let value = try #require(try parse(#"{"a": ["x", "y"], "b": ["x", 1]}"#) as? [String: Any])
        #expect(value["a"] as? [String] == ["x", "y"])
        #expect(value["b"] as? [String] == nil)
    }
}
