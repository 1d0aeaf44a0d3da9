import Testing

@testable import TurnoutControl

// Generative tests of the YAML reader: random trees of mappings, lists and tricky scalars are written out as YAML in
// many styles (block with 2- and 4-space indentation, compact `- key:` items, lists at their key's indentation, flow
// collections on one line or over several with comments and trailing commas, scalars plain when that is safe and else
// quoted, folded over lines or escaped), read back with `YAMLParser.parse`, and compared with the tree they were
// written from: every kind, key, scalar text, quoting style and mark (the node's first character, 1-based line and
// column in Unicode scalars). The seeds are fixed, so a failure names a case that fails again the same way.

// MARK: Random numbers

/// SplitMix64: small, fast and the same on every platform, so a seed names one sequence of cases.
private struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound`.
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// True `percent` times in a hundred.
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    mutating func pick<T>(_ choices: [T]) -> T { choices[below(choices.count)] }
}

// MARK: Trees

/// What a document means: the tree the parser must give back.
private indirect enum Tree {
    case scalar(String)
    case mapping([(key: String, value: Tree)])
    case list([Tree])
}

/// Scalars that are easy to get wrong: indicators, quotes, escapes, blanks at the ends, words YAML types elsewhere.
private let trickyScalars: [String] = [
    "", " ", "  ", "a", "x y", "two  spaces", " lead", "trail ", " both ", "a\tb", "\t", "tab\t", "\tlead",
    ":", "::", "::1", "[::1]:8080", "127.0.0.1:80", "a:b", "a: b", "a:", "x :", ": x", ":x", "a::", "http://x/#f",
    "#", "#x", "a#b", "a #b", "a # b", " #", "-", "--", "---", "--- x", "...", "....", "- x", "-x", "-1", "- ",
    "?", "? x", "?x", "[", "]", "{", "}", "[]", "{}", ",", "a,b", "a, b", "a,", ",a", "[a]", "{a: b}", "a]", "a}",
    "'", "''", "\"", "\"\"", "it's", "say \"hi\"", "\\", "a\\b", "\\n", "\\\"", "back\\", "'q'", "\"q\"",
    "é", "e\u{301}", "\u{301}x", "naïve", "日本語", "😀", "a😀b", "\u{1F469}\u{200D}\u{1F467}", "\u{A0}", "nb\u{A0}sp",
    "\u{85}", "x\u{2028}y", "\u{2029}", "\u{FEFF}x",
    "\u{0}", "bell\u{7}", "\u{1B}[0m", "\u{7F}", "\u{9F}", "cr\rlf", "\r", "\r\n", "a\r\nb",
    "a\nb", "\n", "\n\n", "line\n", "\nline", "a\n\nb", "a \nb", "a\n b", "a\t\nb", "a\n\n\nb",
    "null", "Null", "~", "true", "false", "TRUE", "yes", "no", "on", "off", "0", "-0", "1.5", "0x1F", "1e3",
    ".inf", ".nan", "2001-12-14",
    "&a", "*a", "!tag", "!!str", "|", ">", "|-", "%x", "@x", "`x", "a&b", "a*b", "a!b", "a|b", "a>b", "a%b",
    "a@b", "a`b", "a'b", "a\"b", "-a:b", "?a:b", "key: value # c", "a  :  b", "x\\ty",
]

/// Words that make up ordinary-looking keys and values.
private let words = [
    "a", "b", "key", "pools", "blue", "green", "listen", "weight", "address", "127.0.0.1:9001", "x-y", "under_score",
    "v1.2", "500ms", "8KiB", "is", "word", "Ünï", "😀",
]

private func randomScalar(_ rng: inout SplitMix64) -> String {
    switch rng.below(10) {
    case 0..<5: return rng.pick(trickyScalars)
    case 5..<8: return rng.pick(words)
    default:
        // Pieces glued together, with or without blanks, so indicators land in the middle and at the ends.
        var s = ""
        for _ in 0..<(1 + rng.below(3)) {
            s += rng.pick(rng.chance(50) ? trickyScalars : words)
            if rng.chance(40) { s += rng.pick([" ", "", "  ", ":", "#", ","]) }
        }
        return s
    }
}

