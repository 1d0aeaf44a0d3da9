import CTurnoutSys
import Logging
import TurnoutCore
import TurnoutHTTP
import TurnoutRouting

/// Reads `turnout.yaml` into a validated `TurnoutConfig`.
///
/// The YAML is composed into a node tree by `YAMLParser` and walked by hand, so that every error, including YAML syntax
/// errors and repeated keys, names the file, the 1-based line and column, and the dotted key (see `ConfigError`).
/// Unknown keys at any level, values of the wrong shape, values out of range and missing required keys (`listen`,
/// `pools`, `active`) are all errors; the first one in file order is reported. The file format is documented in
/// `docs/configuration.md`.
///
/// `workers: auto` (also the default) is resolved here, to the number of CPUs the process may run on, so
/// `settings.workers` is always a concrete count. A relative `log.access` path is resolved against the folder of the
/// configuration file (made absolute against the current directory when the config path is itself relative).
public enum ConfigLoader {
    /// Reads and validates the configuration file at `path`.
    public static func load(path: String) throws(ConfigError) -> TurnoutConfig {
        let bytes: [UInt8]
        switch FileSystem.read(path) {
        case .success(let read): bytes = read
        case .failure(let reason):
            let what = reason == .missing ? "does not exist" : "cannot be read"
            throw ConfigError(file: path, line: 0, column: 0, key: "", message: "the configuration file \(what)")
        }
        guard let yaml = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(file: path, line: 0, column: 0, key: "", message: "the configuration file is not UTF-8")
        }
        return try parse(yaml: yaml, path: path)
    }

    /// Validates configuration text; `path` names it in errors and anchors a relative `log.access` path.
    public static func parse(yaml: String, path: String) throws(ConfigError) -> TurnoutConfig {
        let reader = ConfigReader(file: path)
        guard let root = try compose(yaml, file: path) else {
            throw ConfigError(
                file: path, line: 1, column: 1, key: "listen", message: "required key is missing (the file is empty)"
            )
        }
        let top = try reader.mapping(root, "", what: "a mapping of settings", allowsNull: false)

        var settings = ProxySettings()
        settings.workers = Int(cturnout_usable_cpu_count())
        var pools: [Pool] = []
        var logLevel = Logger.Level.info
        var admin = AdminSettings()
        var state = StateSettings()
        for entry in top.entries {
            switch entry.name {
            case "workers": settings.workers = try workers(entry, reader)
            case "listen": settings.listeners = try listeners(entry, reader)
            case "pools": pools = try readPools(entry, reader)
            case "active": _ = try reader.text(entry.value, entry.path, what: "the name of a pool")
            case "split", "routing": break  // read below, once the pools are known
            case "admin": admin = try readAdmin(entry, reader, configPath: path)
            case "state": state = try readState(entry, reader, configPath: path)
            case "timeouts": settings.timeouts = try timeouts(entry, reader)
            case "limits": settings.limits = try limits(entry, reader)
            case "upstream": settings.upstream = try upstream(entry, reader)
            case "headers": settings.headers = try headers(entry, reader)
            case "connect": break  // read below, once the pools are known
            case "log": (logLevel, settings.accessLog) = try log(entry, reader, configPath: path)
            case "busy_poll": settings.busyPollMicroseconds = try reader.busyPoll(entry.value, entry.path)
            case "defer_accept": settings.deferAccept = try reader.bool(entry.value, entry.path)
            default: throw reader.unknownKey(entry, allowed: topLevelKeys)
            }
        }
        for required in ["listen", "pools"] where top[required] == nil {
            throw reader.missingKey(required, in: top)
        }
        if let entry = top["connect"] { settings.connect = try connect(entry, pools: pools, reader) }
        let split = try readSplit(in: top, pools: pools, reader)
        let routing = try top["routing"].map { entry throws(ConfigError) in try readRouting(entry, pools: pools, reader) }
        var config = TurnoutConfig(
            settings: settings, pools: pools, split: split, routing: routing ?? RoutingPolicy(), logLevel: logLevel,
            sourcePath: path)
        config.admin = admin
        config.state = state
        return config
    }

    /// The keys allowed at the top level, in documentation order.
    static let topLevelKeys = [
        "workers", "listen", "pools", "active", "split", "routing", "timeouts", "limits", "upstream", "headers",
        "connect", "log", "admin", "state", "busy_poll", "defer_accept",
    ]

    /// Upper bound on `workers`: far more than any machine this runs on has cores.
    static let maxWorkers = 1024

    // MARK: Sections

    /// `workers`: `auto` or an integer from 1 to `maxWorkers`.
    private static func workers(_ entry: ConfigEntry, _ reader: ConfigReader) throws(ConfigError) -> Int {
        let what = "\"auto\" or an integer from 1 to \(maxWorkers)"
        let text = try reader.text(entry.value, entry.path, what: what)
        if text == "auto" { return Int(cturnout_usable_cpu_count()) }
        guard let count = ConfigValues.decimal(text), (1...maxWorkers).contains(count) else {
            let got = ConfigReader.describe(entry.value)
            throw reader.error(at: entry.value, entry.path, "expected \(what), got \(got)")
        }
        return count
    }

    /// `listen`: one or more distinct `host:port` IP addresses.
    private static func listeners(_ entry: ConfigEntry, _ reader: ConfigReader) throws(ConfigError) -> [ListenAddress] {
        let items = try reader.sequence(entry.value, entry.path, what: "a list of \"host:port\" addresses")
        guard !items.isEmpty else {
            throw reader.error(at: entry.value, entry.path, "expected at least one address to listen on")
        }
        var listeners: [ListenAddress] = []
        var firstLines: [ListenAddress: Int] = [:]
        for item in items {
            let (host, port) = try reader.address(item.node, item.path)
            let listener = ListenAddress(host: host, port: port)
            let line = item.node.mark.line
            if let first = firstLines[listener] {
                throw reader.error(at: item.node, item.path, "\(listener) is listed twice (first at line \(first))")
            }
            firstLines[listener] = line
            listeners.append(listener)
        }
        return listeners
    }

    /// `timeouts`: durations; all must be positive except `drain`, where 0 means "do not wait".
    private static func timeouts(_ entry: ConfigEntry, _ reader: ConfigReader) throws(ConfigError) -> TimeoutSettings {
        let fields: [(name: String, field: WritableKeyPath<TimeoutSettings, Int>)] = [
            ("client_header", \.clientHeaderMs),
            ("client_idle", \.clientIdleMs),
            ("body_idle", \.bodyIdleMs),
            ("body_rate_window", \.bodyRateWindowMs),
            ("upstream_connect", \.upstreamConnectMs),
            ("upstream_response", \.upstreamResponseMs),
            ("upstream_idle", \.upstreamIdleMs),
            ("drain", \.drainMs),
        ]
        var timeouts = TimeoutSettings()
        for item in try reader.mapping(entry.value, entry.path).entries {
            guard let field = fields.first(where: { $0.name == item.name }) else {
                throw reader.unknownKey(item, allowed: fields.map(\.name))
            }
            let isDrain = item.name == "drain"
            timeouts[keyPath: field.field] = try reader.duration(item.value, item.path, allowsZero: isDrain)
        }
        return timeouts
    }

    /// `limits`: head limits, buffer size and body size.
    private static func limits(_ entry: ConfigEntry, _ reader: ConfigReader) throws(ConfigError) -> LimitSettings {
        let keys = ["max_request_line", "max_header_size", "max_headers", "buffer_size", "max_body_size", "max_connections",
                    "min_body_rate"]
        var limits = LimitSettings()
        let mapping = try reader.mapping(entry.value, entry.path)
        for item in mapping.entries {
            switch item.name {
            case "max_request_line":
                limits.head.maxStartLineBytes = Int(try reader.size(item.value, item.path, in: 256...(1 << 20)))
            case "max_header_size":
                limits.head.maxHeadBytes = Int(try reader.size(item.value, item.path, in: 1024...(16 << 20)))
            case "max_headers":
                limits.head.maxHeaderCount = try reader.integer(item.value, item.path, in: 1...10_000)
            case "buffer_size":
                limits.bufferBytes = Int(try reader.size(item.value, item.path, in: (4 << 10)...(1 << 20)))
            case "max_body_size":
                limits.maxBodyBytes = try reader.size(item.value, item.path, in: 0...Int64.max)
            case "max_connections":
                limits.maxConnections = try reader.integer(item.value, item.path, in: 1...10_000_000)
            case "min_body_rate":
                limits.minBodyRate = try reader.size(item.value, item.path, in: 0...(1 << 40))
            default:
                throw reader.unknownKey(item, allowed: keys)
            }
        }
        if limits.head.maxHeadBytes < limits.head.maxStartLineBytes {
            // The head includes the request line, so a smaller head limit would make the line limit meaningless.
            let culprit = mapping["max_header_size"] ?? mapping["max_request_line"]
            throw reader.error(
                at: culprit?.value, culprit?.path ?? entry.path,
                "max_header_size (\(ConfigValues.describeBytes(Int64(limits.head.maxHeadBytes)))) must be at least "
                    + "max_request_line (\(ConfigValues.describeBytes(Int64(limits.head.maxStartLineBytes)))), "
                    + "because the request head includes the request line"
            )
        }
        return limits
    }

    /// `connect`: whether CONNECT is forwarded, to which target ports and to which pools.
    private static func connect(
        _ entry: ConfigEntry, pools: [Pool], _ reader: ConfigReader
    ) throws(ConfigError) -> ConnectSettings {
        var connect = ConnectSettings()
        let mapping = try reader.mapping(entry.value, entry.path)
        for item in mapping.entries {
            switch item.name {
            case "enabled":
                connect.isEnabled = try reader.bool(item.value, item.path)
            case "ports":
                let what = "a list of ports from 1 to 65535"
                let ports = try reader.sequence(item.value, item.path, what: what)
                guard !ports.isEmpty else {
                    let why = "an empty list would refuse every CONNECT (use enabled: false)"
                    throw reader.error(at: item.value, item.path, "expected \(what); \(why)")
                }
                connect.ports = []
                for port in ports {
                    let value = try reader.integer(port.node, port.path, in: 1...65_535)
                    if connect.ports.contains(value) {
                        throw reader.error(at: port.node, port.path, "port \(value) is listed twice")
                    }
                    connect.ports.append(value)
                }
            case "pools":
                let what = "a list of pool names"
                for name in try reader.sequence(item.value, item.path, what: what) {
                    let text = try reader.text(name.node, name.path, what: "the name of a pool")
                    guard pools.contains(where: { $0.name == text }) else {
                        let known = pools.map(\.name).joined(separator: ", ")
                        throw reader.error(at: name.node, name.path, "no pool named \"\(text)\" (pools: \(known))")
                    }
                    if connect.pools.contains(text) {
                        throw reader.error(at: name.node, name.path, "pool \(text) is listed twice")
                    }
                    connect.pools.append(text)
                }
            default:
                throw reader.unknownKey(item, allowed: ["enabled", "ports", "pools"])
            }
        }
        if connect.isEnabled && connect.pools.isEmpty {
            throw reader.error(
                at: entry.value, entry.path,
                "enabled CONNECT needs pools: the pools whose members terminate tunnels (an ordinary origin "
                    + "must never receive a CONNECT)")
        }
        return connect
    }

    /// `upstream`: connection pooling towards members.
    private static func upstream(_ entry: ConfigEntry, _ reader: ConfigReader) throws(ConfigError) -> UpstreamSettings {
        var upstream = UpstreamSettings()
        for item in try reader.mapping(entry.value, entry.path).entries {
            switch item.name {
            case "max_idle_per_member":
                upstream.maxIdlePerMember = try reader.integer(item.value, item.path, in: 0...10_000)
            case "max_fails":
                upstream.maxFails = try reader.integer(item.value, item.path, in: 1...1_000)
            case "fail_timeout":
                upstream.failTimeoutMs = try reader.duration(item.value, item.path, allowsZero: false)
            default:
                throw reader.unknownKey(item, allowed: ["max_idle_per_member", "max_fails", "fail_timeout"])
            }
        }
        return upstream
    }

    /// `headers`: how forwarded requests are rewritten.
    private static func headers(_ entry: ConfigEntry, _ reader: ConfigReader) throws(ConfigError) -> HeaderSettings {
        var headers = HeaderSettings()
        for item in try reader.mapping(entry.value, entry.path).entries {
            switch item.name {
            case "trust_forwarded":
                headers.trustForwarded = try reader.bool(item.value, item.path)
            case "preserve_host":
                headers.preserveHost = try reader.bool(item.value, item.path)
            case "request_id":
                let what = "a header name, or \"\" to add no request id"
                let name = try reader.text(item.value, item.path, what: what)
                guard name.isEmpty || ConfigValues.isHeaderToken(name) else {
                    throw reader.error(
                        at: item.value, item.path,
                        "expected \(what), got \(ConfigReader.describe(item.value)), which is not a valid header name "
                            + "(letters, digits and !#$%&'*+-.^_`|~ only)"
                    )
                }
                headers.requestIDHeader = name
            default:
                throw reader.unknownKey(item, allowed: ["trust_forwarded", "preserve_host", "request_id"])
            }
        }
        return headers
    }

    /// `log`: the process log level and the access log.
    private static func log(_ entry: ConfigEntry, _ reader: ConfigReader, configPath: String) throws(ConfigError)
        -> (Logger.Level, AccessLogSettings)
    {
        var level = Logger.Level.info
        var accessLog = AccessLogSettings()
        for item in try reader.mapping(entry.value, entry.path).entries {
            switch item.name {
            case "level":
                let levels = Logger.Level.allCases.map(\.rawValue)
                let what = "one of " + levels.joined(separator: ", ")
                guard let parsed = Logger.Level(rawValue: try reader.text(item.value, item.path, what: what)) else {
                    throw reader.error(
                        at: item.value, item.path, "expected \(what), got \(ConfigReader.describe(item.value))"
                    )
                }
                level = parsed
            case "access":
                let what = "stdout, stderr, off or a file path"
                switch try reader.text(item.value, item.path, what: what) {
                case "stdout": accessLog.destination = .stdout
                case "stderr": accessLog.destination = .stderr
                case "off": accessLog.destination = .off
                case "": throw reader.error(at: item.value, item.path, "expected \(what), got an empty string")
                case let file: accessLog.destination = .file(resolve(file, relativeTo: configPath))
                }
            case "format":
                let text = try reader.text(item.value, item.path, what: "text or json")
                guard let format = AccessLogSettings.Format(rawValue: text) else {
                    throw reader.error(
                        at: item.value, item.path, "expected text or json, got \(ConfigReader.describe(item.value))"
                    )
                }
                accessLog.format = format
            default:
                throw reader.unknownKey(item, allowed: ["level", "access", "format"])
            }
        }
        return (level, accessLog)
    }

    /// `file` as an absolute, normalised path: relative paths are taken from the folder holding `configPath`.
    static func resolve(_ file: String, relativeTo configPath: String) -> String {
        if file.hasPrefix("/") { return FileSystem.normalized(file) }
        let config = FileSystem.absolute(configPath)
        let folder = config.split(separator: "/", omittingEmptySubsequences: true).dropLast().joined(separator: "/")
        return FileSystem.normalized("/" + folder + "/" + file)
    }
}
