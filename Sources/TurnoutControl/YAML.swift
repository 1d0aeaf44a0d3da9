import TurnoutHTTP

// The YAML that configuration files are written in, read without Foundation.
//
// Turnout reads one YAML document into a tree of scalars, mappings and lists, each node with its line and column, and
// `ConfigReader` gives every scalar its meaning from the key it sits under (never from YAML's own typing). The subset
// is what configuration files use:
// - block mappings (`key: value`) and block lists (`- item`), including a list at its key's indentation and the compact
//   `- key: value` form;
// - flow lists (`[a, b]`) and flow mappings (`{a: 1, b: 2}`), nested and over several lines (a `key: value` inside
//   `[ ]` is a mapping of one entry);
// - plain, 'single-quoted' and "double-quoted" scalars (every YAML escape, quoted values folded over lines);
// - comments, an optional `---` at the start (a scalar or a bracketed value may follow it on its line) and `...` at
//   the end; LF, CR LF or CR line ends.
// Anchors, aliases, tags, block scalars (`|`, `>`), complex keys (`?`) and directives are refused with an error that
// says so, as are tabs in indentation, a second document and a plain value that goes on over several lines. Every
// error names the line and column where reading stopped.

/// A position in configuration text: 1-based line and column, the column counted in Unicode scalars.
struct YAMLMark: Equatable, Sendable {
    /// 1-based line.
    var line: Int
    /// 1-based column.
    var column: Int
}

/// How a scalar was written.
enum YAMLScalarStyle: Sendable {
    /// Without quotes; only a plain scalar can mean "nothing" (`~`, `null` or no value at all).
    case plain
    /// In single quotes.
    case singleQuoted
    /// In double quotes, with escapes.
    case doubleQuoted
}

/// A scalar: its text after unquoting, how it was written and where it starts.
struct YAMLScalar: Sendable {
    /// The text, unescaped and folded.
    var string: String
    /// How it was written.
    var style: YAMLScalarStyle
    /// Where its first character (the quote, for a quoted scalar) is.
    var mark: YAMLMark
}

/// One entry of a mapping; keys are always scalars in the subset Turnout reads.
struct YAMLPair: Sendable {
    /// The key.
    var key: YAMLScalar
    /// The value.
    var value: YAMLNode
}

/// A node of a YAML document.
indirect enum YAMLNode: Sendable {
    /// A scalar; a key written with no value is an empty plain scalar.
    case scalar(YAMLScalar)
    /// A mapping, entries in file order (repeated keys are kept, for the reader to report).
    case mapping([YAMLPair], YAMLMark)
    /// A list.
    case sequence([YAMLNode], YAMLMark)

    /// Where the node starts.
    var mark: YAMLMark {
        switch self {
        case .scalar(let scalar): return scalar.mark
        case .mapping(_, let mark), .sequence(_, let mark): return mark
        }
    }
}

/// Why configuration text is not YAML that Turnout reads, and where.
struct YAMLError: Error, Equatable {
    /// Where reading stopped.
    var mark: YAMLMark
    /// What is wrong, in a sentence without the position.
    var message: String
}

/// Reads one YAML document (the subset in this file's note) into a `YAMLNode` tree.
///
/// The block structure is read by recursive descent: a block node's indentation is the column of its first
/// character, and a node ends at the first content line indented no more than its parent. Every block routine leaves
/// `index` at the end of the text or at the first content character of the next line it did not consume.
struct YAMLParser {
    /// The text, with each CR LF and each CR on its own turned into LF (YAML's three line breaks).
    private let text: [Unicode.Scalar]
    /// Index in `text` of the first character of each line.
    private let lineStarts: [Int]
    /// Reading position in `text`.
    private var index = 0
    /// How many collections enclose the current position.
    private var depth = 0

    /// How deeply collections may nest: far more than any configuration needs, little enough for the stack.
    static let maxDepth = 64

    /// The document in `yaml`, or nil when it holds nothing but blank lines and comments.
    static func parse(_ yaml: String) throws(YAMLError) -> YAMLNode? {
        var parser = YAMLParser(yaml)
        return try parser.document()
    }

