/// A half-open byte range `[start, end)` inside a buffer, stored compactly.
public struct Span: Equatable, Sendable {
    public var start: Int32
    public var end: Int32

    @inlinable public init(_ start: Int, _ end: Int) {
        self.start = Int32(truncatingIfNeeded: start)
        self.end = Int32(truncatingIfNeeded: end)
    }

    @inlinable public var range: Range<Int> { Int(start)..<Int(end) }
    @inlinable public var count: Int { Int(end - start) }
    public static let empty = Span(0, 0)
}

/// The HTTP versions Turnout speaks on the wire.
public enum HTTPVersion: UInt8, Sendable {
    case http10
    case http11
}

/// Request methods the proxy treats specially; anything else is `.other`.
public enum HTTPMethod: UInt8, Sendable {
    case get, head, post, put, delete, options, patch, trace, connect, other

    /// RFC 9110 §9.2.2: a request that may be repeated without changing the outcome.
    public var isIdempotent: Bool {
        switch self {
        case .get, .head, .put, .delete, .options, .trace: return true
        case .post, .patch, .connect, .other: return false
        }
    }
}

/// Header names that change what the proxy does. Everything else is `.other`.
public enum HTTPHeaderKind: UInt8, Sendable {
    case other
    case host
    case contentLength
    case transferEncoding
    case connection
    case keepAlive
    case te
    case proxyConnection
    case upgrade
    case expect
    case xForwardedFor
    case xForwardedProto
    case xForwardedHost
    case xRequestID

    /// Fields that describe one hop only (RFC 9110 §7.6.1) and are never forwarded as received.
    /// `Upgrade` is forwarded by the proxy itself when it agrees to tunnel.
    public var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .te, .proxyConnection, .upgrade, .transferEncoding:
            return true
        default:
            return false
        }
    }
}

/// One header field line, as byte ranges into the buffer that holds the head.
public struct HTTPHeaderField: Sendable {
    public var name: Span
    public var value: Span
    public var kind: HTTPHeaderKind
    /// True when the field must not be forwarded: a hop-by-hop kind or a name listed in `Connection`.
    public var isHopByHop: Bool
}

/// How the body of a message is delimited (RFC 9112 §6.3).
public enum HTTPBodyFraming: Equatable, Sendable {
    case none
    case contentLength(Int64)
    case chunked
    /// Only responses: the body ends when the server closes the connection.
    case untilClose
}

/// Why a message head was refused. `status` is what a client is told for a request.
public enum HTTPParseError: Error, Equatable, Sendable {
    case bareLineFeed
    case requestLineTooLong
    case headerSectionTooLarge
    case tooManyHeaders
    case invalidMethod
    case invalidTarget
    case invalidVersion
    case unsupportedVersion
    case invalidStatusLine
    case obsFold
    case invalidHeaderName
    case whitespaceBeforeColon
    case invalidHeaderValue
    case missingHost
    case duplicateHost
    case invalidHost
    case invalidContentLength
    case contentLengthWithTransferEncoding
    case unsupportedTransferEncoding
    case transferEncodingInHTTP10
    case unsupportedExpectation

    /// The status a client receives when its request head has this fault.
    public var status: Int {
        switch self {
        case .requestLineTooLong: return 414
        case .headerSectionTooLarge, .tooManyHeaders: return 431
        case .unsupportedVersion: return 505
        case .unsupportedExpectation: return 417
        default: return 400
        }
    }

    /// A short phrase for logs and error bodies.
    public var reason: String {
        switch self {
        case .bareLineFeed: return "bare LF line ending"
        case .requestLineTooLong: return "request line too long"
        case .headerSectionTooLarge: return "header section too large"
        case .tooManyHeaders: return "too many header fields"
        case .invalidMethod: return "invalid method"
        case .invalidTarget: return "invalid request target"
        case .invalidVersion: return "invalid HTTP version"
        case .unsupportedVersion: return "HTTP version not supported"
        case .invalidStatusLine: return "invalid status line"
        case .obsFold: return "obsolete line folding"
        case .invalidHeaderName: return "invalid header field name"
        case .whitespaceBeforeColon: return "whitespace between field name and colon"
        case .invalidHeaderValue: return "invalid header field value"
        case .missingHost: return "missing Host"
        case .duplicateHost: return "more than one Host"
        case .invalidHost: return "invalid Host"
        case .invalidContentLength: return "invalid Content-Length"
        case .contentLengthWithTransferEncoding: return "both Content-Length and Transfer-Encoding"
        case .unsupportedTransferEncoding: return "unsupported Transfer-Encoding"
        case .transferEncodingInHTTP10: return "Transfer-Encoding in an HTTP/1.0 message"
        case .unsupportedExpectation: return "unsupported expectation"
        }
    }
}

/// Size limits applied while reading a message head.
public struct HTTPHeadLimits: Sendable, Equatable {
    public var maxStartLineBytes: Int
    public var maxHeadBytes: Int
    public var maxHeaderCount: Int

    public init(maxStartLineBytes: Int = 8192, maxHeadBytes: Int = 32768, maxHeaderCount: Int = 100) {
        self.maxStartLineBytes = maxStartLineBytes
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
    }
}
