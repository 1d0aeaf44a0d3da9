/// A parsed request head: byte ranges into the buffer that holds it, plus the facts the
/// proxy needs (framing, persistence, upgrade, expectation). Reused across requests on a
/// connection: `HTTP1Parser` clears it without releasing the header storage.
public struct HTTPRequestHead: HTTPHeadStorage, Sendable {
    public var method: HTTPMethod = .get
    public var methodSpan = Span.empty
    public var targetSpan = Span.empty
    public var version: HTTPVersion = .http11
    public var headers: [HTTPHeaderField] = []
    public var framing: HTTPBodyFraming = .none
    /// The client allows the connection to stay open after this exchange.
    public var isKeepAlive = true
    /// The client asks to switch protocols (`Connection: upgrade` and an `Upgrade` field).
    public var wantsUpgrade = false
    /// The client waits for `100 Continue` before sending the body.
    public var expectsContinue = false
    /// Index into `headers` of `Host`, or -1.
    public var hostIndex = -1
    /// Index into `headers` of `X-Request-Id`, or -1.
    public var requestIDIndex = -1
    /// Index into `headers` of `Upgrade`, or -1.
    public var upgradeIndex = -1
    /// Bytes of the head, start line to the blank line inclusive.
    public var headLength = 0
    /// Tokens listed in `Connection` other than close/keep-alive/upgrade.
    public var connectionTokens: [Span] = []

    public init() {
        headers.reserveCapacity(32)
        connectionTokens.reserveCapacity(4)
    }

    public static var unallocated: Self { Self(unallocated: ()) }

    private init(unallocated: Void) {}
}

/// What request and response heads share: storage that is pooled and reused.
public protocol HTTPHeadStorage {
    var headers: [HTTPHeaderField] { get set }
    var connectionTokens: [Span] { get set }
    /// A head that owns no storage yet (for an idle connection); parsing into it
    /// allocates, so take a reserved one from a pool first.
    static var unallocated: Self { get }
}

extension HTTPHeadStorage {
    /// Forgets the last parse but keeps the storage. Inlinable, so a caller in another
    /// module gets it specialized for the head type (no witness calls per field).
    @inlinable
    public mutating func clear() {
        // Move the arrays out, put a fresh head in place, then put them back emptied: every
        // other field returns to its initial value, and nothing is allocated.
        var fresh = Self.unallocated
        swap(&fresh.headers, &headers)
        swap(&fresh.connectionTokens, &connectionTokens)
        fresh.removeFields()
        self = fresh
    }

    /// Empties the field and token arrays before a parse, keeping their capacity. They are
    /// usually empty already (the connection clears a head when its exchange ends), and
    /// emptying an empty array still costs a generic `replaceSubrange` call.
    @inlinable
    mutating func removeFields() {
        if !headers.isEmpty { headers.removeAll(keepingCapacity: true) }
        if !connectionTokens.isEmpty { connectionTokens.removeAll(keepingCapacity: true) }
    }
}

/// A parsed response head; see `HTTPRequestHead`.
public struct HTTPResponseHead: HTTPHeadStorage, Sendable {
    public var version: HTTPVersion = .http11
    public var status = 0
    /// The reason phrase (may be empty).
    public var reasonSpan = Span.empty
    public var headers: [HTTPHeaderField] = []
    public var framing: HTTPBodyFraming = .none
    /// The server allows the connection to be reused after this response.
    public var isKeepAlive = true
    /// Index into `headers` of `Upgrade`, or -1.
    public var upgradeIndex = -1
    public var headLength = 0
    public var connectionTokens: [Span] = []

    /// 1xx other than 101: an interim response followed by another head.
    public var isInterim: Bool { status >= 100 && status < 200 && status != 101 }

    public init() {
        headers.reserveCapacity(32)
        connectionTokens.reserveCapacity(4)
    }

    public static var unallocated: Self { Self(unallocated: ()) }