    private init(_ yaml: String) {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(yaml.unicodeScalars.count)
        var afterCR = false
        for scalar in yaml.unicodeScalars {
            if scalar == "\n" && afterCR {
                afterCR = false
                continue
            }
            afterCR = scalar == "\r"
            scalars.append(afterCR ? "\n" : scalar)
        }
        if scalars.first == "\u{FEFF}" { scalars.removeFirst() }
        var starts = [0]
        for (i, scalar) in scalars.enumerated() where scalar == "\n" { starts.append(i + 1) }
        text = scalars
        lineStarts = starts
    }

    // MARK: Document

    private mutating func document() throws(YAMLError) -> YAMLNode? {
        guard try nextContentLine() else { return nil }
        if text[index] == "%" { throw error(at: index, "directives (%YAML, %TAG) are not supported") }
        var root: YAMLNode?
        if isDocumentMarker("---") {
            index += 3
            skipBlanks()
            if !isAtLineEndOrComment() {
                // A document on the line of its `---`: a scalar or brackets (a block list or mapping starts only
                // on a line of its own).
                root = try inlineValue(
                    owner: "\"---\"",
                    colonMessage: "a mapping cannot start on the line of \"---\"; put its keys on the lines below it")
            }
            guard try nextContentLine() else { return root }
        }
        if root == nil && !isDocumentMarker("...") && !isDocumentMarker("---") {
            root = try blockNode(parentIndent: -1)
            guard try nextContentLine() else { return root }
        }
        if isDocumentMarker("...") {
            index += 3
            try expectLineEnd(after: "\"...\"")
            guard try nextContentLine() else { return root }
        }
        if isDocumentMarker("---") {
            throw error(at: index, "another document starts here; a configuration file holds one document")
        }
        throw error(at: index, "unexpected text at this indentation")
    }

    /// Whether `marker` (`---` or `...`) starts the current line and is followed by a blank or the line's end.
    private func isDocumentMarker(_ marker: String) -> Bool {
        guard column(of: index) == 0 else { return false }
        var i = index
        for scalar in marker.unicodeScalars {
            guard i < text.count, text[i] == scalar else { return false }
            i += 1
        }
        return isBlankOrLineEnd(at: i)
    }

    // MARK: Block structure

    /// The block node that starts at `index`, a content character; its indentation is its column.
    private mutating func blockNode(parentIndent: Int) throws(YAMLError) -> YAMLNode {
        try enter()
        defer { depth -= 1 }
        let c = text[index]
        if c == "-" && isBlankOrLineEnd(at: index + 1) { return try blockSequence() }
        if c == "[" || c == "{" {
            let node = try flowNode()
            skipBlanks()
            if index < text.count, text[index] == ":" {
                throw error(at: index, "a list or mapping in brackets cannot be a key")
            }
            try expectLineEnd(after: "the closing bracket")
            return node
        }
        try refuseUnsupported(at: index)
        let start = index
        let scalar = try blockScalar()
        skipBlanks()
        if index < text.count, text[index] == ":", isBlankOrLineEnd(at: index + 1) {
            return try blockMapping(indent: column(of: start), firstKey: scalar)
        }
        try expectLineEnd(after: "the value")
        return .scalar(scalar)
    }

    /// A block mapping at `indent` whose first key has been read; `index` is at the spaces or colon after it.
    private mutating func blockMapping(indent: Int, firstKey: YAMLScalar) throws(YAMLError) -> YAMLNode {
        var pairs: [YAMLPair] = []
        var key = firstKey
        while true {
            skipBlanks()
            index += 1  // the ":" after the key
            let afterColon = index
            skipBlanks()
            let value: YAMLNode
            if isAtLineEndOrComment() {
                value = try blockValue(parentIndent: indent, empty: mark(at: afterColon), allowsListAtIndent: true)
            } else {
                value = try inlineValue(
                    owner: "its key",
                    colonMessage: "\": \" inside a value; quote the value, or put a mapping under its key on the lines "
                        + "below")
            }
            pairs.append(YAMLPair(key: key, value: value))

            guard try nextContentLine() else { break }
            let next = column(of: index)
            if next < indent || isDocumentMarker("---") || isDocumentMarker("...") { break }
            if next > indent {
                throw error(
                    at: index,
                    "unexpected indentation (the keys of one mapping line up in one column; a value that goes on "
                        + "over several lines must be quoted)")
            }
            if text[index] == "-" && isBlankOrLineEnd(at: index + 1) {
                throw error(at: index, "a list item where a key was expected")
            }
            key = try mappingKey()
        }
        return .mapping(pairs, firstKey.mark)
    }

