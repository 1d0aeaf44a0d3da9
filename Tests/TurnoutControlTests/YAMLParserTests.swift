import Testing

@testable import TurnoutControl

// The YAML subset configuration files are read in: structure, scalars, positions and refusals.

/// A plain description of a tree: scalars as their text, mappings as `{k: v, ...}`, lists as `[a, ...]`.
private func shape(_ node: YAMLNode?) -> String {
    guard let node else { return "<none>" }
    switch node {
    case .scalar(let scalar): return scalar.string
    case .sequence(let items, _): return "[" + items.map(shape).joined(separator: ", ") + "]"
    case .mapping(let pairs, _):
        return "{" + pairs.map { "\($0.key.string): \(shape($0.value))" }.joined(separator: ", ") + "}"
    }
}

private func parse(_ yaml: String) throws -> YAMLNode? { try YAMLParser.parse(yaml) }

/// The error `yaml` gives, or nil when it parses.
private func failure(_ yaml: String) -> YAMLError? {
    do {
        _ = try YAMLParser.parse(yaml)
        return nil
    } catch {
        return error
    }
}

private func pairs(_ node: YAMLNode?) -> [YAMLPair] {
    if case .mapping(let pairs, _)? = node { return pairs }
    return []
}

@Test func blockMappingsNestByIndentation() throws {
    let yaml = """
        a: 1
        b:
          c: two words
          d:
            e: x
        f: last
        """
    #expect(shape(try parse(yaml)) == "{a: 1, b: {c: two words, d: {e: x}}, f: last}")
}

@Test func blockListsInEveryPlacement() throws {
    let yaml = """
        under:
          - a
          - b
        same_indent:
        - c
        - d
        compact:
          - name: x
            weight: 2
          - name: y
        nested:
          - - 1
            - 2
          - [3, 4]
        after: end
        """
    #expect(
        shape(try parse(yaml))
            == "{under: [a, b], same_indent: [c, d], compact: [{name: x, weight: 2}, {name: y}], "
            + "nested: [[1, 2], [3, 4]], after: end}")
}

@Test func flowCollectionsNestAndSpanLines() throws {
    let yaml = """
        pools: {app: {members: [127.0.0.1:9001, "[::1]:9002"]}, b: {}}
        list: [
          a,   # a comment inside
          'b c',
          {k: v, "q":w},
        ]
        empty: []
        """
    #expect(
        shape(try parse(yaml))
            == "{pools: {app: {members: [127.0.0.1:9001, [::1]:9002]}, b: {}}, list: [a, b c, {k: v, q: w}], "
            + "empty: []}")
}

@Test func plainScalarsKeepColonsAndHashesThatAreNotIndicators() throws {
    let yaml = """
        address: 127.0.0.1:8080
        url: http://x/#frag
        spaced: a b   # a comment
        colon_end: a:b
        """
    #expect(shape(try parse(yaml)) == "{address: 127.0.0.1:8080, url: http://x/#frag, spaced: a b, colon_end: a:b}")
}

