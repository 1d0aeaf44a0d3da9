import Logging
import TurnoutCore
import TurnoutRouting

/// The admin API: where it listens and who may use it.
public struct AdminSettings: Equatable, Sendable {
    /// Unix socket path; nil: `AdminEndpoint.defaultSocketPath` (shared with turnoutctl).
    public var socketPath: String?
    /// Optional loopback TCP listener (requires a bearer token from `tokenFile`).
    public var listen: ListenAddress?
    /// File of `NAME:TOKEN` lines (or a single bare token) accepted on the TCP listener.
    public var tokenFile: String?
    /// Previous states kept for repeated rollback.
    public var historyLimit = 20

    public init() {}
}

/// Where operator state and the audit trail are kept.
public struct StateSettings: Equatable, Sendable {
    /// What to do with a state file that cannot be loaded.
    public enum OnCorrupt: String, Equatable, Sendable, CaseIterable {
        /// Rename it aside and start from the configuration's split and members.
        case startFromConfig = "start_from_config"
        /// Refuse to start.
        case refuse
    }

    /// The state file; nil: `turnout.state.json` beside the configuration file.
    public var file: String?
    /// The audit log (JSON lines); nil: `turnout.audit.log` beside the configuration file.
    public var auditFile: String?
    public var onCorrupt = OnCorrupt.startFromConfig

    public init() {}
}

/// The whole validated configuration.
///
/// Built only by `ConfigLoader`, which guarantees: at least one listener, at least one pool, pool names unique and
/// matching `[A-Za-z0-9_-]+`, every pool non-empty with unique members and at least one member of positive weight,
/// `split` with one share per pool adding up to 100 %, rules and overrides naming only pools that exist, and `settings.workers` already resolved to a positive count (`auto` becomes
/// the number of active processors when the file is loaded).
public struct TurnoutConfig: Equatable, Sendable {
    /// Listeners, workers, timeouts, limits, header rewriting, upstream pooling and the access log.
    public var settings: ProxySettings
    /// The pools, in file order.
    public var pools: [Pool]
    /// How weighted traffic is divided between `pools` (one share per pool, in pool order).
    public var split: Split
    /// Cohorts, overrides, match rules and the upstream pool header.
    public var routing: RoutingPolicy
    /// The admin API.
    public var admin = AdminSettings()
    /// The state file and the audit log.
    public var state = StateSettings()
    /// Threshold of the process logger, from `log.level`.
    public var logLevel: Logging.Logger.Level
    /// Path of the file the configuration came from, as given to the loader.
    public var sourcePath: String

    /// The pool taking 100 % of the default split, if one does (`active: NAME`).
    public var activePool: String? { split.soleIndex.map { pools[$0].name } }

    /// `blue 95%, green 5%`: the default split for humans.
    public var splitDescription: String {
        zip(pools, split.partsPerMillion).filter { $0.1 > 0 }.map { "\($0.0.name) \(Split.formatPercent($0.1))" }
            .joined(separator: ", ")
    }

    /// The state file path (absolute).
    public var stateFilePath: String {
        state.file ?? ConfigLoader.resolve("turnout.state.json", relativeTo: sourcePath)
    }

    /// The audit log path (absolute).
    public var auditFilePath: String {
        state.auditFile ?? ConfigLoader.resolve("turnout.audit.log", relativeTo: sourcePath)
    }

    /// The routing snapshot this configuration starts with.
    public func makeRouteTable(generation: UInt64 = 1) -> RouteTable {
        RouteTable(generation: generation, pools: pools, split: split, policy: routing)
    }

    /// Creates a configuration. Prefer `ConfigLoader`, which validates.
    public init(
        settings: ProxySettings,
        pools: [Pool],
        split: Split,
        routing: RoutingPolicy = RoutingPolicy(),
        logLevel: Logging.Logger.Level,
        sourcePath: String
    ) {
        self.settings = settings
        self.pools = pools
        self.split = split
        self.routing = routing
        self.logLevel = logLevel
        self.sourcePath = sourcePath
    }
}

/// A configuration file that cannot be used, with the position and dotted key of the first problem.
///
/// `description` reads like a compiler diagnostic:
/// `turnout.yaml:12:5: pools.blue.members[1].weight: expected an integer from 0 to 10000, got "x"`.
/// Sequence indices are 0-based. `key` is empty for problems that belong to no key (YAML syntax errors, an
/// unreadable file); `line` and `column` are 0 only when the file could not be read at all.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Path of the configuration file, as given to the loader.
    public var file: String
    /// 1-based line of the offending node.
    public var line: Int
    /// 1-based column of the offending node, counted in Unicode scalars.
    public var column: Int
    /// Dotted path of the offending key, e.g. `pools.blue.members[1].weight`.
    public var key: String
    /// What is wrong, and where possible what was expected.
    public var message: String

    /// Creates an error.
    public init(file: String, line: Int, column: Int, key: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.message = message
    }

    /// `file:line:column: key: message`, leaving out the parts that are unknown.
    public var description: String {
        var text = file
        if line > 0 { text += ":\(line):\(column)" }
        if !key.isEmpty { text += ": \(key)" }
        return text + ": " + message
    }
}