    /// The key of a further entry of a block mapping, up to (not including) its colon.
    private mutating func mappingKey() throws(YAMLError) -> YAMLScalar {
        let c = text[index]
        if c == "[" || c == "{" { throw error(at: index, "a list or mapping in brackets cannot be a key") }
        try refuseUnsupported(at: index)
        let key = try blockScalar()
        skipBlanks()
        guard index < text.count, text[index] == ":", isBlankOrLineEnd(at: index + 1) else {
            throw error(at: index, "expected \":\" after the key \"\(key.string)\"")
        }
        return key
    }

    /// A block list starting at `index` (a `-` followed by a blank or the line's end).
    private mutating func blockSequence() throws(YAMLError) -> YAMLNode {
        let indent = column(of: index)
        let start = mark(at: index)
        var items: [YAMLNode] = []
        while true {
            index += 1  // the "-"
            let afterDash = index
            skipBlanks()
            if isAtLineEndOrComment() {
                let empty = mark(at: afterDash)
                items.append(try blockValue(parentIndent: indent, empty: empty, allowsListAtIndent: false))
            } else {
                items.append(try blockNode(parentIndent: indent))
            }
            guard try nextContentLine() else { break }
            let next = column(of: index)
            if next < indent || isDocumentMarker("---") || isDocumentMarker("...") { break }
            if next > indent { throw error(at: index, "unexpected indentation") }
            guard text[index] == "-" && isBlankOrLineEnd(at: index + 1) else { break }  // the parent's next key
        }
        return .sequence(items, start)
    }

    /// The value of a key or list item written on the lines below it: the current line has nothing more. With
    /// nothing indented deeper below it, the value is empty (marked at `empty`); a key's value may also be a list at
    /// the key's own indentation.
    private mutating func blockValue(parentIndent: Int, empty: YAMLMark, allowsListAtIndent: Bool)
        throws(YAMLError) -> YAMLNode
    {
        let nothing = YAMLNode.scalar(YAMLScalar(string: "", style: .plain, mark: empty))
        guard try nextContentLine(), !isDocumentMarker("---"), !isDocumentMarker("...") else { return nothing }
        let indent = column(of: index)
        if indent > parentIndent { return try blockNode(parentIndent: parentIndent) }
        if indent == parentIndent && allowsListAtIndent && text[index] == "-" && isBlankOrLineEnd(at: index + 1) {
            try enter()
            defer { depth -= 1 }
            return try blockSequence()
        }
        return nothing
    }

    /// A value on the same line as what owns it (`owner`: "its key", or `"---"` for a document written on that
    /// line): a collection in brackets or a scalar. A block list cannot start there, nor a mapping: `colonMessage`
    /// is the error for a `: ` after the scalar.
    private mutating func inlineValue(owner: String, colonMessage: String) throws(YAMLError) -> YAMLNode {
        let c = text[index]
        if c == "[" || c == "{" {
            let node = try flowNode()
            try expectLineEnd(after: "the closing bracket")
            return node
        }
        if c == "-" && isBlankOrLineEnd(at: index + 1) {
            throw error(
                at: index, "a list cannot start on the line of \(owner); put each \"- item\" on a line below it")
        }
        try refuseUnsupported(at: index)
        let scalar = try blockScalar()
        skipBlanks()
        if index < text.count, text[index] == ":", isBlankOrLineEnd(at: index + 1) {
            throw error(at: index, colonMessage)
        }
        try expectLineEnd(after: "the value")
        return .scalar(scalar)
    }

    /// A quoted or plain scalar in block context; a plain one ends at the line's end, at a comment, or at `: `.
    private mutating func blockScalar() throws(YAMLError) -> YAMLScalar { try scalar(inFlow: false) }

    // MARK: Flow collections

