import CTurnoutSys
import Logging
import TurnoutCore
import TurnoutHTTP

#if canImport(Glibc)
    import Glibc
#endif

/// Who sent an admin request: a local process (Unix socket peer credentials) or a
/// bearer token's name (loopback TCP listener).
public enum AdminPeer: Equatable, Sendable {
    case process(uid: UInt32, pid: Int32)
    case token(name: String)

    var json: [String: Any] {
        switch self {
        case .process(let uid, let pid): return ["uid": Int(uid), "pid": Int(pid)]
        case .token(let name): return ["token": name]
        }
    }
}

/// One parsed admin request.
struct AdminRequest {
    var method: String
    var path: String
    var query: [String: String]
    var headers: [(String, String)]
    var body: [UInt8]
    var peer: AdminPeer

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name }?.1
    }
}

/// What the control plane answers, now or once the workers acknowledged.
struct AdminReply {
    var status: Int
    var json: [String: Any]

    static func error(_ e: AdminError, extra: [String: Any] = [:]) -> AdminReply {
        var json = extra
        json["error"] = e.message
        return AdminReply(status: e.status, json: json)
    }
}

/// Accepts admin connections (Unix socket or loopback TCP) on the control loop.
final class AdminListener: EventHandler {
    unowned let control: ControlPlane
    let isTCP: Bool

    init(fd: Int32, isTCP: Bool, control: ControlPlane) {
        self.control = control
        self.isTCP = isTCP
        super.init(fd: fd)
    }

    override func handleEvent(_ events: UInt32) {
        var address = sockaddr_storage()
        while true {
            let r: IOResult<Int32>
            do {
                r = try Syscall.accept(fd, &address)
            } catch {
                control.logger.error("admin accept failed", metadata: ["turnout.error": "\(error)"])
                return
            }
            guard case .processed(let client) = r else { return }
            var peer = AdminPeer.token(name: "")
            if !isTCP {
                var pid: pid_t = 0
                var uid: uid_t = 0
                var gid: gid_t = 0
                if cturnout_peer_credentials(client, &pid, &uid, &gid) == 0 {
                    peer = .process(uid: uid, pid: pid)
                }
            }
            control.accepted(AdminConnection(fd: client, peer: peer, requiresToken: isTCP, control: control))
        }
    }
}

/// One admin connection: reads one request (head + Content-Length body, at most 1 MiB),
/// lets the control plane answer it, writes the answer and closes.
final class AdminConnection: EventHandler {
    unowned let control: ControlPlane
    let requiresToken: Bool
    var peer: AdminPeer
    private var input: [UInt8] = []
    private var output: [UInt8] = []
    private var written = 0
    private var isAnswered = false
    private var isReplyPending = false
    static let maxRequestBytes = 1 << 20

    init(fd: Int32, peer: AdminPeer, requiresToken: Bool, control: ControlPlane) {
        self.peer = peer
        self.requiresToken = requiresToken
        self.control = control
        super.init(fd: fd)
    }

    override func handleEvent(_ events: UInt32) {
        if !isAnswered && !isReplyPending { readSome() }
        if isAnswered { flush() }
    }

    override func handleTimeout() {
        control.close(self)
    }