private func randomKey(_ rng: inout SplitMix64) -> String {
    rng.chance(60) ? rng.pick(words) : randomScalar(&rng)
}

private func randomTree(_ rng: inout SplitMix64, depth: Int) -> Tree {
    let roll = rng.below(100)
    if depth <= 0 || roll < 30 { return .scalar(randomScalar(&rng)) }
    let count = rng.chance(8) ? 0 : 1 + rng.below(4)
    if roll < 65 {
        var pairs: [(key: String, value: Tree)] = []
        var used = Set<String>()
        for _ in 0..<count {
            var key = randomKey(&rng)
            while used.contains(key) { key += "k" }
            used.insert(key)
            pairs.append((key, randomTree(&rng, depth: depth - 1)))
        }
        return .mapping(pairs)
    }
    return .list((0..<count).map { _ in randomTree(&rng, depth: depth - 1) })
}

// MARK: Writing YAML

/// The text being written, with the position of the next character.
private struct Output {
    var text = String.UnicodeScalarView()
    var line = 1
    var column = 1
    var lineEnd = "\n"

    var mark: YAMLMark { YAMLMark(line: line, column: column) }

    mutating func write(_ s: String) {
        for c in s.unicodeScalars {
            let afterCR = text.last == "\r"
            text.append(c)
            if c == "\u{FEFF}" && text.count == 1 { continue }  // a byte-order mark is not part of the text
            if c == "\n" && afterCR { continue }  // CR LF is one line break
            if c == "\n" || c == "\r" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
    }

    mutating func breakLine() {
        write(lineEnd)
    }

    /// The last character written, if any.
    var last: Unicode.Scalar? { text.last }
}

/// Where a scalar is written: decides which characters may stay plain.
private enum Place {
    case block
    case flow
}

/// A mark that says "not checked": an empty plain value has no character of its own.
private let unchecked = YAMLMark(line: 0, column: 0)

private func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" }

private func isFlowIndicator(_ c: Unicode.Scalar) -> Bool {
    c == "," || c == "[" || c == "]" || c == "{" || c == "}"
}

/// Whether YAML reads `c` as it is inside a scalar (c-printable, without the line breaks).
private func isPrintable(_ c: Unicode.Scalar) -> Bool {
    let v = c.value
    if c == "\t" { return true }
    if v < 0x20 || v == 0x7F || (v >= 0x80 && v < 0xA0 && v != 0x85) { return false }
    if v == 0xFEFF { return false }  // printable, but a byte-order mark where the text starts
    return true
}

/// Whether `s` reads back as itself when written without quotes at `place`.
private func isPlainSafe(_ s: String, place: Place) -> Bool {
    let u = Array(s.unicodeScalars)
    guard let first = u.first, let last = u.last else { return false }
    if isBlank(first) || isBlank(last) { return false }
    for c in u where !isPrintable(c) || c == "\u{85}" || c == "\u{2028}" || c == "\u{2029}" { return false }
    if "&*!|>'\"%@`#,[]{}".unicodeScalars.contains(first) { return false }
    if first == "-" || first == "?" || first == ":" {
        guard u.count > 1, !isBlank(u[1]) else { return false }
        if place == .flow && isFlowIndicator(u[1]) { return false }
    }
    for i in u.indices {
        let c = u[i]
        if c == ":" {
            if i + 1 == u.count || isBlank(u[i + 1]) { return false }
            if place == .flow && isFlowIndicator(u[i + 1]) { return false }
        }
        if c == "#" && i > 0 && isBlank(u[i - 1]) { return false }
        if place == .flow && isFlowIndicator(c) { return false }
    }
    return true
}

/// Writes trees as YAML text, and builds the `YAMLNode` the parser should read from it.
private struct Writer {
    var rng: SplitMix64
    var out = Output()
    /// Spaces per level of block indentation.
    var step = 2

    /// How much deeper a nested block goes: usually `step`, sometimes an odd amount.
    mutating func deeper() -> Int { rng.chance(10) ? 1 + rng.below(5) : step }

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func spaces(_ n: Int) { out.write(String(repeating: " ", count: n)) }

