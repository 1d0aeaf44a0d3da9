import Testing
import TurnoutHTTP

// MARK: - Requests: valid

@Suite("HTTP1Parser requests")
struct HTTP1ParserRequestTests {
    @Test func getWithOriginFormTarget() throws {
        let req = try parseRequest("GET /search?q=a%20b HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n").get()
        #expect(req.head.method == .get)
        #expect(req.method == "GET")
        #expect(req.target == "/search?q=a%20b")
        #expect(req.head.version == .http11)
        #expect(req.head.framing == HTTPBodyFraming.none)
        #expect(req.head.isKeepAlive)
        #expect(!req.head.wantsUpgrade)
        #expect(!req.head.expectsContinue)
        #expect(req.head.hostIndex == 0)
        #expect(req.head.requestIDIndex == -1)
        #expect(req.head.upgradeIndex == -1)
        #expect(req.head.headLength == req.bytes.count)
        #expect(req.value("host") == "example.com")
    }

    @Test(arguments: [
        ("GET", HTTPMethod.get), ("HEAD", .head), ("POST", .post), ("PUT", .put), ("DELETE", .delete),
        ("OPTIONS", .options), ("PATCH", .patch), ("TRACE", .trace), ("PROPFIND", .other),
        ("get", .other), ("Get", .other), ("GETX", .other), ("PUX", .other),
    ])
    func methodsAreClassifiedCaseSensitively(_ method: String, _ expected: HTTPMethod) throws {
        let req = try parseRequest("\(method) / HTTP/1.1\r\nHost: a\r\n\r\n").get()
        #expect(req.head.method == expected)
        #expect(req.method == method)
    }

    @Test func absoluteFormTarget() throws {
        let req = try parseRequest("GET http://example.com:8080/a/b?c HTTP/1.1\r\nHost: example.com:8080\r\n\r\n").get()
        #expect(req.target == "http://example.com:8080/a/b?c")
        #expect(req.head.method == .get)
    }

    @Test func optionsAsteriskForm() throws {
        let req = try parseRequest("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").get()
        #expect(req.head.method == .options)
        #expect(req.target == "*")
    }

    @Test func connectAuthorityForm() throws {
        let req = try parseRequest("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").get()
        #expect(req.head.method == .connect)
        #expect(req.target == "example.com:443")
    }