    private init(unallocated: Void) {}
}

/// Strict HTTP/1.1 head parser (RFC 9112). Works on a complete head located by
/// `HTTP1HeadScanner`; allocates nothing once the head's arrays have grown to size.
public enum HTTP1Parser {
    /// The largest body length accepted in `Content-Length` (2^62 - 1).
    public static let maxContentLength: Int64 = (1 << 62) - 1

    /// Parses the request head in `bytes` (the start line is at offset 0, the blank line
    /// ends the buffer). Spans in `head` are offsets into `bytes`.
    public static func parseRequest(
        _ bytes: UnsafeRawBufferPointer, limits: HTTPHeadLimits, into head: inout HTTPRequestHead
    ) throws(HTTPParseError) {
        head.removeFields()
        head.hostIndex = -1
        head.requestIDIndex = -1
        head.upgradeIndex = -1
        head.expectsContinue = false
        head.wantsUpgrade = false
        head.methodSpan = .empty
        head.targetSpan = .empty
        head.headLength = bytes.count

        let n = bytes.count
        // method SP
        var i = 0
        while i < n && HTTPBytes.isTokenChar(bytes[i]) { i += 1 }
        if i == 0 || i >= n || bytes[i] != 0x20 { throw .invalidMethod }
        head.methodSpan = Span(0, i)
        head.method = classifyMethod(bytes, 0..<i)
        i += 1
        // request-target SP
        let targetStart = i
        while i < n && HTTPBytes.isTargetChar(bytes[i]) { i += 1 }
        if i == targetStart || i >= n || bytes[i] != 0x20 { throw .invalidTarget }
        head.targetSpan = Span(targetStart, i)
        i += 1
        // HTTP-version CRLF
        head.version = try parseVersion(bytes, &i)
        guard i + 1 < n, bytes[i] == 0x0D, bytes[i + 1] == 0x0A else { throw .invalidVersion }
        i += 2
        try validateTarget(bytes, head.targetSpan.range, method: head.method)

        var facts = FieldFacts()
        try parseFields(bytes, from: i, limits: limits, into: &head.headers, tokens: &head.connectionTokens, facts: &facts)

        for (index, field) in head.headers.enumerated() {
            switch field.kind {
            case .host:
                if head.hostIndex >= 0 { throw .duplicateHost }
                try validateHost(bytes, field.value.range)
                head.hostIndex = index
            case .xRequestID:
                if head.requestIDIndex < 0 { head.requestIDIndex = index }
            case .upgrade:
                head.upgradeIndex = index
            case .expect:
                if HTTPBytes.equalsLowercase(bytes, field.value.range, "100-continue") {
                    head.expectsContinue = true
                } else {
                    throw .unsupportedExpectation
                }
            default:
                break
            }
        }
        if head.version == .http11 && head.hostIndex < 0 { throw .missingHost }
        if facts.hasTransferEncoding {
            if facts.contentLength != nil { throw .contentLengthWithTransferEncoding }
            if head.version == .http10 { throw .transferEncodingInHTTP10 }
            if !facts.isChunkedOnly { throw .unsupportedTransferEncoding }
            head.framing = .chunked
        } else if let length = facts.contentLength {
            head.framing = .contentLength(length)
        } else {
            head.framing = .none
        }
        head.isKeepAlive = head.version == .http11 ? !facts.hasClose : (facts.hasKeepAlive && !facts.hasClose)
        head.wantsUpgrade = facts.hasUpgradeToken && head.upgradeIndex >= 0
        if head.expectsContinue && head.version == .http10 {
            // RFC 9110 §10.1.1: ignore 100-continue from an HTTP/1.0 client.
            head.expectsContinue = false
        }
    }

