import CTurnoutSys
import TurnoutCore
import TurnoutHTTP
#if canImport(Glibc)
import Glibc
#endif

/// A small origin server for `turnout demo`: it answers every request with its color
/// and the request it received (method, target, headers in order, body size) as JSON.
/// Blocking sockets and a thread per connection: it is a demo peer, not the proxy.
public final class DemoOrigin: @unchecked Sendable {
    public let name: String
    public let port: UInt16
    private let listenFD: Int32

    /// Binds 127.0.0.1 on `port` (0 picks a free one).
    public init(name: String, port: UInt16 = 0) throws {
        self.name = name
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw IOError("socket", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard let addr = SocketAddress(host: "127.0.0.1", port: port) else { preconditionFailure("loopback literal") }
        let r = addr.withSockAddr { bind(fd, $0, $1) }
        if r != 0 || listen(fd, 128) != 0 {
            let e = errno
            close(fd)
            throw IOError("bind", errno: e)
        }
        listenFD = fd
        self.port = Sockets.localPort(fd)
    }

    /// Accepts connections on a background thread until the process ends.
    public func start() {
        spawn { [self] in
            while true {
                let c = accept(listenFD, nil, nil)
                if c < 0 {
                    if errno == EINTR { continue }
                    return
                }
                spawn { [self] in serve(c) }
            }
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var filled = 0
        var head = HTTPRequestHead()
        while true {
            var scanner = HTTP1HeadScanner()
            var headRange: Range<Int>?
            while headRange == nil {
                if filled > 0 {
                    let result = try? buffer.withUnsafeBytes {
                        try scanner.scan(UnsafeRawBufferPointer(rebasing: $0[0..<filled]), limits: HTTPHeadLimits())
                    }
                    guard let result else { return respond(fd, 400, "bad request\n", keepAlive: false) }
                    if case .complete(let r) = result {
                        headRange = r
                        break
                    }
                }
                if filled == buffer.count { return respond(fd, 431, "head too large\n", keepAlive: false) }
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
                if n <= 0 { return }
                filled += n
            }
            guard let range = headRange else { return }
            let parsed: Bool = buffer.withUnsafeBytes {
                (try? HTTP1Parser.parseRequest(
                    UnsafeRawBufferPointer(rebasing: $0[range]), limits: HTTPHeadLimits(), into: &head)) != nil
            }
            guard parsed else { return respond(fd, 400, "bad request\n", keepAlive: false) }
            let text = { (s: Span) -> String in
                buffer.withUnsafeBytes { String(decoding: $0[(range.lowerBound + s.range.lowerBound)..<(range.lowerBound + s.range.upperBound)], as: UTF8.self) }
            }
            var headerJSON: [String] = []
            for f in head.headers {
                headerJSON.append("[\(jsonString(text(f.name))), \(jsonString(text(f.value)))]")
            }
            let method = text(head.methodSpan)
            let target = text(head.targetSpan)
            // Consume the body.
            buffer.removeSubrange(0..<range.upperBound)
            buffer.append(contentsOf: [UInt8](repeating: 0, count: range.upperBound))
            filled -= range.upperBound
            guard let bodyBytes = readBody(fd, &buffer, &filled, framing: head.framing, expectsContinue: head.expectsContinue)
            else { return }
            let body = """
                {"pool": \(jsonString(name)), "method": \(jsonString(method)), "target": \(jsonString(target)), \
                "headers": [\(headerJSON.joined(separator: ", "))], "body_bytes": \(bodyBytes)}

                """
            respond(fd, 200, body, keepAlive: head.isKeepAlive, contentType: "application/json")
            if !head.isKeepAlive { return }
        }
    }

    /// Reads and discards the request body, returning its length (nil if the peer left).
    private func readBody(
        _ fd: Int32, _ buffer: inout [UInt8], _ filled: inout Int, framing: HTTPBodyFraming, expectsContinue: Bool
    ) -> Int64? {
        if expectsContinue && framing != .none {
            let cont = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
            _ = cont.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }
        var total: Int64 = 0
        var decoder = ChunkedDecoder()
        var remaining: Int64
        switch framing {
        case .none, .untilClose: return 0
        case .contentLength(let n): remaining = n
        case .chunked: remaining = -1
        }
        while true {
            if remaining >= 0 {
                let take = Int(min(Int64(filled), remaining))
                total += Int64(take)
                remaining -= Int64(take)
                buffer.removeSubrange(0..<take)
                buffer.append(contentsOf: [UInt8](repeating: 0, count: take))
                filled -= take
                if remaining == 0 { return total }
            } else {
                var index = 0
                var ended = false
                let ok: Bool = buffer.withUnsafeBytes { raw in
                    let bytes = UnsafeRawBufferPointer(rebasing: raw[0..<filled])
                    do {
                        loop: while index < filled {
                            switch try decoder.decode(bytes, index: &index) {
                            case .data(let r): total += Int64(r.count)
                            case .needMore: break loop
                            case .end:
                                ended = true
                                break loop
                            }
                        }
                        return true
                    } catch {
                        return false
                    }
                }
                if !ok { return nil }
                buffer.removeSubrange(0..<index)
                buffer.append(contentsOf: [UInt8](repeating: 0, count: index))
                filled -= index
                if ended { return total }
            }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n <= 0 { return nil }
            filled += n
        }
    }

    private func respond(_ fd: Int32, _ status: Int, _ body: String, keepAlive: Bool, contentType: String = "text/plain") {
        let reason = status == 200 ? "OK" : "Error"
        let bodyBytes = Array(body.utf8)
        var text = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\n"
        text += "X-Turnout-Demo-Pool: \(name)\r\nContent-Length: \(bodyBytes.count)\r\n"
        if !keepAlive { text += "Connection: close\r\n" }
        text += "\r\n"
        let bytes = Array(text.utf8) + bodyBytes
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { return }
            off += n
        }
    }
}

/// A JSON string literal for `s`.
func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16)
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}

private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Runs `body` on a new detached thread.
func spawn(_ body: @escaping () -> Void) {
    var tid = pthread_t()
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    let r = pthread_create(&tid, nil, { arg in
        Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue().run()
        return nil
    }, box)
    if r == 0 { pthread_detach(tid) }
}
