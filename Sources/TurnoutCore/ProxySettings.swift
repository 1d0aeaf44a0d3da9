import TurnoutHTTP
import TurnoutRouting

/// A listening address: an IP literal (v4 or v6) and a port.
public struct ListenAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public var description: String { MemberAddress(host: host, port: port).description }
}

/// Timeouts, in milliseconds. Defaults follow nginx and HAProxy practice.
public struct TimeoutSettings: Equatable, Sendable {
    /// Total time a client has to send a complete request head.
    public var clientHeaderMs: Int = 10_000
    /// How long an idle keep-alive client connection stays open.
    public var clientIdleMs: Int = 60_000
    /// Longest pause while a request or response body is moving.
    public var bodyIdleMs: Int = 60_000
    /// The window over which `limits.minBodyRate` is checked.
    public var bodyRateWindowMs: Int = 10_000
    /// Time to establish an upstream TCP connection.
    public var upstreamConnectMs: Int = 5_000
    /// Time from the request being sent to the first response byte.
    public var upstreamResponseMs: Int = 60_000
    /// How long an idle pooled upstream connection is kept.
    public var upstreamIdleMs: Int = 60_000
    /// How long shutdown waits for in-flight requests.
    public var drainMs: Int = 30_000

    public init() {}
}

/// Size limits per connection and per message.
public struct LimitSettings: Equatable, Sendable {
    public var head = HTTPHeadLimits()
    /// Size of each per-connection I/O buffer; bounds memory per connection.
    public var bufferBytes: Int = 16 * 1024
    /// Largest accepted request body; 0 means no limit.
    public var maxBodyBytes: Int64 = 0
    /// Client connections open at once over all workers (each worker takes an equal
    /// share). At the limit a worker stops accepting: new connections wait in the
    /// kernel's listen queue until one closes.
    public var maxConnections: Int = 10_000
    /// Slowest accepted request body, in bytes per second over `timeouts.bodyRateWindowMs`
    /// while the proxy waits for the client (not while it holds the client back because
    /// the upstream is slow); 0 turns the check off.
    public var minBodyRate: Int64 = 0

    public init() {}
}

/// How the proxy rewrites forwarded requests.
public struct HeaderSettings: Equatable, Sendable {
    /// Keep incoming `X-Forwarded-*` values and append to them; otherwise replace them.
    public var trustForwarded = false
    /// Forward the client's `Host`; otherwise send the member's address.
    public var preserveHost = true
    /// Name of the request id header added when absent (empty: none added).
    public var requestIDHeader = "X-Request-Id"

    public init() {}
}

/// Whether and where CONNECT requests may go. Turnout never dials the host a CONNECT
/// names: an allowed CONNECT is routed like any request (on its target's host) and
/// forwarded to a member of the chosen pool, and a 2xx answer from that member turns the
/// connection into a tunnel.
public struct ConnectSettings: Equatable, Sendable {
    /// Off (the default), every CONNECT is answered 405.
    public var isEnabled = false
    /// Target ports a CONNECT may name; any other gets 403.
    public var ports: [Int] = [443]
    /// The pools that take CONNECT (members that terminate tunnels); a CONNECT routed to
    /// any other pool gets 403, so an ordinary origin never receives one.
    public var pools: [String] = []

    public init() {}
}

/// Upstream connection pooling.
public struct UpstreamSettings: Equatable, Sendable {
    /// Idle keep-alive connections kept per member per worker.
    public var maxIdlePerMember: Int = 64
    /// Failed connection attempts in a row that mark a member down (passive health).
    public var maxFails: Int = 1
    /// How long a member stays down before it is tried again.
    public var failTimeoutMs: Int = 10_000

    public init() {}
}

/// Where and how access-log lines are written.
public struct AccessLogSettings: Equatable, Sendable {
    /// Where access-log lines go.
    public enum Destination: Equatable, Sendable {
        case off
        case stdout
        case stderr
        case file(String)
    }

    /// Line format.
    public enum Format: String, Equatable, Sendable {
        case text
        case json
    }

    public var destination: Destination = .stdout
    public var format: Format = .text

    public init() {}
}

/// Everything a worker needs to run, resolved from the config file.
public struct ProxySettings: Equatable, Sendable {
    public var listeners: [ListenAddress] = []
    /// Number of worker threads; each has its own listener sockets and event loop.
    public var workers: Int = 1
    public var timeouts = TimeoutSettings()
    public var limits = LimitSettings()
    public var headers = HeaderSettings()
    public var upstream = UpstreamSettings()
    public var connect = ConnectSettings()
    public var accessLog = AccessLogSettings()
    /// Longest a worker polls for events before it sleeps (`BusyPollWindow`); 0 (the default) never polls.
    public var busyPollMicroseconds: Int = 0
    /// Listeners hand a new connection to a worker only once its first bytes have arrived
    /// (`TCP_DEFER_ACCEPT`, 1 s, as nginx's `deferred`): no wake-up and no empty read for a
    /// connection that has not sent its request yet. A silent connection is accepted about
    /// a second later, when the kernel's retransmitted SYN-ACK is acknowledged.
    public var deferAccept = true

    public init() {}
}