    /// Parses a response head. `requestMethod` decides whether a body can follow (HEAD).
    public static func parseResponse(
        _ bytes: UnsafeRawBufferPointer, requestMethod: HTTPMethod, limits: HTTPHeadLimits,
        into head: inout HTTPResponseHead
    ) throws(HTTPParseError) {
        head.removeFields()
        head.upgradeIndex = -1
        head.headLength = bytes.count
        let n = bytes.count
        var i = 0
        head.version = try parseVersion(bytes, &i)
        guard i + 4 <= n, bytes[i] == 0x20 else { throw .invalidStatusLine }
        i += 1
        var status = 0
        for _ in 0..<3 {
            let d = bytes[i]
            guard d >= 0x30 && d <= 0x39 else { throw .invalidStatusLine }
            status = status * 10 + Int(d - 0x30)
            i += 1
        }
        guard status >= 100 && status <= 599 else { throw .invalidStatusLine }
        head.status = status
        // SP reason-phrase (some servers omit both; tolerated)
        var reasonStart = i
        if i < n && bytes[i] == 0x20 {
            i += 1
            reasonStart = i
            while i < n && bytes[i] != 0x0D {
                guard HTTPBytes.isFieldValueChar(bytes[i]) else { throw .invalidStatusLine }
                i += 1
            }
        }
        head.reasonSpan = Span(reasonStart, i)
        guard i + 1 < n, bytes[i] == 0x0D, bytes[i + 1] == 0x0A else { throw .invalidStatusLine }
        i += 2

        var facts = FieldFacts()
        try parseFields(bytes, from: i, limits: limits, into: &head.headers, tokens: &head.connectionTokens, facts: &facts)
        for (index, field) in head.headers.enumerated() where field.kind == .upgrade {
            head.upgradeIndex = index
        }
        // A 2xx to CONNECT starts a tunnel: any framing fields it carries are ignored
        // (RFC 9112 §6.3, rule 2), and the proxy drops them.
        let isTunnel = requestMethod == .connect && status >= 200 && status < 300
        if facts.hasTransferEncoding && !isTunnel {
            if facts.contentLength != nil { throw .contentLengthWithTransferEncoding }
            if head.version == .http10 { throw .transferEncodingInHTTP10 }
            if !facts.isChunkedOnly { throw .unsupportedTransferEncoding }
        }
        if status < 200 || status == 204 || status == 304 || requestMethod == .head || isTunnel {
            head.framing = .none
        } else if facts.hasTransferEncoding {
            head.framing = .chunked
        } else if let length = facts.contentLength {
            head.framing = .contentLength(length)
        } else {
            head.framing = .untilClose
        }
        head.isKeepAlive = head.version == .http11 ? !facts.hasClose : (facts.hasKeepAlive && !facts.hasClose)
        if head.framing == .untilClose { head.isKeepAlive = false }
    }

    // MARK: - Pieces

    /// What the field lines said about framing and persistence.
    struct FieldFacts {
        var contentLength: Int64?
        var hasTransferEncoding = false
        var isChunkedOnly = false
        var transferCodingCount = 0
        var hasClose = false
        var hasKeepAlive = false
        var hasUpgradeToken = false
    }

    @inline(__always)
    static func parseVersion(_ bytes: UnsafeRawBufferPointer, _ i: inout Int) throws(HTTPParseError) -> HTTPVersion {
        let n = bytes.count
        guard i + 8 <= n,
            bytes[i] == 0x48, bytes[i + 1] == 0x54, bytes[i + 2] == 0x54, bytes[i + 3] == 0x50,
            bytes[i + 4] == 0x2F, bytes[i + 6] == 0x2E
        else { throw .invalidVersion }
        let major = bytes[i + 5]
        let minor = bytes[i + 7]
        guard major >= 0x30 && major <= 0x39 && minor >= 0x30 && minor <= 0x39 else { throw .invalidVersion }
        i += 8
        if major == 0x31 && minor == 0x31 { return .http11 }
        if major == 0x31 && minor == 0x30 { return .http10 }
        throw .unsupportedVersion
    }