    /// Ends a block line: maybe a comment first, maybe blank and comment lines after.
    mutating func endLine() {
        if rng.chance(12) { out.write(rng.pick([" # note", "  #: not a key", "\t# tab before", " #"])) }
        if rng.chance(5) { out.write(rng.pick([" ", "  ", "\t"])) }
        out.breakLine()
        if rng.chance(8) {
            if rng.chance(50) {
                spaces(rng.below(6))
                out.write("# comment line - [x] {y}: z")
            }
            out.breakLine()
        }
    }

    /// A line break inside a flow collection, the next line indented at least `minIndent`.
    mutating func flowBreak(minIndent: Int) {
        if rng.chance(25) { out.write(rng.pick([" # comment, ]", "  # {", " #"])) }
        out.breakLine()
        if rng.chance(15) {
            spaces(minIndent + rng.below(3))
            out.write("# comment inside brackets")
            out.breakLine()
        }
        if rng.chance(10) { out.breakLine() }
        spaces(minIndent + rng.below(4))
    }

    // MARK: Scalars

    /// A scalar written at the current position; lines it goes on to are indented `minIndent` or more. With
    /// `allowEmptyPlain`, an empty string may be written as nothing at all.
    mutating func scalar(_ s: String, place: Place, minIndent: Int, allowEmptyPlain: Bool, key: Bool = false)
        -> YAMLScalar
    {
        let mark = out.mark
        if s.isEmpty && allowEmptyPlain && rng.chance(60) {
            return YAMLScalar(string: "", style: .plain, mark: unchecked)
        }
        // A document marker at the start of a line would end the document.
        let marker = (s.hasPrefix("---") || s.hasPrefix("...")) && out.column == 1
        if isPlainSafe(s, place: place) && !marker && rng.chance(75) {
            out.write(s)
            return YAMLScalar(string: s, style: .plain, mark: mark)
        }
        let multiline = !key && rng.chance(40)
        let indent = max(minIndent, 1)
        if rng.chance(40), !(key && s.unicodeScalars.contains("\n")),
            let single = singleQuoted(s, multiline: multiline, indent: indent)
        {
            out.write(single)
            return YAMLScalar(string: s, style: .singleQuoted, mark: mark)
        }
        out.write(doubleQuoted(s, multiline: multiline, indent: indent))
        return YAMLScalar(string: s, style: .doubleQuoted, mark: mark)
    }

    /// The text of one continuation line's start: a line break (the writer's line end) and indentation.
    mutating func continuation(indent: Int, emptyLines: Int) -> String {
        var s = out.lineEnd
        for _ in 0..<emptyLines { s += (rng.chance(20) ? "  " : "") + out.lineEnd }
        return s + String(repeating: " ", count: indent + rng.below(3))
    }

    /// `s` in single quotes, folded over lines when `multiline`; nil when single quotes cannot hold it.
    mutating func singleQuoted(_ s: String, multiline: Bool, indent: Int) -> String? {
        let u = Array(s.unicodeScalars)
        var text = "'"
        var i = 0
        while i < u.count {
            let c = u[i]
            if c == "\n" {
                // Only folding writes a line feed: a line break followed by one empty line per line feed. The
                // blanks on either side of a break are not content, so they must not be there.
                var run = 0
                while i + run < u.count, u[i + run] == "\n" { run += 1 }
                let before = text.unicodeScalars.last!
                let after = i + run < u.count ? u[i + run] : nil
                if isBlank(before) || after.map(isBlank) == true { return nil }
                text += continuation(indent: indent, emptyLines: run)
                i += run
                continue
            }
            if !isPrintable(c) || c == "\r" { return nil }
            if multiline, c == " ", i > 0, !isBlank(u[i - 1]), i + 1 < u.count, !isBlank(u[i + 1]),
                u[i + 1] != "\n", u[i - 1] != "\n", rng.chance(40)
            {
                text += continuation(indent: indent, emptyLines: 0)
            } else {
                text += c == "'" ? "''" : String(c)
            }
            i += 1
        }
        return text + "'"
    }