    private func readSome() {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let r: IOResult<Int>
            do {
                r = try buffer.withUnsafeMutableBytes { raw throws(IOError) in try Syscall.read(fd, raw.baseAddress!, raw.count) }
            } catch {
                control.close(self)
                return
            }
            switch r {
            case .wouldBlock:
                tryParse()
                return
            case .processed(0):
                if !tryParse() { control.close(self) }
                return
            case .processed(let n):
                input += buffer[0..<n]
                if input.count > AdminConnection.maxRequestBytes {
                    answer(AdminReply.error(AdminError(413, "the request is larger than 1 MiB")))
                    return
                }
            }
        }
    }

    /// Parses a complete request if there is one; true when it did.
    @discardableResult
    private func tryParse() -> Bool {
        var scanner = HTTP1HeadScanner()
        let limits = HTTPHeadLimits(maxStartLineBytes: 8192, maxHeadBytes: 65536, maxHeaderCount: 100)
        var head = HTTPRequestHead()
        let parsed: (Int, Int)? = input.withUnsafeBytes { raw -> (Int, Int)? in
            do {
                guard case .complete(let range) = try scanner.scan(raw, limits: limits) else { return nil }
                try HTTP1Parser.parseRequest(UnsafeRawBufferPointer(rebasing: raw[range]), limits: limits, into: &head)
                return (range.lowerBound, range.upperBound)
            } catch let e as HTTPParseError {
                answer(AdminReply.error(AdminError(e.status, "bad request: \(e.reason)")))
                return nil
            } catch {
                answer(AdminReply.error(AdminError(400, "bad request")))
                return nil
            }
        }
        guard let (start, end) = parsed else { return isAnswered }
        let headBytes = Array(input[start..<end])
        func text(_ span: Span) -> String { String(decoding: headBytes[span.range], as: UTF8.self) }
        var length = 0
        switch head.framing {
        case .none, .untilClose: length = 0
        case .contentLength(let n):
            guard n <= Int64(AdminConnection.maxRequestBytes) else {
                answer(AdminReply.error(AdminError(413, "the request is larger than 1 MiB")))
                return true
            }
            length = Int(n)
        case .chunked:
            answer(AdminReply.error(AdminError(411, "send the body with Content-Length")))
            return true
        }
        guard input.count - end >= length else { return false }
        let body = Array(input[end..<end + length])
        let target = text(head.targetSpan)
        var path = target
        var query: [String: String] = [:]
        if let q = target.firstIndex(of: "?") {
            path = String(target[..<q])
            for pair in target[target.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                query[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
            }
        }
        let headers = head.headers.map { (text($0.name), text($0.value)) }
        var request = AdminRequest(
            method: text(head.methodSpan), path: Text.removingPercentEncoding(path) ?? path, query: query,
            headers: headers, body: body, peer: peer)
        if requiresToken {
            guard let auth = request.header("authorization"), auth.hasPrefix("Bearer "),
                let name = control.tokenName(for: String(auth.dropFirst(7)))
            else {
                answer(AdminReply(status: 401, json: ["error": "a valid bearer token is required"]))
                return true
            }
            request.peer = .token(name: name)
            peer = request.peer
        }
        isReplyPending = true
        // The request is complete: from here the answer's own deadline applies.
        control.loop.cancelTimer(self)
        control.handle(request, from: self)
        return true
    }

    /// Sends the answer and closes once it is written.
    func answer(_ reply: AdminReply) {
        guard !isAnswered, fd >= 0 else { return }
        isAnswered = true
        isReplyPending = false
        let body = AdminJSON.encode(reply.json)
        var head = "HTTP/1.1 \(reply.status) \(AdminConnection.reason(reply.status))\r\n"
        head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        if reply.status == 405, let allow = reply.json["allow"] as? String { head += "Allow: \(allow)\r\n" }
        head += "\r\n"
        output = Array(head.utf8) + body
        flush()
    }

    private func flush() {
        while written < output.count {
            let r: IOResult<Int>
            do {
                r = try output.withUnsafeBytes { raw throws(IOError) in
                    try Syscall.write(fd, raw.baseAddress! + written, raw.count - written)
                }
            } catch {
                control.close(self)
                return
            }
            switch r {
            case .wouldBlock: return
            case .processed(let n): written += n
            }
        }
        control.close(self)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 422: return "Unprocessable Content"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status"
        }
    }
}

/// SIGINT/SIGTERM as readable events (signalfd), so the control loop sees them.
final class SignalHandler: EventHandler {
    let onSignal: (Int32) -> Void

    init(onSignal: @escaping (Int32) -> Void) throws {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        let fd = signalfd(-1, &set, cturnout_SFD_NONBLOCK_CLOEXEC)
        if fd < 0 { throw IOError("signalfd", errno: errno) }
        self.onSignal = onSignal
        super.init(fd: fd)
    }

    override func handleEvent(_ events: UInt32) {
        var info = signalfd_siginfo()
        while withUnsafeMutableBytes(of: &info, { read(fd, $0.baseAddress, $0.count) }) == MemoryLayout<signalfd_siginfo>.size {
            onSignal(Int32(info.ssi_signo))
        }
    }
}

/// A deadline on the control loop (a handler with no fd).
final class ControlTimer: EventHandler {
    let onTimeout: () -> Void
    /// True once the deadline passed.
    private(set) var hasFired = false

    init(onTimeout: @escaping () -> Void) {
        self.onTimeout = onTimeout
        super.init(fd: -1)
    }

    override func handleTimeout() {
        hasFired = true
        onTimeout()
    }
}
