// An in-process loopback benchmark of the whole request path: a real Turnout worker
// (ProxyServer, one worker thread, epoll) between a blocking client and a blocking origin,
// all in this process and on 127.0.0.1. One operation is one proxied keep-alive request
// with a 64-byte response (or, on its own connection, a 20 000-byte one: more than one
// connection buffer, below the splice line).
//
// The client and the origin reuse fixed buffers and allocate nothing per request, so the
// process-wide counters (mallocs, retains/releases, read and write system calls) measure
// the proxy plus a known floor: the client makes 1 write and 1+ reads per request, the
// origin 1+ reads and 1 write.

import Benchmark
import Foundation
import Logging
import TurnoutControl

#if canImport(Glibc)
import Glibc
#endif

/// The 64-byte-body response the origin sends for every request but `GET /20k`.
private let originResponse = Array(
    ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n"
        + String(repeating: "a", count: 64)).utf8)

/// The response to `GET /20k`: a 20 000-byte body.
private let mediumResponse = Array(
    ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20000\r\n\r\n"
        + String(repeating: "m", count: 20_000)).utf8)
private let mediumPath = Array("GET /20k ".utf8)

/// A blocking loopback origin: one thread per accepted connection, each answering every
/// request head it reads with `originResponse` (`mediumResponse` for `GET /20k`), from
/// buffers set up before the loop.
final class LoopbackOrigin: @unchecked Sendable {
    let port: UInt16
    private let listenFD: Int32

    /// A listening socket on 127.0.0.1 with a port the kernel picked.
    static func bindLoopback(backlog: Int32) -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(bound == 0 && listen(fd, backlog) == 0, "bind/listen on 127.0.0.1 failed")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: addr.sin_port))
    }

    init() {
        (listenFD, port) = LoopbackOrigin.bindLoopback(backlog: 64)
        let fd = listenFD
        Thread {
            while true {
                let conn = accept(fd, nil, nil)
                if conn < 0 { return }
                Thread { LoopbackOrigin.serve(conn) }.start()
            }
        }.start()
    }

    /// Reads request heads (GET, no body) and answers each; returns when the peer closes.
    private static func serve(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let capacity = 16 * 1024
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        defer {
            buffer.deallocate()
            close(fd)
        }
        var filled = 0
        originResponse.withUnsafeBytes { small in mediumResponse.withUnsafeBytes { medium in
            while true {
                let n = read(fd, buffer + filled, capacity - filled)
                if n <= 0 { return }
                filled += n
                // Answer every complete head in the buffer; keep a partial one.
                var start = 0
                var i = 3
                while i < filled {
                    if buffer[i] == 0x0A && buffer[i - 1] == 0x0D && buffer[i - 2] == 0x0A && buffer[i - 3] == 0x0D {
                        let isMedium = i - start >= mediumPath.count
                            && memcmp(buffer + start, mediumPath, mediumPath.count) == 0
                        if !writeAll(fd, isMedium ? medium : small) { return }
                        start = i + 1
                    }
                    i += 1
                }
                if start > 0 {
                    memmove(buffer, buffer + start, filled - start)
                    filled -= start
                }
            }
        } }
    }
}

private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var sent = 0
    while sent < bytes.count {
        let n = write(fd, bytes.baseAddress! + sent, bytes.count - sent)
        if n <= 0 { return false }
        sent += n
    }
    return true
}

