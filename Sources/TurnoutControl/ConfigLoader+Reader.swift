// Walking a composed YAML tree (`YAMLNode`). Every accessor takes the node and its dotted path so that any error it throws names
// the file, the node's line and column, and the key. A scalar's meaning comes from its text and the key it sits under,
// never from YAML's own typing: `"2"` and `2` are the same weight, and `off` is just the word "off".

/// A YAML mapping entry whose key is a scalar.
struct ConfigEntry {
    /// The key's text.
    var name: String
    /// The key node, for errors about the key itself.
    var keyNode: YAMLNode
    /// The value node.
    var value: YAMLNode
    /// Dotted path of the value, e.g. `timeouts.drain`.
    var path: String
}

/// A YAML mapping with scalar keys, in file order.
struct ConfigMapping {
    /// The mapping node, or nil when the section was written with no value at all.
    var node: YAMLNode?
    /// Dotted path of the mapping; empty for the document root.
    var path: String
    /// The entries in file order.
    var entries: [ConfigEntry]

    /// The value of `name`, if present.
    subscript(name: String) -> ConfigEntry? {
        entries.first { $0.name == name }
    }
}

/// Turns nodes into values, or into `ConfigError`s that point at them.
struct ConfigReader {
    /// Path of the file being read, as given to the loader.
    var file: String

    /// An error at `node`'s position (line 1, column 1 when the node has no position).
    func error(at node: YAMLNode?, _ path: String, _ message: String) -> ConfigError {
        let mark = node?.mark ?? YAMLMark(line: 1, column: 1)
        return ConfigError(file: file, line: mark.line, column: mark.column, key: path, message: message)
    }

    /// The error for a key this section does not know, suggesting the nearest known key.
    func unknownKey(_ entry: ConfigEntry, allowed: [String]) -> ConfigError {
        let nearest = allowed.min { editDistance(entry.name, $0) < editDistance(entry.name, $1) }
        let hint: String
        if let nearest, editDistance(entry.name, nearest) <= 2 {
            hint = "did you mean \"\(nearest)\"?"
        } else {
            hint = "expected one of: " + allowed.joined(separator: ", ")
        }
        return error(at: entry.keyNode, entry.path, "unknown key; \(hint)")
    }

    /// The error for a required key that is absent from `mapping`.
    func missingKey(_ name: String, in mapping: ConfigMapping) -> ConfigError {
        error(at: mapping.node, ConfigReader.join(mapping.path, name), "required key is missing")
    }

    /// `parent.child`, or `child` at the root.
    static func join(_ parent: String, _ child: String) -> String {
        parent.isEmpty ? child : parent + "." + child
    }

    // MARK: Shapes