    /// How one character is written between double quotes.
    mutating func escaped(_ c: Unicode.Scalar) -> String {
        let hex = String(c.value, radix: 16, uppercase: rng.chance(50))
        func padded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - hex.count)) + hex }
        switch c {
        case "\"": return "\\\""
        case "\\": return "\\\\"
        case "\t": return rng.pick(["\\t", "\t", "\\x09", "\\\t"])
        case "\n": return "\\n"
        case "\r": return rng.pick(["\\r", "\\x0d"])
        case "\u{0}": return rng.pick(["\\0", "\\x00"])
        case "\u{7}": return "\\a"
        case "\u{8}": return "\\b"
        case "\u{B}": return "\\v"
        case "\u{C}": return "\\f"
        case "\u{1B}": return rng.pick(["\\e", "\\x1B"])
        case "\u{85}": return rng.pick(["\\N", "\\x85", "\\u0085"])
        case "\u{A0}": return rng.pick(["\\_", "\u{A0}", "\\xa0"])
        case "\u{2028}": return rng.pick(["\\L", "\\u2028"])
        case "\u{2029}": return rng.pick(["\\P", "\\u2029"])
        case " ": return rng.chance(85) ? " " : rng.pick(["\\ ", "\\x20"])
        case "/": return rng.pick(["/", "\\/"])
        default:
            if !isPrintable(c) { return c.value > 0xFF ? "\\u" + padded(4) : "\\x" + padded(2) }
            if rng.chance(8) { return c.value > 0xFFFF ? "\\U" + padded(8) : "\\u" + padded(4) }
            return String(c)
        }
    }

    /// `s` in double quotes, folded over lines or joined with escaped line breaks when `multiline`.
    mutating func doubleQuoted(_ s: String, multiline: Bool, indent: Int) -> String {
        let u = Array(s.unicodeScalars)
        let units = u.map { escaped($0) }
        /// Whether the unit at `i` is a raw blank (one that folding would drop).
        func rawBlank(_ i: Int) -> Bool { i >= 0 && i < u.count && (units[i] == " " || units[i] == "\t") }
        var text = "\""
        var i = 0
        while i < u.count {
            if multiline && u[i] == "\n" && !rawBlank(i - 1) && rng.chance(60) {
                var run = 0
                while i + run < u.count, u[i + run] == "\n" { run += 1 }
                if !rawBlank(i + run) {
                    if rng.chance(50) {
                        // A line break folds away; each empty line after it is a line feed.
                        text += continuation(indent: indent, emptyLines: run)
                    } else {
                        // An escaped line break joins the lines; each empty line after it is a line feed.
                        text += "\\" + continuation(indent: indent, emptyLines: run)
                    }
                    i += run
                    continue
                }
            }
            if multiline && u[i] == " " && units[i] == " " && i > 0 && !rawBlank(i - 1) && u[i - 1] != "\n"
                && i + 1 < u.count && !rawBlank(i + 1) && u[i + 1] != "\n" && rng.chance(40)
            {
                text += continuation(indent: indent, emptyLines: 0)  // folds back into this space
                i += 1
                continue
            }
            if multiline && i > 0 && !rawBlank(i) && rng.chance(10) {
                text += "\\" + continuation(indent: indent, emptyLines: 0)  // joins with nothing between
            }
            text += units[i]
            i += 1
        }
        return text + "\""
    }

    // MARK: Block collections

    /// A block node's content where the writer stands (already indented to `indent`).
    mutating func blockMapping(_ pairs: [(key: String, value: Tree)], indent: Int) -> YAMLNode {
        var result: [YAMLPair] = []
        for (n, pair) in pairs.enumerated() {
            if n > 0 {
                endLine()
                spaces(indent)
            }
            let key = scalar(pair.key, place: .block, minIndent: indent + 1, allowEmptyPlain: false, key: true)
            if rng.chance(5) { out.write(" ") }
            out.write(":")
            let afterColon = out.mark
            result.append(YAMLPair(key: key, value: marked(blockValue(pair.value, indent: indent), afterColon)))
        }
        return .mapping(result, result[0].key.mark)
    }

    /// The value of a key of a mapping at `indent`, written after its colon.
    mutating func blockValue(_ tree: Tree, indent: Int) -> YAMLNode {
        switch tree {
        case .scalar(let s):
            if !s.isEmpty && rng.chance(10) {
                // On the line below the key, indented deeper.
                endLine()
                spaces(indent + deeper())
                return .scalar(scalar(s, place: .block, minIndent: indent + 1, allowEmptyPlain: false))
            }
            if s.isEmpty && rng.chance(50) {
                return .scalar(YAMLScalar(string: "", style: .plain, mark: unchecked))  // nothing after the colon
            }
            out.write(rng.chance(8) ? "\t" : " ")
            return .scalar(scalar(s, place: .block, minIndent: indent + 1, allowEmptyPlain: true))
        case .mapping(let pairs):
            if pairs.isEmpty || rng.chance(15) {
                out.write(" ")
                return flow(tree, minIndent: indent + 1, multiline: rng.chance(40))
            }
            endLine()
            let inner = indent + deeper()
            if rng.chance(8) {
                spaces(inner)
                return flow(tree, minIndent: indent + 1, multiline: rng.chance(40))  // in brackets, below the key
            }
            spaces(inner)
            return blockMapping(pairs, indent: inner)
        case .list(let items):
            if items.isEmpty || rng.chance(15) {
                out.write(" ")
                return flow(tree, minIndent: indent + 1, multiline: rng.chance(40))
            }
            endLine()
            if rng.chance(8) {
                spaces(indent + deeper())
                return flow(tree, minIndent: indent + 1, multiline: rng.chance(40))  // in brackets, below the key
            }
            let listIndent = rng.chance(40) ? indent : indent + deeper()
            spaces(listIndent)
            return blockList(items, indent: listIndent)
        }
    }

    /// A block list whose first dash is where the writer stands (column `indent` + 1).
    mutating func blockList(_ items: [Tree], indent: Int) -> YAMLNode {
        var result: [YAMLNode] = []
        let mark = out.mark
        for (n, item) in items.enumerated() {
            if n > 0 {
                endLine()
                spaces(indent)
            }
            out.write("-")
            let afterDash = out.mark
            result.append(marked(listItem(item, indent: indent), afterDash))
        }
        return .sequence(result, mark)
    }

    /// `node`, with the mark of an empty value set to `mark`: in block style, the place right after its key's colon
    /// or its dash.
    func marked(_ node: YAMLNode, _ mark: YAMLMark) -> YAMLNode {
        guard case .scalar(var scalar) = node, scalar.mark == unchecked else { return node }
        scalar.mark = mark
        return .scalar(scalar)
    }

    /// A list item, written after its dash at column `indent` + 1.
    mutating func listItem(_ tree: Tree, indent: Int) -> YAMLNode {
        switch tree {
        case .scalar(let s):
            if s.isEmpty && rng.chance(50) {
                return .scalar(YAMLScalar(string: "", style: .plain, mark: unchecked))  // nothing after the dash
            }
            if !s.isEmpty && rng.chance(8) {
                endLine()
                spaces(indent + deeper())  // on the line below the dash, indented deeper
                return .scalar(scalar(s, place: .block, minIndent: indent + 1, allowEmptyPlain: false))
            }
            out.write(rng.chance(8) ? "\t" : " ")
            return .scalar(scalar(s, place: .block, minIndent: indent + 1, allowEmptyPlain: true))
        case .mapping(let pairs):
            if pairs.isEmpty || rng.chance(15) {
                out.write(" ")
                return flow(tree, minIndent: indent + 1, multiline: rng.chance(40))
            }
            if rng.chance(70) {
                // Compact: the first key on the dash's line, the others lined up under it.
                let gap = 1 + (rng.chance(25) ? rng.below(3) : 0)
                spaces(gap)
                return blockMapping(pairs, indent: indent + 1 + gap)
            }
            endLine()
            let inner = indent + deeper()
            spaces(inner)
            return blockMapping(pairs, indent: inner)
        case .list(let items):
            if items.isEmpty || rng.chance(15) {
                out.write(" ")
                return flow(tree, minIndent: indent + 1, multiline: rng.chance(40))
            }
            if rng.chance(50) {
                let gap = 1 + (rng.chance(25) ? rng.below(3) : 0)
                spaces(gap)
                return blockList(items, indent: indent + 1 + gap)
            }
            endLine()
            let inner = indent + deeper()
            spaces(inner)
            return blockList(items, indent: inner)
        }
    }

    // MARK: Flow collections

    /// A tree in flow style where the writer stands; with `multiline`, one entry a line, lines indented at least
    /// `minIndent`.
    mutating func flow(_ tree: Tree, minIndent: Int, multiline: Bool) -> YAMLNode {
        switch tree {
        case .scalar(let s):
            return .scalar(scalar(s, place: .flow, minIndent: minIndent, allowEmptyPlain: false))
        case .list(let items):
            let mark = out.mark
            out.write("[")
            var result: [YAMLNode] = []
            for (n, item) in items.enumerated() {
                if multiline {
                    flowBreak(minIndent: minIndent)
                } else if n > 0 || rng.chance(20) {
                    out.write(" ")
                }
                if case .mapping(let pairs) = item, pairs.count == 1, rng.chance(25) {
                    // A single pair without braces: `[a: b]` is a list holding the mapping {a: b}.
                    let key = scalar(
                        pairs[0].key, place: .flow, minIndent: minIndent, allowEmptyPlain: false, key: true)
                    out.write(key.style != .plain && rng.chance(30) ? ":" : ": ")
                    let value = flowChild(pairs[0].value, minIndent: minIndent, multiline: multiline)
                    result.append(.mapping([YAMLPair(key: key, value: value)], key.mark))
                } else {
                    result.append(flowChild(item, minIndent: minIndent, multiline: multiline))
                }
                if n + 1 < items.count || rng.chance(multiline ? 50 : 15) {
                    if rng.chance(10) { out.write(" ") }
                    out.write(",")
                }
            }
            if multiline && !items.isEmpty || rng.chance(10) {
                multiline ? flowBreak(minIndent: minIndent) : out.write(" ")
            }
            out.write("]")
            return .sequence(result, mark)
        case .mapping(let pairs):
            let mark = out.mark
            out.write("{")
            var result: [YAMLPair] = []
            for (n, pair) in pairs.enumerated() {
                if multiline {
                    flowBreak(minIndent: minIndent)
                } else if n > 0 || rng.chance(20) {
                    out.write(" ")
                }
                let key = scalar(pair.key, place: .flow, minIndent: minIndent, allowEmptyPlain: false, key: true)
                var emptyValue: String?
                if case .scalar("") = pair.value { emptyValue = "" }
                let value: YAMLNode
                if emptyValue != nil && rng.chance(30) {
                    // No colon at all, or a colon and nothing after it.
                    if rng.chance(50) { out.write(rng.pick([":", " :", ": "])) }
                    value = .scalar(YAMLScalar(string: "", style: .plain, mark: unchecked))
                } else {
                    if key.style != .plain && rng.chance(30) {
                        out.write(":")  // JSON-like: a quoted key may have its colon right after it
                    } else {
                        out.write(rng.chance(10) ? " : " : ": ")
                    }
                    if multiline && rng.chance(10) { flowBreak(minIndent: minIndent) }
                    value = flowChild(pair.value, minIndent: minIndent, multiline: multiline)
                }
                result.append(YAMLPair(key: key, value: value))
                if n + 1 < pairs.count || rng.chance(multiline ? 50 : 15) {
                    if rng.chance(10) { out.write(" ") }
                    out.write(",")
                }
            }
            if multiline && !pairs.isEmpty || rng.chance(10) {
                multiline ? flowBreak(minIndent: minIndent) : out.write(" ")
            }
            out.write("}")
            return .mapping(result, mark)
        }
    }

    /// An entry of a flow collection: nested collections keep to one line or spread out as well.
    mutating func flowChild(_ tree: Tree, minIndent: Int, multiline: Bool) -> YAMLNode {
        if case .scalar(let s) = tree {
            // An empty plain scalar is only written as a mapping's value, so in a list it is quoted.
            return .scalar(scalar(s, place: .flow, minIndent: minIndent, allowEmptyPlain: false))
        }
        return flow(tree, minIndent: minIndent + (multiline ? 2 : 0), multiline: multiline && rng.chance(60))
    }

    // MARK: Documents

    /// A whole document for `tree`, in block style unless `flowRoot`.
    mutating func document(_ tree: Tree, flowRoot: Bool) -> YAMLNode {
        if rng.chance(10) { out.write("\u{FEFF}") }
        if rng.chance(15) {
            out.write("# leading comment")
            out.breakLine()
        }
        var base = rng.chance(10) ? 1 + rng.below(3) : 0
        var flowRoot = flowRoot
        if rng.chance(20) {
            if case .scalar = tree, rng.chance(50) {
                out.write("--- ")  // a scalar or a collection in brackets may start on the line of "---"
                base = 0
            } else if flowRoot, rng.chance(50) {
                out.write("--- ")
                base = 0
            } else {
                out.write(rng.chance(70) ? "---" : "--- # start")
                out.breakLine()
            }
        }
        if case .scalar = tree, out.column > 1 { flowRoot = true }
        spaces(base)
        let node: YAMLNode
        switch tree {
        case .scalar(let s):
            node = .scalar(scalar(s, place: flowRoot ? .flow : .block, minIndent: base + 1, allowEmptyPlain: false))
        case .mapping(let pairs) where !flowRoot && !pairs.isEmpty:
            node = blockMapping(pairs, indent: base)
        case .list(let items) where !flowRoot && !items.isEmpty:
            node = blockList(items, indent: base)
        default:
            node = flow(tree, minIndent: base, multiline: rng.chance(50))
        }
        let marksEnd = rng.chance(15)
        if marksEnd || rng.chance(70) { endLine() }
        if marksEnd {
            out.write("...")
            out.breakLine()
            if rng.chance(50) {
                out.write("# after the end")
                out.breakLine()
            }
        }
        return node
    }
}