    @Test func connectTunnelIgnoresFramingFields() throws {
        for fields in ["Transfer-Encoding: gzip\r\n", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"] {
            let res = try parseResponse("HTTP/1.1 200 OK\r\n" + fields + "\r\n", requestMethod: .connect).get()
            #expect(res.head.framing == HTTPBodyFraming.none)
        }
        #expect(throws: HTTPParseError.self) {
            try parseResponse("HTTP/1.1 403 No\r\nTransfer-Encoding: gzip\r\n\r\n", requestMethod: .connect).get()
        }
    }

    @Test func connectRefusalHasAnOrdinaryBody() throws {
        let refusal = "HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\n"
        let res = try parseResponse(refusal, requestMethod: .connect).get()
        #expect(res.head.framing == .contentLength(5))
    }

    @Test(arguments: [
        ("example.com:443", 443), ("127.0.0.1:1", 1), ("[::1]:65535", 65_535), ("[2001:db8::7]:443", 443),
        ("a:08443", nil), ("a:0443", nil), ("[foo]:443", nil), ("[%]:443", nil), ("[1.2.3.4]:443", nil),
        ("example.com", nil), ("example.com:", nil), (":443", nil), ("example.com:0", nil),
        ("example.com:65536", nil), ("example.com:123456", nil), ("example.com:+443", nil),
        ("exa mple.com:443", nil), ("user@example.com:443", nil), ("a/b:443", nil), ("::1:443", nil),
        ("[::1:443", nil), ("[]:443", nil), ("[::1]x:443", nil), ("a:b:443", nil),
    ] as [(String, Int?)])
    func authorityFormPort(_ target: String, _ port: Int?) {
        let bytes = Array(target.utf8)
        let got = bytes.withUnsafeBytes { HTTP1Parser.authorityPort($0, 0..<bytes.count) }
        #expect(got == port)
        if target.contains(" ") { return }  // splits the request line: not a target at all
        let parsed = parseRequest("CONNECT \(target) HTTP/1.1\r\nHost: example.com\r\n\r\n")
        if port == nil {
            #expect(throws: HTTPParseError.invalidTarget) { try parsed.get() }
        } else {
            #expect((try? parsed.get()) != nil)
        }
    }

    @Test func http10WithoutHostIsAcceptedAndNotKeptAlive() throws {
        let req = try parseRequest("GET / HTTP/1.0\r\n\r\n").get()
        #expect(req.head.version == .http10)
        #expect(req.head.hostIndex == -1)
        #expect(!req.head.isKeepAlive)
        #expect(req.head.headers.isEmpty)
    }

    @Test(arguments: [
        ("HTTP/1.0", "", false),
        ("HTTP/1.0", "Connection: keep-alive\r\n", true),
        ("HTTP/1.0", "Connection: Keep-Alive\r\n", true),
        ("HTTP/1.0", "Connection: keep-alive, close\r\n", false),
        ("HTTP/1.0", "Connection: close\r\n", false),
        ("HTTP/1.1", "", true),
        ("HTTP/1.1", "Connection: keep-alive\r\n", true),
        ("HTTP/1.1", "Connection: close\r\n", false),
        ("HTTP/1.1", "Connection: CLOSE\r\n", false),
        ("HTTP/1.1", "Connection: x-a, close , x-b\r\n", false),
        ("HTTP/1.1", "Connection: keep-alive\r\nConnection: close\r\n", false),
    ])
    func keepAliveFollowsVersionAndConnection(_ version: String, _ fields: String, _ keepAlive: Bool) throws {
        let req = try parseRequest("GET / \(version)\r\nHost: a\r\n\(fields)\r\n").get()
        #expect(req.head.isKeepAlive == keepAlive)
    }

    @Test func connectionListingAHeaderMarksItHopByHop() throws {
        let req = try parseRequest(
            "GET / HTTP/1.1\r\nX-Secret: 1\r\nHost: a\r\nConnection: keep-alive, x-secret, X-Other\r\n"
                + "X-Other: 2\r\nX-Kept: 3\r\n\r\n"
        ).get()
        #expect(req.field("X-Secret")?.isHopByHop == true)
        #expect(req.field("X-Other")?.isHopByHop == true)
        #expect(req.field("X-Kept")?.isHopByHop == false)
        #expect(req.field("Host")?.isHopByHop == false)
        #expect(req.field("Connection")?.isHopByHop == true)
        #expect(req.head.connectionTokens.map { text(req.bytes, $0) } == ["x-secret", "X-Other"])
        #expect(req.head.isKeepAlive)
    }

    @Test func hopByHopKindsAreMarked() throws {
        let req = try parseRequest(
            "GET / HTTP/1.1\r\nHost: a\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: x\r\n"
                + "Upgrade: h2c\r\nAccept: */*\r\n\r\n"
        ).get()
        #expect(req.head.headers.map(\.isHopByHop) == [false, true, true, true, true, false])
    }

    @Test func upgradeNeedsBothConnectionTokenAndUpgradeField() throws {
        let both = try parseRequest(
            "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        ).get()
        #expect(both.head.wantsUpgrade)
        #expect(both.head.upgradeIndex == 2)
        #expect(both.value("upgrade") == "websocket")
        // The "upgrade" token is not recorded as a header name to strip.
        #expect(both.head.connectionTokens.isEmpty)

        let fieldOnly = try parseRequest("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").get()
        #expect(!fieldOnly.head.wantsUpgrade)
        #expect(fieldOnly.head.upgradeIndex == 1)

        let tokenOnly = try parseRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n").get()
        #expect(!tokenOnly.head.wantsUpgrade)
        #expect(tokenOnly.head.upgradeIndex == -1)
    }

    @Test(arguments: ["100-continue", "100-Continue", "100-CONTINUE"])
    func expect100ContinueIsRecognised(_ value: String) throws {
        let req = try parseRequest(
            "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: \(value)\r\n\r\n"
        ).get()
        #expect(req.head.expectsContinue)
        #expect(req.head.framing == .contentLength(10))
    }

    @Test func expect100ContinueIsIgnoredFromHTTP10Clients() throws {
        let req = try parseRequest("POST / HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n").get()
        #expect(!req.head.expectsContinue)
    }

    @Test(arguments: [
        ("Content-Length: 5\r\n", Int64(5)),
        ("Content-Length: 0\r\n", 0),
        ("Content-Length: 5, 5\r\n", 5),
        ("Content-Length: 5,5,5\r\n", 5),
        ("Content-Length:\t 7 \t\r\n", 7),
        ("Content-Length: 5\r\nContent-Length: 5\r\n", 5),
        ("Content-Length: 007\r\n", 7),
        ("content-length: 4611686018427387903\r\n", 4_611_686_018_427_387_903),
    ])
    func contentLengthFraming(_ fields: String, _ length: Int64) throws {
        let req = try parseRequest("POST / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n").get()
        #expect(req.head.framing == .contentLength(length))
    }

    @Test(arguments: [
        "Transfer-Encoding: chunked\r\n",
        "Transfer-Encoding: Chunked\r\n",
        "transfer-encoding:   chunked  \r\n",
        "Transfer-Encoding: , chunked\r\n",
    ])
    func chunkedFraming(_ fields: String) throws {
        let req = try parseRequest("POST / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n").get()
        #expect(req.head.framing == .chunked)
        #expect(req.field("transfer-encoding")?.isHopByHop == true)
    }

    @Test func headerOrderAndExactSpansArePreserved() throws {
        let raw = "PUT /x HTTP/1.1\r\nHost: h\r\nX-B: 2\r\nx-a:1\r\nX-B: 3\r\nEmpty:\r\nX-Spaces:  in  side \r\n\r\n"
        let req = try parseRequest(raw).get()
        #expect(req.names == ["Host", "X-B", "x-a", "X-B", "Empty", "X-Spaces"])
        #expect(req.values == ["h", "2", "1", "3", "", "in  side"])
        // Spans point at the exact bytes in the buffer.
        let bytes = req.bytes
        let first = req.head.headers[0]
        #expect(first.name == Span(17, 21))
        #expect(first.value == Span(23, 24))
        #expect(req.head.methodSpan == Span(0, 3))
        #expect(req.head.targetSpan == Span(4, 6))
        for field in req.head.headers {
            #expect(field.name.range.upperBound < bytes.count && bytes[field.name.range.upperBound] == UInt8(ascii: ":"))
            if field.value.count > 0 {
                #expect(bytes[field.value.range.upperBound] == 0x0D || bytes[field.value.range.upperBound] == 0x20)
            }
        }
    }

    @Test(arguments: ["X: value \r\n", "X: value\t\r\n", "X:  value \t \t\r\n", "X:\tvalue\t\r\n"])
    func surroundingWhitespaceIsTrimmedFromValues(_ field: String) throws {
        let req = try parseRequest("GET / HTTP/1.1\r\nHost: a\r\n\(field)\r\n").get()
        #expect(req.value("x") == "value")
    }

    @Test func obsTextIsAllowedInValues() throws {
        let raw = utf8("GET / HTTP/1.1\r\nHost: a\r\nX: caf") + [0xC3, 0xA9, 0xFF] + utf8("\r\n\r\n")
        let req = try parseRequest(raw).get()
        #expect(req.head.headers[1].value.count == 6)
    }

    @Test(arguments: [
        ("Host", HTTPHeaderKind.host), ("HOST", .host), ("host", .host),
        ("Content-Length", .contentLength), ("CONTENT-length", .contentLength),
        ("Transfer-Encoding", .transferEncoding), ("tRANSFER-eNCODING", .transferEncoding),
        ("Connection", .connection), ("connection", .connection),
        ("Keep-Alive", .keepAlive), ("KEEP-ALIVE", .keepAlive),
        ("TE", .te), ("te", .te),
        ("Proxy-Connection", .proxyConnection), ("PROXY-CONNECTION", .proxyConnection),
        ("Upgrade", .upgrade), ("UPGRADE", .upgrade),
        ("Expect", .expect), ("eXpEcT", .expect),
        ("X-Forwarded-For", .xForwardedFor), ("x-forwarded-for", .xForwardedFor),
        ("X-Forwarded-Proto", .xForwardedProto), ("X-FORWARDED-PROTO", .xForwardedProto),
        ("X-Forwarded-Host", .xForwardedHost), ("x-FORWARDED-host", .xForwardedHost),
        ("X-Request-Id", .xRequestID), ("X-REQUEST-ID", .xRequestID),
        ("Hostx", .other), ("Hos", .other), ("X-Request-Ids", .other), ("Content-Lengths", .other),
        ("Accept", .other), ("Connectiox", .other),
    ])
    func headerKindsAreClassifiedCaseInsensitively(_ name: String, _ kind: HTTPHeaderKind) throws {
        // Values chosen so that every kind parses: this test is about classification only.
        let value: String
        switch kind {
        case .contentLength: value = "0"
        case .transferEncoding: value = "chunked"
        case .expect: value = "100-continue"
        default: value = "v"
        }
        let host = kind == .host ? "" : "Host: a\r\n"
        let req = try parseRequest("POST / HTTP/1.1\r\n\(host)\(name): \(value)\r\n\r\n").get()
        #expect(req.field(name)?.kind == kind)
    }

    @Test func requestIDIndexIsTheFirstXRequestID() throws {
        let req = try parseRequest("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: one\r\nx-request-id: two\r\n\r\n").get()
        #expect(req.head.requestIDIndex == 1)
    }

    @Test func headIsReusedAcrossRequests() throws {
        var head = HTTPRequestHead()
        let first = utf8("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade, x-a\r\nUpgrade: websocket\r\nExpect: 100-continue\r\nX-Request-Id: r\r\n\r\n")
        let second = utf8("GET / HTTP/1.1\r\nHost: b\r\n\r\n")
        try first.withUnsafeBytes { try HTTP1Parser.parseRequest($0, limits: HTTPHeadLimits(), into: &head) }
        #expect(head.wantsUpgrade && head.expectsContinue && head.requestIDIndex == 4 && !head.connectionTokens.isEmpty)
        try second.withUnsafeBytes { try HTTP1Parser.parseRequest($0, limits: HTTPHeadLimits(), into: &head) }
        #expect(head.headers.count == 1)
        #expect(!head.wantsUpgrade)
        #expect(!head.expectsContinue)
        #expect(head.requestIDIndex == -1)
        #expect(head.upgradeIndex == -1)
        #expect(head.connectionTokens.isEmpty)
        #expect(head.hostIndex == 0)
        #expect(head.isKeepAlive)
        #expect(head.framing == HTTPBodyFraming.none)
        #expect(head.headLength == second.count)
    }

    @Test func headerCountAtLimitIsAccepted() throws {
        let fields = (0..<9).map { "X-\($0): v\r\n" }.joined()
        let req = try parseRequest("GET / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n", limits: HTTPHeadLimits(maxHeaderCount: 10)).get()
        #expect(req.head.headers.count == 10)
    }
}

