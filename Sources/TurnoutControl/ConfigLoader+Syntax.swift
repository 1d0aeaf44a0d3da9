import Yams

// Turning Yams' errors into `ConfigError`s with a file, line and key.
//
// Yams refuses a mapping with a repeated key while composing, so the walk never sees it, and its error names only the
// first occurrence's position. To point at the repeat and give its dotted key, `duplicateKeyError` renames the first
// occurrence in a copy of the text (same line, so every other position stays put), composes the copy, and finds the
// repeat in the tree. If that fails for any reason it falls back to the first occurrence's position.

extension ConfigLoader {
    /// Composes `yaml` into a node tree, or throws a `ConfigError` for a syntax error or a duplicate key.
    static func compose(_ yaml: String, file: String) throws(ConfigError) -> Node? {
        do {
            return try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw convert(error, yaml: yaml, file: file)
        } catch {
            throw ConfigError(file: file, line: 1, column: 1, key: "", message: "cannot parse YAML: \(error)")
        }
    }

    /// A `ConfigError` for a Yams error.
    private static func convert(_ error: YamlError, yaml: String, file: String) -> ConfigError {
        func syntax(_ problem: String, _ context: YamlError.Context?, _ mark: Mark) -> ConfigError {
            var message = "invalid YAML: \(problem)"
            if let context {
                message += " (\(context.text), line \(context.mark.line))"
            }
            if looksLikeUnquotedIPv6(line: mark.line, in: yaml) {
                message += "; quote IPv6 addresses, e.g. \"[::1]:8080\", or YAML reads the brackets as a list"
            }
            return ConfigError(file: file, line: mark.line, column: mark.column, key: "", message: message)
        }
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            return syntax(problem, context, mark)
        case .reader(let problem, let offset, _, _):
            let (line, column) = position(ofCharacter: offset ?? 0, in: yaml)
            return ConfigError(file: file, line: line, column: column, key: "", message: "invalid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return duplicateKeyError(yaml: yaml, key: duplicates.first ?? "", first: context.mark, file: file)
        default:
            return ConfigError(file: file, line: 1, column: 1, key: "", message: "cannot parse YAML: \(error)")
        }
    }

    /// Whether line `number` holds something like `[::1]:8080` outside quotes.
    private static func looksLikeUnquotedIPv6(line number: Int, in yaml: String) -> Bool {
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.indices.contains(number - 1) else { return false }
        let line = lines[number - 1]
        guard let open = line.firstIndex(of: "["), !line[..<open].contains("\""), !line[..<open].contains("'") else {
            return false
        }
        return line[open...].contains("]:") && line[open...].dropFirst().prefix { $0 != "]" }.contains(":")
    }

    /// 1-based line and column of the character at `offset`.
    private static func position(ofCharacter offset: Int, in text: String) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        for character in text.prefix(offset) {
            if character == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }

    /// The error for `key` appearing twice in one mapping whose first occurrence is at `first`.
    static func duplicateKeyError(yaml: String, key: String, first: Mark, file: String) -> ConfigError {
        let fallback = ConfigError(
            file: file, line: first.line, column: first.column, key: key,
            message: "duplicate key \"\(key)\""
        )
        // Rename the first occurrence, and the first occurrence of any later duplicate, until the copy composes.
        var text = yaml
        var renamed: [String: String] = [:]
        var target = (key: key, mark: first)
        for attempt in 0..<16 {
            let placeholder = "turnout-duplicate-\(attempt)-\(yaml.utf8.count)"
            guard let replaced = replacing(key: target.key, at: target.mark, with: placeholder, in: text) else {
                return fallback
            }
            text = replaced
            renamed[placeholder] = target.key
            do {
                guard let root = try Yams.compose(yaml: text) else { return fallback }
                let original = "turnout-duplicate-0-\(yaml.utf8.count)"
                guard let (path, repeated) = findRepeat(of: original, named: key, in: root, path: "", renamed: renamed),
                    let mark = repeated.mark
                else { return fallback }
                let isPool = path == ConfigReader.join("pools", key)
                let message =
                    isPool
                    ? "pool \"\(key)\" is defined twice (first at line \(first.line))"
                    : "duplicate key (first at line \(first.line))"
                return ConfigError(file: file, line: mark.line, column: mark.column, key: path, message: message)
            } catch YamlError.duplicatedKeysInMapping(let duplicates, let context) {
                target = (duplicates.first ?? "", context.mark)
            } catch {
                return fallback
            }
        }
        return fallback
    }

    /// `text` with the scalar `key` that starts at `mark` (plain or quoted) replaced by `placeholder`.
    private static func replacing(key: String, at mark: Mark, with placeholder: String, in text: String) -> String? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.indices.contains(mark.line - 1) else { return nil }
        let line = Array(lines[mark.line - 1].unicodeScalars)
        let start = mark.column - 1
        guard start >= 0, start <= line.count else { return nil }
        let rest = String(String.UnicodeScalarView(line[start...]))
        let newRest: String
        if rest.hasPrefix(key) {
            newRest = placeholder + rest.dropFirst(key.count)
        } else if let quote = rest.first, quote == "\"" || quote == "'",
            rest.dropFirst().hasPrefix(key + String(quote))
        {
            newRest = String(quote) + placeholder + rest.dropFirst(1 + key.count)
        } else {
            return nil
        }
        lines[mark.line - 1] = String(String.UnicodeScalarView(line[..<start])) + newRest
        return lines.joined(separator: "\n")
    }

    /// Finds the mapping holding the key `placeholder` and returns the path and key node of its entry named `key`.
    private static func findRepeat(
        of placeholder: String, named key: String, in node: Node, path: String, renamed: [String: String]
    ) -> (String, Node)? {
        switch node {
        case .mapping(let mapping):
            let names = mapping.map { ($0.key.string ?? "", $0.key) }
            if let first = names.firstIndex(where: { $0.0 == placeholder }) {
                // The repeat is the next entry with the same name, which may itself have been renamed.
                guard let repeated = names[(first + 1)...].first(where: { ($0.0 == key || renamed[$0.0] == key) })
                else { return nil }
                return (ConfigReader.join(path, key), repeated.1)
            }
            for (name, value) in zip(names.map { renamed[$0.0] ?? $0.0 }, mapping.map(\.value)) {
                if let found = findRepeat(
                    of: placeholder, named: key, in: value, path: ConfigReader.join(path, name), renamed: renamed
                ) {
                    return found
                }
            }
            return nil
        case .sequence(let sequence):
            for (index, element) in sequence.enumerated() {
                if let found = findRepeat(
                    of: placeholder, named: key, in: element, path: "\(path)[\(index)]", renamed: renamed
                ) {
                    return found
                }
            }
            return nil
        case .scalar, .alias:
            return nil
        }
    }
}