// MARK: Comparing

/// The first difference between the node the parser read and the one expected, or nil when they agree.
private func difference(_ actual: YAMLNode, _ expected: YAMLNode, at path: String) -> String? {
    func markDifference(_ actual: YAMLMark, _ expected: YAMLMark, _ what: String) -> String? {
        if expected == unchecked || actual == expected { return nil }
        return "\(path): \(what) at \(actual.line):\(actual.column), expected \(expected.line):\(expected.column)"
    }
    func scalarDifference(_ actual: YAMLScalar, _ expected: YAMLScalar, _ what: String) -> String? {
        if !actual.string.unicodeScalars.elementsEqual(expected.string.unicodeScalars) {  // not only equivalent
            return "\(path): \(what) \(actual.string.debugDescription), expected \(expected.string.debugDescription)"
        }
        if actual.style != expected.style { return "\(path): \(what) is \(actual.style), expected \(expected.style)" }
        return markDifference(actual.mark, expected.mark, what)
    }
    switch (actual, expected) {
    case (.scalar(let a), .scalar(let e)):
        return scalarDifference(a, e, "scalar")
    case (.sequence(let a, let aMark), .sequence(let e, let eMark)):
        if let d = markDifference(aMark, eMark, "list") { return d }
        if a.count != e.count { return "\(path): \(a.count) items, expected \(e.count)" }
        for i in a.indices {
            if let d = difference(a[i], e[i], at: "\(path)[\(i)]") { return d }
        }
        return nil
    case (.mapping(let a, let aMark), .mapping(let e, let eMark)):
        if let d = markDifference(aMark, eMark, "mapping") { return d }
        if a.count != e.count { return "\(path): \(a.count) entries, expected \(e.count)" }
        for i in a.indices {
            let keyPath = "\(path).\(e[i].key.string.debugDescription)"
            if let d = scalarDifference(a[i].key, e[i].key, "key \(i)") { return d }
            if let d = difference(a[i].value, e[i].value, at: keyPath) { return d }
        }
        return nil
    default:
        return "\(path): read \(kind(actual)), expected \(kind(expected))"
    }
}