    /// Whether `node` is an empty plain scalar, `~` or `null`: a key written with no value.
    static func isNull(_ node: YAMLNode) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// How a node is named in "got …" messages.
    static func describe(_ node: YAMLNode) -> String {
        switch node {
        case .scalar(let scalar):
            if isNull(node) { return "nothing" }
            var quoted = "\""
            for character in scalar.string {
                if character == "\"" { quoted += "\\" }
                quoted.append(character)
            }
            return quoted + "\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    /// `node` as a mapping with scalar keys. A section written with no value (`timeouts:`) reads as empty when
    /// `allowsNull`.
    func mapping(_ node: YAMLNode, _ path: String, what: String = "a mapping", allowsNull: Bool = true)
        throws(ConfigError) -> ConfigMapping
    {
        if allowsNull, ConfigReader.isNull(node) {
            return ConfigMapping(node: node, path: path, entries: [])
        }
        guard case .mapping(let pairs, _) = node else {
            throw error(at: node, path, "expected \(what), got \(ConfigReader.describe(node))")
        }
        var entries: [ConfigEntry] = []
        for pair in pairs {
            let name = pair.key.string
            entries.append(
                ConfigEntry(name: name, keyNode: .scalar(pair.key), value: pair.value, path: ConfigReader.join(path, name)))
        }
        return ConfigMapping(node: node, path: path, entries: entries)
    }

    /// `node` as a list of (node, path) pairs, paths suffixed `[i]`.
    func sequence(_ node: YAMLNode, _ path: String, what: String) throws(ConfigError) -> [(node: YAMLNode, path: String)] {
        guard case .sequence(let sequence, _) = node else {
            throw error(at: node, path, "expected \(what), got \(ConfigReader.describe(node))")
        }
        return sequence.enumerated().map { (node: $1, path: "\(path)[\($0)]") }
    }

    /// The text of a scalar. A key written with no value is an error, naming `what` was expected.
    func text(_ node: YAMLNode, _ path: String, what: String) throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node, !ConfigReader.isNull(node) else {
            throw error(at: node, path, "expected \(what), got \(ConfigReader.describe(node))")
        }
        return scalar.string
    }

    // MARK: Scalars

    /// `true` or `false` (any case YAML allows: `true`, `True`, `TRUE`).
    func bool(_ node: YAMLNode, _ path: String) throws(ConfigError) -> Bool {
        let what = "true or false"
        switch try text(node, path, what: what) {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: throw error(at: node, path, "expected \(what), got \(ConfigReader.describe(node))")
        }
    }

    /// A decimal integer in `range`.
    func integer(_ node: YAMLNode, _ path: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let what: String
        switch (range.lowerBound, range.upperBound) {
        case (1, Int.max): what = "a positive integer"
        case (0, Int.max): what = "a non-negative integer"
        case (let low, let high): what = "an integer from \(low) to \(high)"
        }
        let text = try text(node, path, what: what)
        guard let value = ConfigValues.decimal(text), range.contains(value) else {
            throw error(at: node, path, "expected \(what), got \(ConfigReader.describe(node))")
        }
        return value
    }

    /// A duration in milliseconds: `250ms`, `10s`, `2m`, `1h`, or a bare integer meaning seconds.
    func duration(_ node: YAMLNode, _ path: String, allowsZero: Bool) throws(ConfigError) -> Int {
        let what = "a duration such as \"250ms\", \"10s\", \"2m\" or a number of seconds"
        let text = try text(node, path, what: what)
        guard let milliseconds = ConfigValues.milliseconds(text) else {
            throw error(at: node, path, "expected \(what), got \(ConfigReader.describe(node))")
        }
        guard allowsZero || milliseconds > 0 else {
            throw error(at: node, path, "must be longer than zero")
        }
        return milliseconds
    }

    /// `busy_poll`: `off`, or a duration from 0 to `maxBusyPollMicroseconds` in `us` (or `µs`), `ms` or `s`.
    func busyPoll(_ node: YAMLNode, _ path: String) throws(ConfigError) -> Int {
        let what = "off or a duration such as \"50us\" (us, µs, ms or s)"
        let text = try text(node, path, what: what)
        if text == "off" { return 0 }
        guard let micro = ConfigValues.microseconds(text) else {
            throw error(at: node, path, "expected \(what), got \(ConfigReader.describe(node))")
        }
        guard micro <= ConfigReader.maxBusyPollMicroseconds else {
            throw error(at: node, path, "must be at most 1ms (polling longer than that costs more than sleeping), got \(ConfigReader.describe(node))")
        }
        return micro
    }

    /// Upper bound on `busy_poll`.
    static let maxBusyPollMicroseconds = 1_000

    /// A size in bytes: a bare integer, or one followed by `k`/`KiB`, `m`/`MiB`, `g`/`GiB` (1024-based).
    func size(_ node: YAMLNode, _ path: String, in range: ClosedRange<Int64>) throws(ConfigError) -> Int64 {
        let what = "a size: a number of bytes, optionally followed by k, KiB, m, MiB, g or GiB (1024-based)"
        let text = try text(node, path, what: what)
        guard let bytes = ConfigValues.bytes(text) else {
            throw error(at: node, path, "expected \(what), got \(ConfigReader.describe(node))")
        }
        guard range.contains(bytes) else {
            let low = ConfigValues.describeBytes(range.lowerBound)
            if range.upperBound == Int64.max {
                throw error(at: node, path, "must be at least \(low), got \(ConfigReader.describe(node))")
            }
            let high = ConfigValues.describeBytes(range.upperBound)
            throw error(at: node, path, "must be from \(low) to \(high), got \(ConfigReader.describe(node))")
        }
        return bytes
    }

    /// A `host:port` whose host is an IP literal (IPv6 in brackets), with the host in canonical form.
    func address(_ node: YAMLNode, _ path: String) throws(ConfigError) -> (host: String, port: UInt16) {
        let what = "\"host:port\" with an IP address host (IPv6 in brackets, e.g. \"[::1]:8080\")"
        let text = try text(node, path, what: what)
        switch ConfigValues.ipAddress(text) {
        case .valid(let host, let port):
            return (host, port)
        case .hostName(let host):
            throw error(
                at: node, path,
                "\"\(host)\" is not an IP address; addresses must be IP literals such as 127.0.0.1 or [::1] "
                    + "because workers never resolve host names (no DNS)"
            )
        case .malformed:
            throw error(at: node, path, "expected \(what), got \(ConfigReader.describe(node))")
        }
    }
}

/// Levenshtein distance, for "did you mean" hints on short keys.
private func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars)
    let b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count)
    var current = previous
    for i in 1...a.count {
        current[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