    /// A `[...]` or `{...}` collection starting at `index`; it may span lines and hold comments.
    private mutating func flowNode() throws(YAMLError) -> YAMLNode {
        try enter()
        defer { depth -= 1 }
        let start = index
        let isList = text[index] == "["
        let close: Unicode.Scalar = isList ? "]" : "}"
        index += 1
        var items: [YAMLNode] = []
        var pairs: [YAMLPair] = []
        while true {
            try skipFlowSpace()
            guard index < text.count else {
                throw error(at: start, "this \"\(isList ? "[" : "{")\" is never closed")
            }
            if text[index] == close {
                index += 1
                break
            }
            if isList {
                let item = try flowItem()
                try skipFlowSpace()
                if index < text.count, text[index] == ":" {
                    // `[a: b]`: a "key: value" pair inside brackets is a mapping of that one entry.
                    guard case .scalar(let key) = item else {
                        throw error(at: index, "a list or mapping in brackets cannot be a key")
                    }
                    let value = try flowPairValue(close: close)
                    items.append(.mapping([YAMLPair(key: key, value: value)], key.mark))
                } else {
                    items.append(item)
                }
            } else {
                let c = text[index]
                if c == "[" || c == "{" { throw error(at: index, "a list or mapping in brackets cannot be a key") }
                try refuseUnsupported(at: index)
                let key = try flowScalar()
                try skipFlowSpace()
                pairs.append(YAMLPair(key: key, value: try flowPairValue(close: close)))
            }
            guard index < text.count else { continue }  // reported as never closed
            if text[index] == "," {
                index += 1
            } else if text[index] != close {
                throw error(at: index, "expected \",\" or \"\(close)\"")
            }
        }
        return isList ? .sequence(items, mark(at: start)) : .mapping(pairs, mark(at: start))
    }

    /// The value after a key inside brackets, `index` at the colon or at what follows the key; an empty plain scalar
    /// when there is no colon or nothing after it. Leaves `index` at the `,` or `close` that should follow.
    private mutating func flowPairValue(close: Unicode.Scalar) throws(YAMLError) -> YAMLNode {
        var value = YAMLNode.scalar(YAMLScalar(string: "", style: .plain, mark: mark(at: index)))
        if index < text.count, text[index] == ":" {
            index += 1
            try skipFlowSpace()
            if index < text.count, text[index] != ",", text[index] != close {
                value = try flowItem()
                try skipFlowSpace()
            }
        }
        return value
    }

    /// An element of a flow collection: a nested collection or a scalar.
    private mutating func flowItem() throws(YAMLError) -> YAMLNode {
        let c = text[index]
        if c == "[" || c == "{" { return try flowNode() }
        if c == "-" && isBlankOrLineEnd(at: index + 1) {
            throw error(at: index, "a \"- item\" list cannot go inside brackets; separate items with commas")
        }
        try refuseUnsupported(at: index)
        return .scalar(try flowScalar())
    }

    /// A quoted or plain scalar inside brackets; a plain one also ends at `,`, brackets and braces, and at a colon
    /// followed by one of those.
    private mutating func flowScalar() throws(YAMLError) -> YAMLScalar { try scalar(inFlow: true) }

    /// A quoted scalar, or a plain one up to the line's end, a comment (` #`) or a colon followed by a blank; inside
    /// brackets (`inFlow`) also up to `,`, `[`, `]`, `{`, `}` and a colon followed by one of those. Blanks at the end
    /// of a plain scalar are not part of it.
    private mutating func scalar(inFlow: Bool) throws(YAMLError) -> YAMLScalar {
        let c = text[index]
        if c == "\"" || c == "'" { return try quoted() }
        let start = index
        try checkPlainStart()
        var end = index
        while index < text.count {
            let c = text[index]
            if c == "\n" { break }
            if inFlow && (c == "," || c == "[" || c == "]" || c == "{" || c == "}") { break }
            if c == ":" && (isBlankOrLineEnd(at: index + 1) || (inFlow && isFlowIndicator(at: index + 1))) { break }
            if c == "#" && isBlank(text[index - 1]) { break }
            index += 1
            if !isBlank(c) { end = index }
        }
        index = end
        return YAMLScalar(string: string(start..<end), style: .plain, mark: mark(at: start))
    }

    /// Skips blanks, line breaks and comments between the parts of a flow collection.
    private mutating func skipFlowSpace() throws(YAMLError) {
        while index < text.count {
            let c = text[index]
            if isBlank(c) || c == "\n" {
                index += 1
            } else if c == "#" && (index == 0 || isBlank(text[index - 1]) || text[index - 1] == "\n") {
                while index < text.count, text[index] != "\n" { index += 1 }
            } else {
                return
            }
        }
    }

    // MARK: Scalars

    /// A single- or double-quoted scalar starting at `index`. Line breaks inside fold as YAML says: one break becomes
    /// a space, each further empty line a line feed, and the blanks around a break go; a double-quoted line ending in
    /// `\` joins the next line. A blank written as an escape (`\t`, `\ `) is content, and stays before a break.
    private mutating func quoted() throws(YAMLError) -> YAMLScalar {
        let start = index
        let quote = text[index]
        index += 1
        var out = String.UnicodeScalarView()
        /// How many characters of `out` came before or from the last escape: folding never removes them.
        var escaped = 0
        /// How many characters `out` holds, kept here because counting a `String.UnicodeScalarView` walks it.
        var count = 0
        while true {
            guard index < text.count else {
                throw error(at: start, "this quoted value is never closed (no closing \(quote))")
            }
            let c = text[index]
            if c == quote {
                if quote == "'", index + 1 < text.count, text[index + 1] == "'" {
                    out.append("'")
                    count += 1
                    index += 2
                    continue
                }
                index += 1
                break
            }
            if c == "\n" {
                while count > escaped, let last = out.last, isBlank(last) {
                    out.removeLast()
                    count -= 1
                }
                index += 1
                var breaks = 0
                while true {
                    while index < text.count, isBlank(text[index]) { index += 1 }
                    guard index < text.count, text[index] == "\n" else { break }
                    breaks += 1
                    index += 1
                }
                if breaks == 0 {
                    out.append(" ")
                    count += 1
                } else {
                    for _ in 0..<breaks { out.append("\n") }
                    count += breaks
                }
                continue
            }
            if quote == "\"" && c == "\\" {
                count += try escape(into: &out)
                escaped = count
                continue
            }
            out.append(c)
            count += 1
            index += 1
        }
        return YAMLScalar(
            string: String(out), style: quote == "'" ? .singleQuoted : .doubleQuoted, mark: mark(at: start))
    }

    /// One escape of a double-quoted scalar, `index` at its backslash; returns how many characters it added.
    private mutating func escape(into out: inout String.UnicodeScalarView) throws(YAMLError) -> Int {
        let start = index
        index += 1
        guard index < text.count else { throw error(at: start, "a backslash at the end of the text") }
        let c = text[index]
        index += 1
        let simple: Unicode.Scalar
        switch c {
        case "0": simple = "\u{0}"
        case "a": simple = "\u{7}"
        case "b": simple = "\u{8}"
        case "t", "\t": simple = "\t"
        case "n": simple = "\n"
        case "v": simple = "\u{B}"
        case "f": simple = "\u{C}"
        case "r": simple = "\r"
        case "e": simple = "\u{1B}"
        case " ": simple = " "
        case "\"": simple = "\""
        case "/": simple = "/"
        case "\\": simple = "\\"
        case "N": simple = "\u{85}"
        case "_": simple = "\u{A0}"
        case "L": simple = "\u{2028}"
        case "P": simple = "\u{2029}"
        case "\n":
            // An escaped line break: the next line continues this one, its leading blanks dropped; each empty line
            // between them is a line feed.
            var breaks = 0
            while true {
                while index < text.count, isBlank(text[index]) { index += 1 }
                guard index < text.count, text[index] == "\n" else { break }
                out.append("\n")
                breaks += 1
                index += 1
            }
            return breaks
        case "x", "u", "U":
            let digits = c == "x" ? 2 : c == "u" ? 4 : 8
            var value: UInt32 = 0
            for _ in 0..<digits {
                guard index < text.count, text[index].isASCII,
                    let digit = HTTPBytes.hexValue(UInt8(text[index].value))
                else {
                    throw error(at: start, "\"\\\(c)\" needs \(digits) hexadecimal digits")
                }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            guard let scalar = Unicode.Scalar(value) else {
                throw error(at: start, "\"\\\(c)\" names no Unicode character")
            }
            simple = scalar
        default:
            throw error(at: start, "unknown escape \"\\\(c)\" in a double-quoted value")
        }
        out.append(simple)
        return 1
    }

    /// Refuses the YAML features outside the subset, and characters that cannot start a plain scalar.
    private func refuseUnsupported(at i: Int) throws(YAMLError) {
        switch text[i] {
        case "&", "*": throw error(at: i, "anchors (&) and aliases (*) are not supported; write the value out")
        case "!": throw error(at: i, "tags (!) are not supported; a value's meaning comes from its key")
        case "|", ">": throw error(at: i, "block scalars (| and >) are not supported; write the value in quotes")
        case "?" where isBlankOrLineEnd(at: i + 1): throw error(at: i, "complex keys (?) are not supported")
        default: return
        }
    }

    /// Refuses a plain scalar that starts with an indicator YAML reserves.
    private func checkPlainStart() throws(YAMLError) {
        let c = text[index]
        switch c {
        case ",", "]", "}", "#", "%", "@", "`":
            throw error(at: index, "\"\(c)\" cannot start a value; quote the value")
        case "-", "?", ":":
            if isBlankOrLineEnd(at: index + 1) { throw error(at: index, "\"\(c)\" cannot stand alone here") }
        default:
            return
        }
    }

    // MARK: Lines and characters

    /// Moves to the first content character of the current or a following line, past blank lines and comments;
    /// false at the end of the text. Refuses a tab in the indentation of a content line.
    private mutating func nextContentLine() throws(YAMLError) -> Bool {
        while index < text.count {
            let c = text[index]
            if isBlank(c) {
                index += 1
            } else if c == "\n" {
                index += 1
            } else if c == "#" {
                while index < text.count, text[index] != "\n" { index += 1 }
            } else {
                let lineStart = lineStarts[line(of: index) - 1]
                if let tab = text[lineStart..<index].firstIndex(of: "\t") {
                    throw error(at: tab, "a tab in the indentation; YAML indents with spaces only")
                }
                return true
            }
        }
        return false
    }

    /// After a value: only blanks and a comment may follow on the line. Leaves `index` at the line's end.
    private mutating func expectLineEnd(after what: String) throws(YAMLError) {
        skipBlanks()
        if isAtLineEndOrComment() {
            while index < text.count, text[index] != "\n" { index += 1 }
            return
        }
        throw error(at: index, "unexpected text after \(what)")
    }

    /// Whether the rest of the line from `index` is empty or a comment (blanks already skipped).
    private func isAtLineEndOrComment() -> Bool {
        index >= text.count || text[index] == "\n" || text[index] == "#"
    }

    private mutating func skipBlanks() {
        while index < text.count, isBlank(text[index]) { index += 1 }
    }

    private mutating func enter() throws(YAMLError) {
        depth += 1
        if depth > YAMLParser.maxDepth {
            throw error(at: index, "lists and mappings nest more than \(YAMLParser.maxDepth) deep")
        }
    }

    private func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" }

    private func isBlankOrLineEnd(at i: Int) -> Bool {
        i >= text.count || text[i] == " " || text[i] == "\t" || text[i] == "\n"
    }

    private func isFlowIndicator(at i: Int) -> Bool {
        i < text.count && (text[i] == "," || text[i] == "[" || text[i] == "]" || text[i] == "{" || text[i] == "}")
    }

    private func string(_ range: Range<Int>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: text[range])
        return String(view)
    }

    /// 1-based line of the character at `i`.
    private func line(of i: Int) -> Int {
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if lineStarts[mid] <= i { low = mid } else { high = mid - 1 }
        }
        return low + 1
    }

    /// 0-based column of the character at `i`.
    private func column(of i: Int) -> Int { i - lineStarts[line(of: i) - 1] }

    private func mark(at i: Int) -> YAMLMark {
        let line = line(of: i)
        return YAMLMark(line: line, column: i - lineStarts[line - 1] + 1)
    }

    private func error(at i: Int, _ message: String) -> YAMLError {
        YAMLError(mark: mark(at: min(i, text.count)), message: message)
    }
}