private func kind(_ node: YAMLNode) -> String {
    switch node {
    case .scalar: return "a scalar"
    case .sequence: return "a list"
    case .mapping: return "a mapping"
    }
}

/// Writes `count` random documents and checks each reads back; returns the failures (at most a few).
private func check(
    seed: UInt64, count: Int, depth: Int, flowRoot: Bool, step: Int, lineEnds: [String] = ["\n"]
) -> [String] {
    var failures: [String] = []
    var trees = SplitMix64(seed: seed)
    for n in 0..<count {
        let tree = randomTree(&trees, depth: depth)
        var writer = Writer(seed: seed &* 1_000_003 &+ UInt64(n))
        writer.step = step
        writer.out.lineEnd = lineEnds[n % lineEnds.count]
        let expected = writer.document(tree, flowRoot: flowRoot)
        let yaml = String(writer.out.text)
        let problem: String?
        do {
            if let node = try YAMLParser.parse(yaml) {
                problem = difference(node, expected, at: "root")
            } else {
                problem = "read no document"
            }
        } catch {
            problem = "error at \(error.mark.line):\(error.mark.column): \(error.message)"
        }
        if let problem {
            failures.append("seed \(seed) case \(n): \(problem)\n\(yaml.debugDescription)")
            if failures.count >= 5 { break }
        }
    }
    return failures
}