    /// RFC 9112 §3.2: origin-form for most methods, absolute-form accepted, authority-form
    /// only for CONNECT, asterisk-form only for OPTIONS.
    static func validateTarget(_ bytes: UnsafeRawBufferPointer, _ r: Range<Int>, method: HTTPMethod) throws(HTTPParseError) {
        // A fragment is never sent (RFC 9110 §7.1); a `#` here means a confused or hostile client.
        for p in r where bytes[p] == 0x23 { throw .invalidTarget }
        let first = bytes[r.lowerBound]
        if method == .connect {
            // authority-form (RFC 9112 §3.2.3): uri-host ":" port, the port required.
            guard authorityPort(bytes, r) != nil else { throw .invalidTarget }
            return
        }
        if first == 0x2F { return }
        if first == 0x2A {
            if r.count == 1 && method == .options { return }
            throw .invalidTarget
        }
        // absolute-form: scheme "://" ...
        var p = r.lowerBound
        while p < r.upperBound {
            let b = bytes[p]
            let isSchemeChar = (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A)
                || (p > r.lowerBound && ((b >= 0x30 && b <= 0x39) || b == 0x2B || b == 0x2D || b == 0x2E))
            if !isSchemeChar { break }
            p += 1
        }
        guard p > r.lowerBound, p + 2 < r.upperBound, bytes[p] == 0x3A, bytes[p + 1] == 0x2F, bytes[p + 2] == 0x2F
        else { throw .invalidTarget }
    }