@Test func quotedScalarsUnescapeAndFold() throws {
    let yaml = #"""
        d: "tab\there \"q\" \\ \x41\u00e9\U0001F600 \/"
        s: 'it''s #not a comment'
        folded: "one
          two

          three"
        joined: "ab\
          cd"
        """#
    let entries = pairs(try parse(yaml))
    #expect(entries.map(\.key.string) == ["d", "s", "folded", "joined"])
    let values = entries.map { shape($0.value) }
    #expect(values[0] == "tab\there \"q\" \\ Aé😀 /")
    #expect(values[1] == "it's #not a comment")
    #expect(values[2] == "one two\nthree")
    #expect(values[3] == "abcd")
    if case .scalar(let s) = entries[0].value { #expect(s.style == .doubleQuoted) }
    if case .scalar(let s) = entries[1].value { #expect(s.style == .singleQuoted) }
}

@Test func emptyValuesAreEmptyPlainScalarsOnTheKeysLine() throws {
    let yaml = "a:\nb: ~\nc:\n  # only a comment\nd: x\nlist:\n  -\n  - y\n"
    let entries = pairs(try parse(yaml))
    #expect(shape(try parse(yaml)) == "{a: , b: ~, c: , d: x, list: [, y]}")
    #expect(entries[0].value.mark == YAMLMark(line: 1, column: 3))
    #expect(entries[2].value.mark.line == 3)
}

@Test func marksAreOneBasedLineAndColumn() throws {
    let yaml = "top:\n  inner: [a, \"b\"]\n  list:\n    - k: v\n"
    let top = pairs(try parse(yaml))
    let inner = pairs(top[0].value)
    #expect(inner[0].key.mark == YAMLMark(line: 2, column: 3))
    guard case .sequence(let items, let mark) = inner[0].value else { Issue.record("not a list"); return }
    #expect(mark == YAMLMark(line: 2, column: 10))
    #expect(items[1].mark == YAMLMark(line: 2, column: 14))
    guard case .sequence(let list, _) = inner[1].value else { Issue.record("not a list"); return }
    #expect(pairs(list[0])[0].key.mark == YAMLMark(line: 4, column: 7))
}

@Test func repeatedKeysAreKeptForTheReaderToReport() throws {
    let entries = pairs(try parse("a: 1\nb: 2\na: 3\n"))
    #expect(entries.map(\.key.string) == ["a", "b", "a"])
    #expect(entries[2].key.mark == YAMLMark(line: 3, column: 1))
}

@Test func documentMarkersCommentsCRLFAndBOM() throws {
    #expect(shape(try parse("\u{FEFF}# head\r\n---\r\na: 1\r\nb: [x]\r\n...\r\n# tail\r\n")) == "{a: 1, b: [x]}")
    #expect(try parse("") == nil)
    #expect(try parse("# nothing\n\n   \n") == nil)
    #expect(try parse("---\n") == nil)
}

@Test func escapedBlanksBeforeAFoldedLineBreakAreKept() throws {
    // `\t` and `\ ` are content, not the blanks that folding drops at the end of a line.
    let yaml = "tab: \"a\\t\n  b\"\nspace: \"a\\ \n  b\"\nboth: \"a\\   \n  b\"\nraw: \"a \t\n  b\"\n"
    #expect(pairs(try parse(yaml)).map { shape($0.value) } == ["a\t b", "a  b", "a  b", "a b"])
}

@Test func emptyLinesAfterAnEscapedLineBreakAreLineFeeds() throws {
    // `\` at a line's end joins the lines, but the empty lines between them still stand for line feeds.
    let yaml = "one: \"a\\\n\n  b\"\ntwo: \"a\\\n  \n\n  b\"\nnone: \"a\\\n  b\"\n"
    #expect(pairs(try parse(yaml)).map { shape($0.value) } == ["a\nb", "a\n\nb", "ab"])
}

@Test func aKeyValuePairInsideBracketsIsAMappingOfOneEntry() throws {
    let yaml = "a: [b: c, d, \"e\":f, g:, h: [i]]\n"
    #expect(shape(try parse(yaml)) == "{a: [{b: c}, d, {e: f}, {g: }, {h: [i]}]}")
    guard case .sequence(let items, _) = pairs(try parse(yaml))[0].value else {
        Issue.record("not a list")
        return
    }
    #expect(items.first?.mark == YAMLMark(line: 1, column: 5))
    #expect(pairs(items.first).map(\.value.mark) == [YAMLMark(line: 1, column: 8)])
}

@Test func aScalarOrBracketsMayStandOnTheLineOfTheDocumentStart() throws {
    let scalar = try parse("--- text # comment\n")
    #expect(shape(scalar) == "text")
    #expect(scalar?.mark == YAMLMark(line: 1, column: 5))
    #expect(shape(try parse("--- [a, {b: c}]\n...\n")) == "[a, {b: c}]")
    #expect(shape(try parse("--- \"two\n  lines\"\n")) == "two lines")
}

@Test func aCarriageReturnOnItsOwnEndsALine() throws {
    let yaml = "a: 1\rb:\r  - \"x\r  y\"\r"
    #expect(shape(try parse(yaml)) == "{a: 1, b: [x y]}")
    #expect(pairs(try parse(yaml)).map(\.key.mark) == [YAMLMark(line: 1, column: 1), YAMLMark(line: 2, column: 1)])
}

@Test func syntaxErrorsNameWhereReadingStopped() {
    let cases: [(yaml: String, line: Int, column: Int, containing: String)] = [
        ("a:\n  b: 1\n c: 2\n", 3, 2, "unexpected indentation"),
        ("a: 1\n...\nb: 2\n", 3, 1, "unexpected text at this indentation"),
        ("a: 1\n  b: 2\n", 2, 3, "unexpected indentation"),
        ("a:\n\tb: 1\n", 2, 1, "tab"),
        ("a: \"open\nb: 2\n", 1, 4, "never closed"),
        ("a: [1, 2\nb: 3\n", 2, 1, "expected \",\" or \"]\""),
        ("a: [1, 2", 1, 4, "never closed"),
        ("a: {k: v\n", 1, 4, "never closed"),
        ("a: b: c\n", 1, 5, "\": \" inside a value"),
        ("a: - x\n", 1, 4, "a list cannot start on the line of its key"),
        ("- [::1]:8080\n", 1, 8, "cannot be a key"),
        ("a: [::1]:8080\n", 1, 9, "unexpected text after the closing bracket"),
        ("a: &x 1\n", 1, 4, "anchors"),
        ("a: *x\n", 1, 4, "aliases"),
        ("a: !!str 1\n", 1, 4, "tags"),
        ("a: |\n  text\n", 1, 4, "block scalars"),
        ("? a\n: b\n", 1, 1, "complex keys"),
        ("%YAML 1.2\n---\na: 1\n", 1, 1, "directives"),
        ("a: 1\n---\nb: 2\n", 2, 1, "another document"),
        ("a: 1\n- b\n", 2, 1, "a list item where a key was expected"),
        ("a: 1\nb\n", 2, 2, "expected \":\" after the key \"b\""),
        ("a: \"\\q\"\n", 1, 5, "unknown escape"),
        ("a: \"\\u12\"\n", 1, 5, "hexadecimal digits"),
        ("a: [[b]: c]\n", 1, 8, "cannot be a key"),
        ("--- a: 1\n", 1, 6, "a mapping cannot start on the line of \"---\""),
        ("--- - a\n", 1, 5, "a list cannot start on the line of \"---\""),
        ("a: [- b]\n", 1, 5, "cannot go inside brackets"),
        ("a: @x\n", 1, 4, "cannot start a value"),
        ("[a]: b\n", 1, 4, "cannot be a key"),
        ("a: 'x' y\n", 1, 8, "unexpected text after the value"),
    ]
    for item in cases {
        let error = failure(item.yaml)
        #expect(error != nil, "\(item.yaml.debugDescription) parsed")
        guard let error else { continue }
        #expect(
            error.mark == YAMLMark(line: item.line, column: item.column),
            "\(item.yaml.debugDescription): \(error.mark) \(error.message)")
        #expect(error.message.contains(item.containing), "\(item.yaml.debugDescription): \(error.message)")
    }
}

@Test func deepNestingIsRefusedNotOverflowed() {
    let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
    #expect(failure(deep)?.message.contains("nest more than") == true)
    let fine = String(repeating: "[", count: 20) + "x" + String(repeating: "]", count: 20)
    #expect(failure(fine) == nil)
}