// MARK: Properties

@Test func blockDocumentsWithTwoSpaceIndentationReadBackAsWritten() {
    for failure in check(seed: 1, count: 1500, depth: 4, flowRoot: false, step: 2) { Issue.record("\(failure)") }
}

@Test func blockDocumentsWithFourSpaceIndentationReadBackAsWritten() {
    for failure in check(seed: 2, count: 1000, depth: 4, flowRoot: false, step: 4) { Issue.record("\(failure)") }
}

@Test func documentsWithCRLFAndCRLineEndsReadBackAsWritten() {
    for failure in check(seed: 3, count: 600, depth: 3, flowRoot: false, step: 2, lineEnds: ["\r\n", "\r"]) {
        Issue.record("\(failure)")
    }
}

@Test func flowDocumentsOnOneOrSeveralLinesReadBackAsWritten() {
    for failure in check(seed: 4, count: 1500, depth: 4, flowRoot: true, step: 2) { Issue.record("\(failure)") }
}

@Test func everyTrickyScalarReadsBackInEveryPlaceAndQuoting() {
    // Each tricky string as a key, a value, a list item and a flow entry, many times over so every quoting and
    // folding choice comes up.
    var failures: [String] = []
    for (n, s) in trickyScalars.enumerated() {
        let tree = Tree.mapping([
            (s, .scalar(s)), (s + "k", .list([.scalar(s), .scalar(s)])),
            (s + "f", .mapping([(s, .list([.scalar(s)]))])),
        ])
        for round in 0..<20 {
            var writer = Writer(seed: UInt64(n * 100 + round))
            let expected = writer.document(tree, flowRoot: round % 2 == 1)
            let yaml = String(writer.out.text)
            do {
                guard let node = try YAMLParser.parse(yaml) else {
                    failures.append("\(s.debugDescription): no document in \(yaml.debugDescription)")
                    continue
                }
                if let d = difference(node, expected, at: "root") {
                    failures.append("\(s.debugDescription) round \(round): \(d)\n\(yaml.debugDescription)")
                }
            } catch {
                failures.append(
                    "\(s.debugDescription) round \(round): error at \(error.mark.line):\(error.mark.column): "
                        + "\(error.message)\n\(yaml.debugDescription)")
            }
        }
    }
    for failure in failures.prefix(10) { Issue.record("\(failure)") }
}

@Test func theComparisonNoticesAWrongTree() {
    // The checks above must be able to fail: a tree that differs in one scalar, one mark or one style is caught.
    var writer = Writer(seed: 7)
    let expected = writer.document(.mapping([("a", .list([.scalar("x"), .scalar("y")]))]), flowRoot: false)
    let yaml = String(writer.out.text)
    guard let node = try? YAMLParser.parse(yaml) else {
        Issue.record("did not parse \(yaml.debugDescription)")
        return
    }
    #expect(difference(node, expected, at: "root") == nil)
    let wrongText = YAMLNode.mapping(
        [YAMLPair(key: YAMLScalar(string: "a", style: .plain, mark: YAMLMark(line: 1, column: 1)), value: node)],
        YAMLMark(line: 1, column: 1))
    #expect(difference(wrongText, expected, at: "root") != nil)
    if case .mapping(var pairs, let mark) = node {
        pairs[0].key.mark.column += 1
        #expect(difference(.mapping(pairs, mark), expected, at: "root") != nil)
        pairs[0].key.mark.column -= 1
        pairs[0].key.style = .doubleQuoted
        #expect(difference(.mapping(pairs, mark), expected, at: "root") != nil)
    }
}