// MARK: - Requests: malformed

struct MalformedRequest: Sendable, CustomTestStringConvertible {
    var name: String
    var raw: [UInt8]
    var error: HTTPParseError
    var limits = HTTPHeadLimits()

    var testDescription: String { name }

    /// `line` is the request line, `fields` the field lines (each ending in CRLF); a blank line is appended.
    init(_ name: String, _ line: String, _ fields: String, _ error: HTTPParseError,
         limits: HTTPHeadLimits = HTTPHeadLimits()) {
        self.name = name
        self.raw = utf8(line + "\r\n" + fields + "\r\n")
        self.error = error
        self.limits = limits
    }

    /// A faulty request line followed by a valid `Host` field.
    static func line(_ name: String, _ line: String, _ error: HTTPParseError) -> MalformedRequest {
        MalformedRequest(name, line, "Host: a\r\n", error)
    }

    init(_ name: String, raw: [UInt8], _ error: HTTPParseError) {
        self.name = name
        self.raw = raw
        self.error = error
    }
}

private let manyFields = (0..<10).map { "X-\($0): v\r\n" }.joined()

let malformedRequests: [MalformedRequest] = [
    // Framing
    .init("CL and TE", "POST / HTTP/1.1", "Host: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n", .contentLengthWithTransferEncoding),
    .init("TE and CL", "POST / HTTP/1.1", "Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n", .contentLengthWithTransferEncoding),
    .init("TE gzip", "POST / HTTP/1.1", "Host: a\r\nTransfer-Encoding: gzip\r\n", .unsupportedTransferEncoding),
    .init("TE identity", "POST / HTTP/1.1", "Host: a\r\nTransfer-Encoding: identity\r\n", .unsupportedTransferEncoding),
    .init("TE gzip, chunked", "POST / HTTP/1.1", "Host: a\r\nTransfer-Encoding: gzip, chunked\r\n", .unsupportedTransferEncoding),
    .init("TE chunked, chunked", "POST / HTTP/1.1", "Host: a\r\nTransfer-Encoding: chunked, chunked\r\n", .unsupportedTransferEncoding),
    .init("TE chunked twice in two lines", "POST / HTTP/1.1", "Host: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", .unsupportedTransferEncoding),
    .init("TE gzip then chunked in two lines", "POST / HTTP/1.1", "Host: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", .unsupportedTransferEncoding),
    .init("TE empty", "POST / HTTP/1.1", "Host: a\r\nTransfer-Encoding: \r\n", .unsupportedTransferEncoding),
    .init("TE only commas", "POST / HTTP/1.1", "Host: a\r\nTransfer-Encoding: , ,\r\n", .unsupportedTransferEncoding),
    .init("TE with parameter", "POST / HTTP/1.1", "Host: a\r\nTransfer-Encoding: chunked;q=1\r\n", .unsupportedTransferEncoding),
    .init("TE chunked with junk", "POST / HTTP/1.1", "Host: a\r\nTransfer-Encoding: chunked x\r\n", .unsupportedTransferEncoding),
    .init("TE quoted", "POST / HTTP/1.1", "Host: a\r\nTransfer-Encoding: \"chunked\"\r\n", .unsupportedTransferEncoding),
    .init("TE in HTTP/1.0", "POST / HTTP/1.0", "Transfer-Encoding: chunked\r\n", .transferEncodingInHTTP10),
    .init("differing CL list", "POST / HTTP/1.1", "Host: a\r\nContent-Length: 5, 6\r\n", .invalidContentLength),
    .init("differing CL lines", "POST / HTTP/1.1", "Host: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n", .invalidContentLength),
    .init("CL plus sign", "POST / HTTP/1.1", "Host: a\r\nContent-Length: +5\r\n", .invalidContentLength),
    .init("CL minus sign", "POST / HTTP/1.1", "Host: a\r\nContent-Length: -5\r\n", .invalidContentLength),
    .init("CL hex", "POST / HTTP/1.1", "Host: a\r\nContent-Length: 0x10\r\n", .invalidContentLength),
    .init("CL space inside", "POST / HTTP/1.1", "Host: a\r\nContent-Length: 1 0\r\n", .invalidContentLength),
    .init("CL empty", "POST / HTTP/1.1", "Host: a\r\nContent-Length: \r\n", .invalidContentLength),
    .init("CL trailing comma", "POST / HTTP/1.1", "Host: a\r\nContent-Length: 5,\r\n", .invalidContentLength),
    .init("CL decimal point", "POST / HTTP/1.1", "Host: a\r\nContent-Length: 5.0\r\n", .invalidContentLength),
    .init("CL just over 2^62-1", "POST / HTTP/1.1", "Host: a\r\nContent-Length: 4611686018427387904\r\n", .invalidContentLength),
    .init("CL overflows Int64", "POST / HTTP/1.1", "Host: a\r\nContent-Length: 9223372036854775808\r\n", .invalidContentLength),
    .init("CL 20 nines", "POST / HTTP/1.1", "Host: a\r\nContent-Length: 99999999999999999999\r\n", .invalidContentLength),
    .init("CL 40 digits", "POST / HTTP/1.1", "Host: a\r\nContent-Length: 1000000000000000000000000000000000000000\r\n", .invalidContentLength),
    // Field syntax
    .init("obs-fold with space", "GET / HTTP/1.1", "Host: a\r\nX: a\r\n b\r\n", .obsFold),
    .init("obs-fold with tab", "GET / HTTP/1.1", "Host: a\r\nX: a\r\n\tb\r\n", .obsFold),
    .init("whitespace before first field", "GET / HTTP/1.1", " Host: a\r\n", .obsFold),
    .init("space before colon", "GET / HTTP/1.1", "Host : a\r\n", .whitespaceBeforeColon),
    .init("tab before colon", "GET / HTTP/1.1", "Host: a\r\nX\t: b\r\n", .whitespaceBeforeColon),
    .init("NUL in value", "GET / HTTP/1.1", "Host: a\r\nX: a\u{0}b\r\n", .invalidHeaderValue),
    .init("bare CR in value", "GET / HTTP/1.1", "Host: a\r\nX: a\rb\r\n", .invalidHeaderValue),
    .init("DEL in value", "GET / HTTP/1.1", "Host: a\r\nX: a\u{7F}b\r\n", .invalidHeaderValue),
    .init("ESC in value", "GET / HTTP/1.1", "Host: a\r\nX: \u{1B}[0m\r\n", .invalidHeaderValue),
    .init("invalid char in name", "GET / HTTP/1.1", "Host: a\r\nX(y): b\r\n", .invalidHeaderName),
    .init("slash in name", "GET / HTTP/1.1", "Host: a\r\nX/Y: b\r\n", .invalidHeaderName),
    .init("NUL in name", "GET / HTTP/1.1", "Host: a\r\nX\u{0}Y: b\r\n", .invalidHeaderName),
    .init("empty name", "GET / HTTP/1.1", "Host: a\r\n: b\r\n", .invalidHeaderName),
    .init("no colon", "GET / HTTP/1.1", "Host: a\r\nNoColon\r\n", .invalidHeaderName),
    .init("missing blank line", raw: utf8("GET / HTTP/1.1\r\nHost: a\r\n"), .invalidHeaderName),
    .init("bytes after blank line", raw: utf8("GET / HTTP/1.1\r\nHost: a\r\n\r\nX"), .invalidHeaderName),
    // Request line
    .line("invalid char in method", "G(ET / HTTP/1.1", .invalidMethod),
    .line("empty method", " / HTTP/1.1", .invalidMethod),
    .line("tab after method", "GET\t/ HTTP/1.1", .invalidMethod),
    .init("method only", raw: utf8("GET"), .invalidMethod),
    .line("two spaces before target", "GET  / HTTP/1.1", .invalidTarget),
    .line("NUL in target", "GET /a\u{0}b HTTP/1.1", .invalidTarget),
    .line("DEL in target", "GET /a\u{7F} HTTP/1.1", .invalidTarget),
    .line("tab in target", "GET /a\tb HTTP/1.1", .invalidTarget),
    .init("non-ASCII in target", raw: utf8("GET /caf") + [0xC3, 0xA9] + utf8(" HTTP/1.1\r\nHost: a\r\n\r\n"), .invalidTarget),
    .line("relative target", "GET index.html HTTP/1.1", .invalidTarget),
    .line("asterisk for GET", "GET * HTTP/1.1", .invalidTarget),
    .line("asterisk with suffix", "OPTIONS *x HTTP/1.1", .invalidTarget),
    .line("authority-form for GET", "GET example.com:443 HTTP/1.1", .invalidTarget),
    .line("origin-form for CONNECT", "CONNECT /x HTTP/1.1", .invalidTarget),
    .line("scheme starting with digit", "GET 1http://a/ HTTP/1.1", .invalidTarget),
    .line("scheme without slashes", "GET http:/a HTTP/1.1", .invalidTarget),
    .line("HTTP/2.0", "GET / HTTP/2.0", .unsupportedVersion),
    .line("HTTP/1.2", "GET / HTTP/1.2", .unsupportedVersion),
    .line("HTTP/0.9", "GET / HTTP/0.9", .unsupportedVersion),
    .line("HTTP/3.1", "GET / HTTP/3.1", .unsupportedVersion),
    .line("trailing space after version", "GET / HTTP/1.1 ", .invalidVersion),
    .line("garbage after version", "GET / HTTP/1.1 garbage", .invalidVersion),
    .line("extra digit after version", "GET / HTTP/1.10", .invalidVersion),
    .line("lowercase version", "GET / http/1.1", .invalidVersion),
    .line("two-digit major", "GET / HTTP/11.1", .invalidVersion),
    .line("letter in version", "GET / HTTP/1.x", .invalidVersion),
    .line("missing version", "GET /", .invalidTarget),
    .line("short version", "GET / HTTP/1", .invalidVersion),
    .init("no CRLF after version", raw: utf8("GET / HTTP/1.1"), .invalidVersion),
    .init("bare CR after version", raw: utf8("GET / HTTP/1.1\rHost: a\r\n\r\n"), .invalidVersion),
    // Semantics
    .init("missing Host in 1.1", "GET / HTTP/1.1", "Accept: */*\r\n", .missingHost),
    .init("no fields in 1.1", "GET / HTTP/1.1", "", .missingHost),
    .init("two Hosts", "GET / HTTP/1.1", "Host: a\r\nHost: a\r\n", .duplicateHost),
    .init("two Hosts in 1.0", "GET / HTTP/1.0", "Host: a\r\nhost: b\r\n", .duplicateHost),
    .init("Expect other than 100-continue", "GET / HTTP/1.1", "Host: a\r\nExpect: 200-ok\r\n", .unsupportedExpectation),
    .init("Expect with extra", "GET / HTTP/1.1", "Host: a\r\nExpect: 100-continue, foo\r\n", .unsupportedExpectation),
    .init("Expect empty", "GET / HTTP/1.1", "Host: a\r\nExpect: \r\n", .unsupportedExpectation),
    .init("too many headers", "GET / HTTP/1.1", "Host: a\r\n" + manyFields, .tooManyHeaders, limits: HTTPHeadLimits(maxHeaderCount: 10)),
    .init("Host with a space", "GET / HTTP/1.1", "Host: a b\r\n", .invalidHost),
    .init("Host with a path", "GET / HTTP/1.1", "Host: a/b\r\n", .invalidHost),
    .init("Host with user info", "GET / HTTP/1.1", "Host: user@a\r\n", .invalidHost),
    .init("Host with a query", "GET / HTTP/1.1", "Host: a?b\r\n", .invalidHost),
    .init("Host with obs-text", "GET / HTTP/1.1", "Host: \u{e9}.example\r\n", .invalidHost),
    .line("fragment in the target", "GET /a#b HTTP/1.1", .invalidTarget),
]