/// A Turnout in front of a `LoopbackOrigin`, and two keep-alive client connections to it:
/// one for 64-byte responses, one for 20 KB responses. (The member's size history follows
/// whichever benchmark runs; the warm-up iterations take it there.)
final class LoopbackProxy: @unchecked Sendable {
    let origin = LoopbackOrigin()
    let server: ProxyServer
    private let clientFD: Int32
    private let mediumClientFD: Int32
    private let request = Array("GET /64 HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: bench\r\n\r\n".utf8)
    private let mediumRequest = Array("GET /20k HTTP/1.1\r\nHost: medium.test\r\nUser-Agent: bench\r\n\r\n".utf8)
    private let closeRequest = Array("GET /64 HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n".utf8)
    private let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 64 * 1024)
    /// Bytes of one whole response as the client receives it (learned on the first one).
    private(set) var responseLength = 0
    private(set) var mediumResponseLength = 0

    init() throws {
        let yaml = """
            workers: 1
            listen: [127.0.0.1:\(LoopbackProxy.freePort())]
            pools:
              blue:
                members: [127.0.0.1:\(origin.port)]
            active: blue
            log:
              level: error
              access: off
            """
        let config = try ConfigLoader.parse(yaml: yaml, path: "benchmark.yaml")
        var logger = Logger(label: "turnout.benchmark")
        logger.logLevel = .error
        server = ProxyServer(config: config, logger: logger)
        try server.start()
        clientFD = LoopbackProxy.connectLoopback(port: server.boundPorts[0])
        mediumClientFD = LoopbackProxy.connectLoopback(port: server.boundPorts[0])
        responseLength = learnResponseLength(clientFD, request, bodyLength: 64)
        mediumResponseLength = learnResponseLength(mediumClientFD, mediumRequest, bodyLength: 20_000)
    }

    /// A blocking TCP connection to 127.0.0.1:`port`, with TCP_NODELAY.
    static func connectLoopback(port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(connected == 0, "client: connect to 127.0.0.1:\(port) failed")
        return fd
    }

    /// A port nothing listens on now (the kernel's pick for a socket bound to port 0).
    private static func freePort() -> UInt16 {
        let probe = LoopbackOrigin.bindLoopback(backlog: 1)
        defer { close(probe.fd) }
        return probe.port
    }

    /// Sends one request and reads its head to find where the response ends (setup only).
    private func learnResponseLength(_ fd: Int32, _ request: [UInt8], bodyLength: Int) -> Int {
        request.withUnsafeBytes { precondition(writeAll(fd, $0), "client: write failed") }
        var filled = 0
        while true {
            let n = read(fd, buffer + filled, 64 * 1024 - filled)
            precondition(n > 0, "client: the proxy closed the connection")
            filled += n
            let text = String(decoding: UnsafeBufferPointer(start: buffer, count: filled), as: UTF8.self)
            guard let end = text.range(of: "\r\n\r\n") else { continue }
            let head = text[..<end.lowerBound]
            precondition(head.hasPrefix("HTTP/1.1 200"), "proxy answered: \(head)")
            let total = text.utf8.distance(from: text.startIndex, to: end.upperBound) + bodyLength
            if filled >= total { return total }
        }
    }

    /// One proxied request on a new connection that asks to close: connect, write, read
    /// to the end of the stream, close.
    @inline(never)
    func roundTripOnNewConnection() {
        let fd = LoopbackProxy.connectLoopback(port: server.boundPorts[0])
        closeRequest.withUnsafeBytes { precondition(writeAll(fd, $0), "client: write failed") }
        while read(fd, buffer, 64 * 1024) > 0 {}
        close(fd)
    }

    /// One proxied request: write it, read exactly one whole response.
    @inline(never)
    func roundTrip() {
        roundTrip(clientFD, request, responseLength)
    }

    /// One proxied request for a 20 KB response, on the second connection.
    @inline(never)
    func roundTripMedium() {
        roundTrip(mediumClientFD, mediumRequest, mediumResponseLength)
    }

    private func roundTrip(_ fd: Int32, _ request: [UInt8], _ responseLength: Int) {
        request.withUnsafeBytes { precondition(writeAll(fd, $0), "client: write failed") }
        var filled = 0
        while filled < responseLength {
            let n = read(fd, buffer + filled, responseLength - filled)
            precondition(n > 0, "client: the proxy closed the connection")
            filled += n
        }
    }
}

func makeProxyBenchmarks() {
    let proxy: LoopbackProxy
    do {
        proxy = try LoopbackProxy()
    } catch {
        fatalError("cannot start the loopback proxy: \(error)")
    }
    Benchmark(
        "Proxy: one keep-alive GET through a worker, 64-byte response (in-process loopback)",
        configuration: .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal, .readSyscalls, .writeSyscalls],
            warmupIterations: 2,
            scalingFactor: .kilo,
            maxDuration: .seconds(5),
            maxIterations: 200
        )
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            proxy.roundTrip()
        }
    }
    Benchmark(
        "Proxy: one keep-alive GET through a worker, 20 KB response (in-process loopback)",
        configuration: .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal, .readSyscalls, .writeSyscalls],
            warmupIterations: 2,
            scalingFactor: .kilo,
            maxDuration: .seconds(5),
            maxIterations: 100
        )
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            proxy.roundTripMedium()
        }
    }
    Benchmark(
        "Proxy: one GET on a new client connection (Connection: close), 64-byte response (in-process loopback)",
        configuration: .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal, .readSyscalls, .writeSyscalls],
            warmupIterations: 2,
            scalingFactor: .kilo,
            maxDuration: .seconds(5),
            maxIterations: 100
        )
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            proxy.roundTripOnNewConnection()
        }
    }
}
