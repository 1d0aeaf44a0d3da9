// Turning configuration text into a node tree, or YAML errors into `ConfigError`s with a file, line and key.
//
// `YAMLParser` keeps a repeated key in its mapping; `compose` looks for one before anything else reads the tree, so a
// repeat is reported at the repeat itself, with its dotted key and the line of the first occurrence.

extension ConfigLoader {
    /// Composes `yaml` into a node tree, or throws a `ConfigError` for a syntax error or a repeated key.
    static func compose(_ yaml: String, file: String) throws(ConfigError) -> YAMLNode? {
        let root: YAMLNode?
        do {
            root = try YAMLParser.parse(yaml)
        } catch {
            var message = "invalid YAML: \(error.message)"
            if looksLikeUnquotedIPv6(line: error.mark.line, in: yaml) {
                message += "; quote IPv6 addresses, e.g. \"[::1]:8080\", or YAML reads the brackets as a list"
            }
            throw ConfigError(file: file, line: error.mark.line, column: error.mark.column, key: "", message: message)
        }
        if let root { try checkRepeatedKeys(root, path: "", file: file) }
        return root
    }

    /// Throws for the first key, in file order, that its mapping already holds.
    private static func checkRepeatedKeys(_ node: YAMLNode, path: String, file: String) throws(ConfigError) {
        switch node {
        case .scalar:
            return
        case .sequence(let items, _):
            for (index, item) in items.enumerated() {
                try checkRepeatedKeys(item, path: "\(path)[\(index)]", file: file)
            }
        case .mapping(let pairs, _):
            var firstLines: [String: Int] = [:]
            for pair in pairs {
                let name = pair.key.string
                let keyPath = ConfigReader.join(path, name)
                if let first = firstLines[name] {
                    let message =
                        keyPath == ConfigReader.join("pools", name) && path == "pools"
                        ? "pool \"\(name)\" is defined twice (first at line \(first))"
                        : "duplicate key (first at line \(first))"
                    let mark = pair.key.mark
                    throw ConfigError(file: file, line: mark.line, column: mark.column, key: keyPath, message: message)
                }
                firstLines[name] = pair.key.mark.line
                try checkRepeatedKeys(pair.value, path: keyPath, file: file)
            }
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
}