@Suite("HTTP1Parser malformed requests")
struct HTTP1ParserMalformedRequestTests {
    @Test func tableIsLargeEnough() {
        #expect(malformedRequests.count >= 40)
    }

    @Test(arguments: malformedRequests)
    func malformedRequestIsRefused(_ testCase: MalformedRequest) {
        #expect(parseRequest(testCase.raw, limits: testCase.limits).failure == testCase.error)
    }

    @Test(arguments: [
        (HTTPParseError.bareLineFeed, 400), (.requestLineTooLong, 414), (.headerSectionTooLarge, 431),
        (.tooManyHeaders, 431), (.invalidMethod, 400), (.invalidTarget, 400), (.invalidVersion, 400),
        (.unsupportedVersion, 505), (.invalidStatusLine, 400), (.obsFold, 400), (.invalidHeaderName, 400),
        (.whitespaceBeforeColon, 400), (.invalidHeaderValue, 400), (.missingHost, 400), (.duplicateHost, 400),
        (.invalidHost, 400), (.invalidContentLength, 400), (.contentLengthWithTransferEncoding, 400),
        (.unsupportedTransferEncoding, 400), (.transferEncodingInHTTP10, 400), (.unsupportedExpectation, 417),
    ])
    func errorMapsToStatus(_ error: HTTPParseError, _ status: Int) {
        #expect(error.status == status)
        #expect(!error.reason.isEmpty)
    }

