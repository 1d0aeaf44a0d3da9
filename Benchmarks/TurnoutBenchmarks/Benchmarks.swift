// Parser micro-benchmarks for TurnoutHTTP (routing ones are in RoutingBenchmarks.swift).
//
// Run from the repository root:
//     TURNOUT_BENCHMARKS=1 swift package benchmark
//
// Each benchmark iteration performs `scaledIterations` (1,000) operations on bytes that were
// prepared before measurement starts, so the reported figures are per single parse/decode.
// The goal for every benchmark here is 0 mallocs per operation once the head's arrays have
// grown to size (the warm-up iteration takes care of that).

import Benchmark
import TurnoutHTTP

// MARK: - Fixtures

/// A typical browser request head: 12 header fields, about 500 bytes.
let browserRequestHead =
    "GET /products/12345?ref=home HTTP/1.1\r\n"
    + "Host: shop.example.com\r\n"
    + "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n"
    + "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    + "Accept-Language: en-US,en;q=0.9\r\n"
    + "Accept-Encoding: gzip, deflate, br\r\n"
    + "Connection: keep-alive\r\n"
    + "Cookie: session=3f2a9c1e7b; theme=dark\r\n"
    + "Referer: https://shop.example.com/\r\n"
    + "Upgrade-Insecure-Requests: 1\r\n"
    + "Sec-Fetch-Dest: document\r\n"
    + "Sec-Fetch-Mode: navigate\r\n"
    + "X-Request-Id: 4bf92f3577b34da6\r\n"
    + "\r\n"

/// A typical origin response head: 10 header fields, about 350 bytes.
let originResponseHead =
    "HTTP/1.1 200 OK\r\n"
    + "Server: nginx/1.22.1\r\n"
    + "Date: Tue, 25 Nov 2025 08:30:00 GMT\r\n"
    + "Content-Type: application/json; charset=utf-8\r\n"
    + "Content-Length: 1234\r\n"
    + "Connection: keep-alive\r\n"
    + "Cache-Control: private, max-age=0, must-revalidate\r\n"
    + "ETag: \"5f2b-61a3c8e4d2f00\"\r\n"
    + "Vary: Accept-Encoding\r\n"
    + "X-Content-Type-Options: nosniff\r\n"
    + "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"
    + "\r\n"

/// A 64 KiB body in the chunked coding: 16 chunks of 4 KiB, the last chunk, no trailers.
func makeChunkedBody(total: Int = 65536, chunk: Int = 4096) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(total + (total / chunk) * 8 + 8)
    var left = total
    while left > 0 {
        let n = min(chunk, left)
        bytes.append(contentsOf: Array(String(n, radix: 16).utf8))
        bytes.append(contentsOf: [0x0D, 0x0A])
        for k in 0..<n { bytes.append(UInt8(truncatingIfNeeded: 0x61 + k % 26)) }
        bytes.append(contentsOf: [0x0D, 0x0A])
        left -= n
    }
    bytes.append(contentsOf: Array("0\r\n\r\n".utf8))
    return bytes
}

/// Bytes kept in memory obtained once, outside the measured region, with the parse
/// targets that are reused across iterations (as on a live connection).
final class Fixture: @unchecked Sendable {
    let buffer: UnsafeMutableRawBufferPointer
    var scanner = HTTP1HeadScanner()
    var requestHead = HTTPRequestHead()
    var responseHead = HTTPResponseHead()
    var decoder = ChunkedDecoder()
    let limits = HTTPHeadLimits()

    init(_ bytes: [UInt8]) {
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        buffer.copyBytes(from: bytes)
    }

    deinit { buffer.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(buffer) }

    /// Scan for the end of the head, then parse it as a request. Returns the header count.
    @inline(never)
    func scanAndParseRequest() throws(HTTPParseError) -> Int {
        scanner.reset()
        guard case .complete(let range) = try scanner.scan(bytes, limits: limits) else {
            fatalError("request head incomplete")
        }
        try HTTP1Parser.parseRequest(UnsafeRawBufferPointer(rebasing: bytes[range]), limits: limits, into: &requestHead)
        return requestHead.headers.count
    }

    /// Scan for the end of the head, then parse it as a response to GET.
    @inline(never)
    func scanAndParseResponse() throws(HTTPParseError) -> Int {
        scanner.reset()
        guard case .complete(let range) = try scanner.scan(bytes, limits: limits) else {
            fatalError("response head incomplete")
        }
        try HTTP1Parser.parseResponse(
            UnsafeRawBufferPointer(rebasing: bytes[range]), requestMethod: .get, limits: limits, into: &responseHead)
        return responseHead.headers.count
    }

    /// Decode the whole chunked body. Returns the number of body bytes reported.
    @inline(never)
    func decodeChunked() throws(ChunkedError) -> Int {
        decoder.reset()
        var index = 0
        var total = 0
        while true {
            switch try decoder.decode(bytes, index: &index) {
            case .data(let r): total += r.count
            case .end: return total
            case .needMore: fatalError("chunked body incomplete")
            }
        }
    }
}

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 100_000
    )

    let request = Fixture(Array(browserRequestHead.utf8))
    let response = Fixture(Array(originResponseHead.utf8))
    let chunked = Fixture(makeChunkedBody())

    // Check the fixtures once, so a parser change that rejects them fails loudly here
    // instead of benchmarking an error path.
    precondition((try? request.scanAndParseRequest()) == 12, "request fixture must parse with 12 fields")
    precondition((try? response.scanAndParseResponse()) == 10, "response fixture must parse with 10 fields")
    precondition((try? chunked.decodeChunked()) == 65536, "chunked fixture must decode to 64 KiB")

    Benchmark("HTTP1 request head: scan+parse (\(browserRequestHead.utf8.count) B, 12 fields)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? request.scanAndParseRequest())
        }
    }

    Benchmark("HTTP1 response head: scan+parse (\(originResponseHead.utf8.count) B, 10 fields)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? response.scanAndParseResponse())
        }
    }

    Benchmark("Chunked decode: 64 KiB body, 16 x 4 KiB chunks") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? chunked.decodeChunked())
        }
    }

    makeRoutingBenchmarks()
    makeProxyBenchmarks()

    // Control: proves the malloc counter is live (expect exactly 1 malloc per operation),
    // so the zeros above mean "no allocation" and not "not measured".
    Benchmark("Control: one 64-byte Array allocation") { benchmark in
        for i in benchmark.scaledIterations {
            blackHole([UInt8](repeating: UInt8(truncatingIfNeeded: i), count: 64))
        }
    }
}
