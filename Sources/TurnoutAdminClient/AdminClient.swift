#if canImport(Glibc)
import Glibc
#endif

/// Why an admin call did not get an answer.
public enum AdminClientError: Error, CustomStringConvertible {
    /// Nothing listens at the socket path.
    case socketMissing(String)
    /// The socket exists but this user may not connect to it.
    case permissionDenied(String)
    /// Connecting or talking failed otherwise.
    case io(String, Int32)
    /// The server answered something that is not HTTP.
    case badResponse(String)

    public var description: String {
        switch self {
        case .socketMissing(let path):
            return "no admin socket at \(path): is turnout running? (set --socket or TURNOUT_ADMIN_SOCKET)"
        case .permissionDenied(let path):
            return "permission denied on \(path): the admin socket is only for the user turnout runs as (try sudo)"
        case .io(let what, let code):
            return "\(what): \(String(cString: strerror(code)))"
        case .badResponse(let why):
            return "unexpected answer from the admin socket: \(why)"
        }
    }
}

/// An answer of the admin API.
public struct AdminResponse {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// A blocking HTTP/1.1 client for the admin API over a Unix socket: one request per
/// connection (the server closes after answering). For the CLI and tests.
public struct AdminClient {
    public let socketPath: String
    /// Seconds to wait for an answer (a change waits for every worker's acknowledgement).
    public var timeoutSeconds: Int = 30

    public init(socketPath: String = AdminEndpoint.defaultSocketPath) {
        self.socketPath = socketPath
    }

    /// Sends `method path` with an optional JSON body and extra headers.
    public func send(_ method: String, _ path: String, json body: [UInt8]? = nil, headers: [(String, String)] = [])
        throws -> AdminResponse
    {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw AdminClientError.io("socket", errno) }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw AdminClientError.io("socket path too long", ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in pathBytes.enumerated() { raw[i] = b }
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if r != 0 {
            switch errno {
            case ENOENT, ECONNREFUSED: throw AdminClientError.socketMissing(socketPath)
            case EACCES, EPERM: throw AdminClientError.permissionDenied(socketPath)
            case let e: throw AdminClientError.io("connect \(socketPath)", e)
            }
        }
        var request = "\(method) \(path) HTTP/1.1\r\nHost: turnout\r\nConnection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        if let body {
            request += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        }
        request += "\r\n"
        var bytes = Array(request.utf8)
        if let body { bytes += body }
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + sent, $0.count - sent) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE || errno == ECONNRESET { break }  // the server answered early
                throw AdminClientError.io("write", errno)
            }
            sent += n
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw AdminClientError.io("no answer within \(timeoutSeconds) s", ETIMEDOUT)
                }
                throw AdminClientError.io("read", errno)
            }
            if n == 0 { break }
            received += buffer[0..<n]
        }
        return try AdminClient.parse(received)
    }

    static func parse(_ bytes: [UInt8]) throws -> AdminResponse {
        let crlfcrlf: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { Array(bytes[$0..<$0 + 4]) == crlfcrlf }) else {
            throw AdminClientError.badResponse("no complete response head")
        }
        let head = String(decoding: bytes[0..<end], as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
            throw AdminClientError.badResponse("bad status line")
        }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), trimmingWhitespace(line[line.index(after: colon)...])))
        }
        var body = Array(bytes[(end + 4)...])
        if let length = headers.first(where: { $0.0.lowercased() == "content-length" }).flatMap({ Int($0.1) }),
            length < body.count
        {
            body = Array(body[0..<length])
        }
        return AdminResponse(status: status, headers: headers, body: body)
    }

    /// `text` without leading and trailing tabs, space separators (Zs) and U+200B, as
    /// Foundation's `trimmingCharacters(in: .whitespaces)`.
    static func trimmingWhitespace(_ text: Substring) -> String {
        let scalars = text.unicodeScalars
        func isWhitespace(_ s: Unicode.Scalar) -> Bool {
            s == "\t" || s == "\u{200B}" || s.properties.generalCategory == .spaceSeparator
        }
        guard let first = scalars.firstIndex(where: { !isWhitespace($0) }),
            let last = scalars.lastIndex(where: { !isWhitespace($0) })
        else { return "" }
        return String(scalars[first...last])
    }
}