    @Test func statusesOfTypicalFaults() {
        #expect(parseRequest("GET / HTTP/2.0\r\nHost: a\r\n\r\n").failure?.status == 505)
        #expect(parseRequest("GET / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n").failure?.status == 417)
        #expect(parseRequest("GET / HTTP/1.1\r\n\r\n").failure?.status == 400)
        let many = "GET / HTTP/1.1\r\nHost: a\r\n" + manyFields + "\r\n"
        #expect(parseRequest(many, limits: HTTPHeadLimits(maxHeaderCount: 10)).failure?.status == 431)
    }
}

// MARK: - Responses

@Suite("HTTP1Parser responses")
struct HTTP1ParserResponseTests {
    @Test func okWithContentLength() throws {
        let res = try parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nServer: s\r\n\r\n").get()
        #expect(res.head.version == .http11)
        #expect(res.head.status == 200)
        #expect(res.reason == "OK")
        #expect(res.head.framing == .contentLength(12))
        #expect(res.head.isKeepAlive)
        #expect(!res.head.isInterim)
        #expect(res.head.headLength == res.bytes.count)
        #expect(res.value("server") == "s")
    }

    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\n", 200, "OK"),
        ("HTTP/1.1 404 Not Found\r\n", 404, "Not Found"),
        ("HTTP/1.1 200\r\n", 200, ""),
        ("HTTP/1.1 200 \r\n", 200, ""),
        ("HTTP/1.1 500 Internal\tServer  Error\r\n", 500, "Internal\tServer  Error"),
        ("HTTP/1.1 100 Continue\r\n", 100, "Continue"),
        ("HTTP/1.1 599 x\r\n", 599, "x"),
        ("HTTP/1.0 302 Found\r\n", 302, "Found"),
    ])
    func statusLineVariants(_ line: String, _ status: Int, _ reason: String) throws {
        let res = try parseResponse(line + "Content-Length: 0\r\n\r\n").get()
        #expect(res.head.status == status)
        #expect(res.reason == reason)
    }

    @Test(arguments: [100, 102, 103, 199])
    func interimResponsesHaveNoBody(_ status: Int) throws {
        let res = try parseResponse("HTTP/1.1 \(status) Whatever\r\nContent-Length: 5\r\n\r\n").get()
        #expect(res.head.isInterim)
        #expect(res.head.framing == HTTPBodyFraming.none)
        #expect(res.head.isKeepAlive)
    }

    @Test func switchingProtocolsIsNotInterimAndHasNoBody() throws {
        let res = try parseResponse("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").get()
        #expect(res.head.status == 101)
        #expect(!res.head.isInterim)
        #expect(res.head.framing == HTTPBodyFraming.none)
        #expect(res.head.upgradeIndex == 1)
        #expect(res.head.headers[1].isHopByHop)
    }

    @Test(arguments: [
        ("HTTP/1.1 204 No Content\r\n", HTTPMethod.get),
        ("HTTP/1.1 304 Not Modified\r\n", .get),
        ("HTTP/1.1 200 OK\r\n", .head),
        ("HTTP/1.1 404 Not Found\r\n", .head),
        ("HTTP/1.1 200 Connection Established\r\n", .connect),
        ("HTTP/1.1 206 Tunnel\r\n", .connect),
    ])
    func responsesThatCannotHaveABodyHaveFramingNone(_ line: String, _ method: HTTPMethod) throws {
        for fields in ["Content-Length: 42\r\n", "Transfer-Encoding: chunked\r\n", ""] {
            let res = try parseResponse(line + fields + "\r\n", requestMethod: method).get()
            #expect(res.head.framing == HTTPBodyFraming.none, "\(fields)")
            #expect(res.head.isKeepAlive, "\(fields)")
        }
    }

    @Test func chunkedResponse() throws {
        let res = try parseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").get()
        #expect(res.head.framing == .chunked)
        #expect(res.head.isKeepAlive)
    }

    @Test func contentLengthListResponse() throws {
        let res = try parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n").get()
        #expect(res.head.framing == .contentLength(3))
    }

    @Test(arguments: ["HTTP/1.1", "HTTP/1.0"])
    func responseWithoutLengthIsReadUntilCloseAndNotKeptAlive(_ version: String) throws {
        let res = try parseResponse("\(version) 200 OK\r\nConnection: keep-alive\r\n\r\n").get()
        #expect(res.head.framing == .untilClose)
        #expect(!res.head.isKeepAlive)
    }

    @Test(arguments: [
        ("HTTP/1.0", "", false),
        ("HTTP/1.0", "Connection: keep-alive\r\n", true),
        ("HTTP/1.0", "Connection: close, keep-alive\r\n", false),
        ("HTTP/1.1", "", true),
        ("HTTP/1.1", "Connection: close\r\n", false),
        ("HTTP/1.1", "Connection: Close\r\n", false),
    ])
    func responseKeepAlive(_ version: String, _ fields: String, _ keepAlive: Bool) throws {
        let res = try parseResponse("\(version) 200 OK\r\nContent-Length: 0\r\n\(fields)\r\n").get()
        #expect(res.head.version == (version == "HTTP/1.0" ? .http10 : .http11))
        #expect(res.head.isKeepAlive == keepAlive)
    }

    @Test func responseConnectionTokensMarkHeadersHopByHop() throws {
        let res = try parseResponse("HTTP/1.1 200 OK\r\nConnection: x-a\r\nX-A: 1\r\nX-B: 2\r\nContent-Length: 0\r\n\r\n").get()
        #expect(res.head.headers.map(\.isHopByHop) == [true, true, false, false])
    }

    @Test func responseHeadIsReused() throws {
        var head = HTTPResponseHead()
        let first = utf8("HTTP/1.1 101 Switching\r\nUpgrade: x\r\nConnection: upgrade, x-a\r\n\r\n")
        let second = utf8("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        try first.withUnsafeBytes { try HTTP1Parser.parseResponse($0, requestMethod: .get, limits: HTTPHeadLimits(), into: &head) }
        #expect(head.upgradeIndex == 0)
        try second.withUnsafeBytes { try HTTP1Parser.parseResponse($0, requestMethod: .get, limits: HTTPHeadLimits(), into: &head) }
        #expect(head.upgradeIndex == -1)
        #expect(head.headers.count == 1)
        #expect(head.connectionTokens.isEmpty)
        #expect(head.status == 200)
    }

    @Test(arguments: [
        ("status 99", "HTTP/1.1 99 Low\r\n", HTTPParseError.invalidStatusLine),
        ("status 099", "HTTP/1.1 099 Low\r\n", .invalidStatusLine),
        ("status 600", "HTTP/1.1 600 High\r\n", .invalidStatusLine),
        ("status 2000", "HTTP/1.1 2000 OK\r\n", .invalidStatusLine),
        ("status letters", "HTTP/1.1 abc OK\r\n", .invalidStatusLine),
        ("status 2x0", "HTTP/1.1 2x0 OK\r\n", .invalidStatusLine),
        ("two-digit status", "HTTP/1.1 20\r\n", .invalidStatusLine),
        ("no space after status", "HTTP/1.1 200OK\r\n", .invalidStatusLine),
        ("two spaces before status", "HTTP/1.1  200 OK\r\n", .invalidStatusLine),
        ("tab before status", "HTTP/1.1\t200 OK\r\n", .invalidStatusLine),
        ("NUL in reason", "HTTP/1.1 200 O\u{0}K\r\n", .invalidStatusLine),
        ("DEL in reason", "HTTP/1.1 200 O\u{7F}K\r\n", .invalidStatusLine),
        ("bare CR in reason", "HTTP/1.1 200 O\rK\r\n", .invalidStatusLine),
        ("lowercase version", "http/1.1 200 OK\r\n", .invalidVersion),
        ("HTTP/2.0", "HTTP/2.0 200 OK\r\n", .unsupportedVersion),
        ("HTTP/1.2", "HTTP/1.2 200 OK\r\n", .unsupportedVersion),
        ("no version", "200 OK\r\n", .invalidVersion),
    ])
    func invalidStatusLineIsRefused(_ name: String, _ line: String, _ error: HTTPParseError) {
        #expect(parseResponse(line + "Content-Length: 0\r\n\r\n").failure == error, "\(name)")
    }

    @Test(arguments: [
        ("CL and TE", "HTTP/1.1 200 OK", "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", HTTPParseError.contentLengthWithTransferEncoding),
        ("CL and TE on 204", "HTTP/1.1 204 No Content", "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", .contentLengthWithTransferEncoding),
        ("CL and TE on 101", "HTTP/1.1 101 Switching", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", .contentLengthWithTransferEncoding),
        ("TE gzip", "HTTP/1.1 200 OK", "Transfer-Encoding: gzip\r\n", .unsupportedTransferEncoding),
        ("TE in 1.0", "HTTP/1.0 200 OK", "Transfer-Encoding: chunked\r\n", .transferEncodingInHTTP10),
        ("differing CL", "HTTP/1.1 200 OK", "Content-Length: 3\r\nContent-Length: 4\r\n", .invalidContentLength),
        ("CL overflow", "HTTP/1.1 200 OK", "Content-Length: 99999999999999999999\r\n", .invalidContentLength),
        ("obs-fold", "HTTP/1.1 200 OK", "X: a\r\n b\r\n", .obsFold),
        ("space before colon", "HTTP/1.1 200 OK", "X : a\r\n", .whitespaceBeforeColon),
        ("NUL in value", "HTTP/1.1 200 OK", "X: \u{0}\r\n", .invalidHeaderValue),
    ])
    func malformedResponseFieldsAreRefused(_ name: String, _ line: String, _ fields: String, _ error: HTTPParseError) {
        #expect(parseResponse(line + "\r\n" + fields + "\r\n").failure == error, "\(name)")
    }

    @Test func tooManyResponseHeaders() {
        let fields = (0..<5).map { "X-\($0): v\r\n" }.joined()
        #expect(parseResponse("HTTP/1.1 200 OK\r\n\(fields)\r\n", limits: HTTPHeadLimits(maxHeaderCount: 4)).failure == .tooManyHeaders)
    }
}

// MARK: - Reusing a head

@Suite("HTTP1Parser head reuse")
struct HTTP1ParserHeadReuseTests {
    /// A head parsed into again (as a keep-alive connection does when its head was not
    /// cleared) holds only the second message's fields and tokens.
    @Test func parsingIntoAUsedHeadReplacesItsFieldsAndTokens() throws {
        let first = utf8("GET /a HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nX-Two: 2\r\nConnection: x-one, x-two\r\n\r\n")
        let second = utf8("GET /b HTTP/1.1\r\nHost: b\r\n\r\n")
        var head = HTTPRequestHead()
        try first.withUnsafeBytes { try HTTP1Parser.parseRequest($0, limits: HTTPHeadLimits(), into: &head) }
        #expect(head.headers.count == 4)
        #expect(head.connectionTokens.count == 2)
        try second.withUnsafeBytes { try HTTP1Parser.parseRequest($0, limits: HTTPHeadLimits(), into: &head) }
        #expect(head.headers.count == 1)
        #expect(head.connectionTokens.isEmpty)
        #expect(text(second, head.headers[0].value) == "b")

        let firstResponse = utf8("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: 1\r\nConnection: x-a\r\n\r\n")
        let secondResponse = utf8("HTTP/1.1 204 No Content\r\nX-B: 2\r\n\r\n")
        var response = HTTPResponseHead()
        try firstResponse.withUnsafeBytes {
            try HTTP1Parser.parseResponse($0, requestMethod: .get, limits: HTTPHeadLimits(), into: &response)
        }
        #expect(response.headers.count == 3 && response.connectionTokens.count == 1)
        try secondResponse.withUnsafeBytes {
            try HTTP1Parser.parseResponse($0, requestMethod: .get, limits: HTTPHeadLimits(), into: &response)
        }
        #expect(response.headers.count == 1 && response.connectionTokens.isEmpty)
        #expect(text(secondResponse, response.headers[0].name) == "X-B")
    }
}

/// Field values scanned a word at a time agree with the rule byte by byte: random values of
/// 0 to 40 bytes drawn mostly from allowed bytes (VCHAR, SP, HTAB, obs-text) with an
/// occasional control byte or DEL, as the last field (which ends fewer than eight bytes before
/// the end of the head) and followed by another field. Valid exactly when every byte is
/// allowed; then the value is the bytes without leading and trailing SP/HTAB.
@Test func fieldValuesAreAcceptedAndDelimitedAsTheByteRuleSays() {
    var rng = SystemRandomNumberGenerator()
    let allowed: [UInt8] = [0x20, 0x09, 0x41, 0x7A, 0x30, 0x2C, 0x3B, 0x22, 0x7E, 0x80, 0xC3, 0xFF]
    let refused: [UInt8] = [0x00, 0x01, 0x0A, 0x0B, 0x0D, 0x1F, 0x7F]
    for round in 0..<4000 {
        let length = Int.random(in: 0...40, using: &rng)
        var value: [UInt8] = (0..<length).map { _ in allowed.randomElement(using: &rng)! }
        if length > 0 && Int.random(in: 0..<4, using: &rng) == 0 {
            value[Int.random(in: 0..<length, using: &rng)] = refused.randomElement(using: &rng)!
        }
        let isValid = value.allSatisfy { ($0 >= 0x20 && $0 != 0x7F) || $0 == 0x09 }
        var start = 0, end = value.count
        while start < end && (value[start] == 0x20 || value[start] == 0x09) { start += 1 }
        while end > start && (value[end - 1] == 0x20 || value[end - 1] == 0x09) { end -= 1 }
        let expected = Array(value[start..<end])
        let last = round % 2 == 0
        let raw = utf8("GET / HTTP/1.1\r\nHost: a\r\nX-V:") + value + utf8(last ? "\r\n\r\n" : "\r\nAccept: */*\r\n\r\n")
        switch parseRequest(raw) {
        case .success(let parsed):
            let field = parsed.head.headers[1]
            let got = Array(raw[field.value.range])
            #expect(isValid && got == expected, "value \(value) parsed as \(got)")
            #expect(parsed.head.headers.count == (last ? 2 : 3))
        case .failure(let error):
            // A CR or LF inside the value ends the line early: the rest is then refused as a
            // name or a value; anything else must be refused as a value.
            #expect(!isValid, "value \(value) refused: \(error)")
            if !value.contains(0x0D) && !value.contains(0x0A) {
                #expect(error == .invalidHeaderValue, "value \(value): \(error)")
            }
        }
    }
}

/// Field names scanned a word at a time agree with the token rule: random names of 0 to 30
/// bytes from letters, digits, `-`, the rarer token characters and a few bytes that are not
/// token characters (space, `@`, obs-text, a control byte), as the last field and not.
@Test func fieldNamesAreAcceptedAndDelimitedAsTheTokenRuleSays() {
    var rng = SystemRandomNumberGenerator()
    let common = Array("abcxyzABCXYZ0189-".utf8)
    let rare = Array("!#$%&'*+.^_`|~".utf8)
    let refused: [UInt8] = [0x20, 0x40, 0x80, 0xE1, 0x01, 0x22, 0x28, 0x7B]
    func isToken(_ b: UInt8) -> Bool { common.contains(b) || rare.contains(b) }
    for round in 0..<4000 {
        let length = Int.random(in: 0...30, using: &rng)
        let name: [UInt8] = (0..<length).map { _ in
            switch Int.random(in: 0..<40, using: &rng) {
            case 0: return refused.randomElement(using: &rng)!
            case 1...4: return rare.randomElement(using: &rng)!
            default: return common.randomElement(using: &rng)!
            }
        }
        let isValid = !name.isEmpty && name.allSatisfy(isToken)
        let last = round % 2 == 0
        let raw = utf8("GET / HTTP/1.1\r\nHost: a\r\n") + name + utf8(last ? ": v\r\n\r\n" : ": v\r\nAccept: */*\r\n\r\n")
        switch parseRequest(raw) {
        case .success(let parsed):
            #expect(isValid, "name \(name) accepted")
            #expect(Array(raw[parsed.head.headers[1].name.range]) == name)
            #expect(parsed.head.headers.count == (last ? 2 : 3))
        case .failure(let error):
            #expect(!isValid, "name \(name) refused: \(error)")
        }
    }
}
