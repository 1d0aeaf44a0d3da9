// libFuzzer entry point for the configuration YAML reader and the admin/state JSON codec.
//
// Built only on request (`make fuzz-config`): compiled in one module with
// Sources/TurnoutControl/YAML.swift and JSON.swift (both depend on TurnoutHTTP only), with
// -sanitize=fuzzer,address. The first input byte picks the reader: even → YAML, odd → JSON.
// Besides "never crash or overflow the stack", it checks invariants:
// - YAML: every mark lies inside the text (line and column of a real character, or the end);
//   an error's mark too;
// - JSON: a text that parses serialises, and that serialisation parses back to the same
//   bytes when serialised again (plain and pretty, sorted keys).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if data[0] & 1 == 0 {
        fuzzYAML(input)
    } else {
        fuzzJSON(input)
    }
    return 0
}

/// Line lengths (in Unicode scalars) of `text`, for checking marks; LF, CR LF and CR each end a line, as in
/// YAMLParser.
private func lineLengths(_ text: String) -> [Int] {
    var lengths = [0]
    var previous: Unicode.Scalar?
    for scalar in text.unicodeScalars {
        if scalar == "\n" && previous == "\r" {
            previous = nil
            continue
        }
        if scalar == "\n" || scalar == "\r" {
            lengths.append(0)
        } else {
            lengths[lengths.count - 1] += 1
        }
        previous = scalar
    }
    return lengths
}

private func check(_ mark: YAMLMark, _ lines: [Int]) {
    precondition(mark.line >= 1 && mark.line <= lines.count, "mark line \(mark.line) outside 1...\(lines.count)")
    // A byte-order mark is dropped before reading, so the first line may be one shorter.
    precondition(mark.column >= 1 && mark.column <= lines[mark.line - 1] + 1, "mark column \(mark) outside the line")
}

private func checkMarks(_ node: YAMLNode, _ lines: [Int]) {
    check(node.mark, lines)
    switch node {
    case .scalar: break
    case .sequence(let items, _): for item in items { checkMarks(item, lines) }
    case .mapping(let pairs, _):
        for pair in pairs {
            check(pair.key.mark, lines)
            checkMarks(pair.value, lines)
        }
    }
}

private func fuzzYAML(_ input: [UInt8]) {
    guard let text = String(validating: input, as: UTF8.self) else { return }
    let lines = lineLengths(text)
    do {
        if let root = try YAMLParser.parse(text) { checkMarks(root, lines) }
    } catch {
        check(error.mark, lines)
    }
}

private func fuzzJSON(_ input: [UInt8]) {
    guard let value = try? JSON.parse(input) else { return }
    for pretty in [false, true] {
        guard let once = try? JSON.serialize(value, pretty: pretty, sortedKeys: true) else {
            preconditionFailure("a parsed value does not serialise")
        }
        guard let back = try? JSON.parse(once) else { preconditionFailure("serialised JSON does not parse") }
        guard let twice = try? JSON.serialize(back, pretty: pretty, sortedKeys: true) else {
            preconditionFailure("a re-parsed value does not serialise")
        }
        precondition(once == twice, "serialise(parse(serialise(x))) differs from serialise(x)")
    }
}