    /// The port of an authority-form target `uri-host ":" port` (1…65535), or nil when
    /// `r` is not one: an empty or invalid host, an IP literal that is not IPv6, or a
    /// missing, empty, out-of-range or zero-padded port.
    public static func authorityPort(_ bytes: UnsafeRawBufferPointer, _ r: Range<Int>) -> Int? {
        var colon = r.upperBound - 1
        while colon >= r.lowerBound && bytes[colon] != 0x3A { colon -= 1 }
        guard colon > r.lowerBound, colon + 1 < r.upperBound, r.upperBound - colon - 1 <= 5,
            bytes[colon + 1] != 0x30
        else { return nil }
        var port = 0
        for p in (colon + 1)..<r.upperBound {
            let d = bytes[p]
            guard d >= 0x30 && d <= 0x39 else { return nil }
            port = port * 10 + Int(d - 0x30)
        }
        guard port >= 1 && port <= 65_535 else { return nil }
        let host = r.lowerBound..<colon
        if bytes[host.lowerBound] == 0x5B {
            // IP literal: "[" … "]", nothing after the bracket but the port.
            guard bytes[colon - 1] == 0x5D, host.count > 3 else { return nil }
            var colons = 0
            for p in (host.lowerBound + 1)..<(colon - 1) {
                let b = bytes[p]
                let isHex = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)
                guard isHex || b == 0x3A || b == 0x2E else { return nil }
                if b == 0x3A { colons += 1 }
            }
            guard colons >= 2 else { return nil }
        } else {
            for p in host where bytes[p] == 0x3A || bytes[p] == 0x5B || bytes[p] == 0x5D { return nil }
        }
        do { try validateHost(bytes, host) } catch { return nil }
        return port
    }

    /// `Host` is `uri-host [ ":" port ]` (RFC 9110 §7.2): reg-name, IPv4 or a bracketed IP
    /// literal. Whitespace, `/`, `?`, `#`, `@`, quotes and the like are refused, so the
    /// value cannot smuggle a path or user info into what upstreams and logs see.
    static func validateHost(_ bytes: UnsafeRawBufferPointer, _ r: Range<Int>) throws(HTTPParseError) {
        for p in r {
            let b = bytes[p]
            let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == 0x2D || b == 0x2E || b == 0x5F || b == 0x7E || b == 0x3A || b == 0x5B || b == 0x5D || b == 0x25
                || b == 0x21 || b == 0x24 || b == 0x26 || b == 0x27 || b == 0x28 || b == 0x29 || b == 0x2A || b == 0x2B
                || b == 0x2C || b == 0x3B || b == 0x3D
            if !ok { throw .invalidHost }
        }
    }

    static func classifyMethod(_ bytes: UnsafeRawBufferPointer, _ r: Range<Int>) -> HTTPMethod {
        // Methods are case-sensitive (RFC 9110 §9.1).
        let b0 = bytes[r.lowerBound]
        switch r.count {
        case 3:
            if b0 == 0x47 && bytes[r.lowerBound + 1] == 0x45 && bytes[r.lowerBound + 2] == 0x54 { return .get }
            if b0 == 0x50 && bytes[r.lowerBound + 1] == 0x55 && bytes[r.lowerBound + 2] == 0x54 { return .put }
        case 4:
            if matches(bytes, r, "HEAD") { return .head }
            if matches(bytes, r, "POST") { return .post }
        case 5:
            if matches(bytes, r, "PATCH") { return .patch }
            if matches(bytes, r, "TRACE") { return .trace }
        case 6:
            if matches(bytes, r, "DELETE") { return .delete }
        case 7:
            if matches(bytes, r, "OPTIONS") { return .options }
            if matches(bytes, r, "CONNECT") { return .connect }
        default:
            break
        }
        return .other
    }

    @inline(__always)
    static func matches(_ bytes: UnsafeRawBufferPointer, _ r: Range<Int>, _ literal: StaticString) -> Bool {
        let lit = literal.utf8Start
        var k = 0
        for p in r {
            if bytes[p] != lit[k] { return false }
            k += 1
        }
        return true
    }

    /// Parses field lines from `start` to the blank line, classifying and validating each.
    static func parseFields(
        _ bytes: UnsafeRawBufferPointer, from start: Int, limits: HTTPHeadLimits,
        into headers: inout [HTTPHeaderField], tokens: inout [Span], facts: inout FieldFacts
    ) throws(HTTPParseError) {
        let n = bytes.count
        var i = start
        while true {
            guard i + 1 < n else { throw .invalidHeaderName }
            if bytes[i] == 0x0D {
                guard bytes[i + 1] == 0x0A, i + 2 == n else { throw .invalidHeaderName }
                break
            }
            let first = bytes[i]
            if first == 0x20 || first == 0x09 { throw .obsFold }
            let nameStart = i
            // Eight bytes at a time while they are letters, digits or `-`; any other byte is
            // looked up (a rarer token character continues the name, the colon ends it).
            while true {
                if skipWords(bytes, &i, n, while: HTTPBytes.nonNameByteMask) {
                    if HTTPBytes.isTokenChar(bytes[i]) {
                        i += 1
                        continue
                    }
                    break
                }
                while i < n && HTTPBytes.isTokenChar(bytes[i]) { i += 1 }
                break
            }
            guard i < n else { throw .invalidHeaderName }
            let c = bytes[i]
            if c != 0x3A {
                if c == 0x20 || c == 0x09 { throw .whitespaceBeforeColon }
                throw .invalidHeaderName
            }
            if i == nameStart { throw .invalidHeaderName }
            let nameEnd = i
            i += 1
            while i < n && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 }
            let valueStart = i
            // Eight bytes at a time to the first control byte or DEL (the CR that ends the
            // line is one; so is HTAB, the only one allowed, after which the scan goes on).
            // The word's mask gives that byte's offset; fewer than eight bytes from the end
            // of the head, byte by byte.
            while true {
                if !skipWords(bytes, &i, n, while: HTTPBytes.controlOrDELMask) {
                    while i < n && bytes[i] >= 0x20 && bytes[i] != 0x7F { i += 1 }
                    if i == n { break }  // no CR: refused below
                }
                let b = bytes[i]
                if b == 0x0D { break }
                guard b == 0x09 else { throw .invalidHeaderValue }
                i += 1
            }
            var valueEnd = i
            while valueEnd > valueStart && (bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09) { valueEnd -= 1 }
            guard i + 1 < n, bytes[i + 1] == 0x0A else { throw .invalidHeaderValue }
            i += 2
            if headers.count >= limits.maxHeaderCount { throw .tooManyHeaders }
            let kind = classifyName(bytes, nameStart..<nameEnd)
            let value = Span(valueStart, valueEnd)
            headers.append(HTTPHeaderField(name: Span(nameStart, nameEnd), value: value, kind: kind, isHopByHop: kind.isHopByHop))
            switch kind {
            case .contentLength:
                try parseContentLength(bytes, value.range, into: &facts.contentLength)
            case .transferEncoding:
                try parseTransferEncoding(bytes, value.range, facts: &facts)
            case .connection:
                parseConnection(bytes, value.range, facts: &facts, tokens: &tokens)
            default:
                break
            }
        }
        if !tokens.isEmpty {
            for k in headers.indices where headers[k].kind == .other {
                let name = headers[k].name.range
                for token in tokens where equalsCaseInsensitive(bytes, name, token.range) {
                    headers[k].isHopByHop = true
                }
            }
        }
    }

    /// Advances `i` eight bytes at a time while `mask` of the word at `i` is zero. True when
    /// it stopped at the first flagged byte of a word (then at `i`; `mask`'s lowest set bit
    /// must mark it), false when fewer than eight bytes are left before `n`.
    @inline(__always)
    static func skipWords(
        _ bytes: UnsafeRawBufferPointer, _ i: inout Int, _ n: Int, while mask: (UInt64) -> UInt64
    ) -> Bool {
        while i + 8 <= n {
            let flagged = mask(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            if flagged != 0 {
                i += flagged.trailingZeroBitCount >> 3
                return true
            }
            i += 8
        }
        return false
    }

    static func equalsCaseInsensitive(_ bytes: UnsafeRawBufferPointer, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
        guard a.count == b.count else { return false }
        var p = a.lowerBound
        var q = b.lowerBound
        while p < a.upperBound {
            if HTTPBytes.lower(bytes[p]) != HTTPBytes.lower(bytes[q]) { return false }
            p += 1
            q += 1
        }
        return true
    }

    /// The kind of a field name (token characters only, checked by the caller).
    static func classifyName(_ bytes: UnsafeRawBufferPointer, _ r: Range<Int>) -> HTTPHeaderKind {
        switch r.count {
        case 2:
            if HTTPBytes.tokenEqualsLowercase(bytes, r, "te") { return .te }
        case 4:
            if HTTPBytes.tokenEqualsLowercase(bytes, r, "host") { return .host }
        case 6:
            if HTTPBytes.tokenEqualsLowercase(bytes, r, "expect") { return .expect }
        case 7:
            if HTTPBytes.tokenEqualsLowercase(bytes, r, "upgrade") { return .upgrade }
        case 10:
            if HTTPBytes.tokenEqualsLowercase(bytes, r, "connection") { return .connection }
            if HTTPBytes.tokenEqualsLowercase(bytes, r, "keep-alive") { return .keepAlive }
        case 12:
            if HTTPBytes.tokenEqualsLowercase(bytes, r, "x-request-id") { return .xRequestID }
        case 14:
            if HTTPBytes.tokenEqualsLowercase(bytes, r, "content-length") { return .contentLength }
        case 15:
            if HTTPBytes.tokenEqualsLowercase(bytes, r, "x-forwarded-for") { return .xForwardedFor }
        case 16:
            if HTTPBytes.tokenEqualsLowercase(bytes, r, "proxy-connection") { return .proxyConnection }
            if HTTPBytes.tokenEqualsLowercase(bytes, r, "x-forwarded-host") { return .xForwardedHost }
        case 17:
            if HTTPBytes.tokenEqualsLowercase(bytes, r, "transfer-encoding") { return .transferEncoding }
            if HTTPBytes.tokenEqualsLowercase(bytes, r, "x-forwarded-proto") { return .xForwardedProto }
        default:
            break
        }
        return .other
    }

    /// `Content-Length` is a list of identical decimal values (RFC 9110 §8.6); anything else is refused.
    static func parseContentLength(_ bytes: UnsafeRawBufferPointer, _ r: Range<Int>, into current: inout Int64?) throws(HTTPParseError) {
        var p = r.lowerBound
        while true {
            while p < r.upperBound && (bytes[p] == 0x20 || bytes[p] == 0x09) { p += 1 }
            var value: Int64 = 0
            let digitsStart = p
            while p < r.upperBound, bytes[p] >= 0x30, bytes[p] <= 0x39 {
                let digit = Int64(bytes[p] - 0x30)
                // Checked before multiplying: `value * 10 + digit` would trap past Int64.max.
                if value > (maxContentLength - digit) / 10 { throw .invalidContentLength }
                value = value * 10 + digit
                p += 1
            }
            if p == digitsStart { throw .invalidContentLength }
            if let existing = current, existing != value { throw .invalidContentLength }
            current = value
            while p < r.upperBound && (bytes[p] == 0x20 || bytes[p] == 0x09) { p += 1 }
            if p == r.upperBound { break }
            guard bytes[p] == 0x2C else { throw .invalidContentLength }
            p += 1
        }
    }

    /// Records the transfer codings; only a single `chunked` is accepted by the caller.
    static func parseTransferEncoding(_ bytes: UnsafeRawBufferPointer, _ r: Range<Int>, facts: inout FieldFacts) throws(HTTPParseError) {
        facts.hasTransferEncoding = true
        var p = r.lowerBound
        var sawAny = false
        while p <= r.upperBound {
            while p < r.upperBound && (bytes[p] == 0x20 || bytes[p] == 0x09) { p += 1 }
            let start = p
            while p < r.upperBound && HTTPBytes.isTokenChar(bytes[p]) { p += 1 }
            let end = p
            while p < r.upperBound && (bytes[p] == 0x20 || bytes[p] == 0x09) { p += 1 }
            if end > start {
                sawAny = true
                facts.transferCodingCount += 1
                facts.isChunkedOnly = facts.transferCodingCount == 1 && HTTPBytes.equalsLowercase(bytes, start..<end, "chunked")
            } else if p < r.upperBound && bytes[p] != 0x2C {
                throw .unsupportedTransferEncoding
            }
            if p == r.upperBound { break }
            // parameters (";") or anything but a comma make the coding unsupported
            guard bytes[p] == 0x2C else { throw .unsupportedTransferEncoding }
            p += 1
        }
        if !sawAny { throw .unsupportedTransferEncoding }
    }

    static func parseConnection(_ bytes: UnsafeRawBufferPointer, _ r: Range<Int>, facts: inout FieldFacts, tokens: inout [Span]) {
        var p = r.lowerBound
        while p < r.upperBound {
            while p < r.upperBound && (bytes[p] == 0x20 || bytes[p] == 0x09 || bytes[p] == 0x2C) { p += 1 }
            let start = p
            while p < r.upperBound && HTTPBytes.isTokenChar(bytes[p]) { p += 1 }
            let token = start..<p
            if token.isEmpty {
                p += 1
                continue
            }
            // Token characters only: compared a word at a time.
            if HTTPBytes.tokenEqualsLowercase(bytes, token, "close") {
                facts.hasClose = true
            } else if HTTPBytes.tokenEqualsLowercase(bytes, token, "keep-alive") {
                facts.hasKeepAlive = true
            } else if HTTPBytes.tokenEqualsLowercase(bytes, token, "upgrade") {
                facts.hasUpgradeToken = true
            } else if tokens.count < 16 {
                tokens.append(Span(token.lowerBound, token.upperBound))
            }
        }
    }
}
