// libFuzzer entry point for the request-head parser and the chunked decoder.
//
// Built only on request (see `make fuzz`): the target joins the package when
// TURNOUT_FUZZ is set and is compiled with -sanitize=fuzzer,address.
//
// Each input is split at its first byte: even → a request head (scanner + parser),
// odd → a chunked body. Besides "never crash", it checks invariants:
// - scanning the input in one piece and byte by byte gives the same verdict;
// - a parsed head has spans inside the input and never both a length and chunked;
// - the chunked decoder's data ranges lie inside the input, in order, and the same
//   body fed in random splits decodes to the same bytes and the same verdict.

import TurnoutHTTP

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    if data[0] & 1 == 0 {
        fuzzRequestHead(input)
    } else {
        fuzzChunked(input, splitSeed: data[0])
    }
    return 0
}

private let limits = HTTPHeadLimits(maxStartLineBytes: 1024, maxHeadBytes: 4096, maxHeaderCount: 32)

private enum Verdict: Equatable {
    case incomplete
    case complete(Range<Int>)
    case refused(HTTPParseError)
}

private func scanWhole(_ input: UnsafeRawBufferPointer) -> Verdict {
    var scanner = HTTP1HeadScanner()
    do {
        switch try scanner.scan(input, limits: limits) {
        case .incomplete: return .incomplete
        case .complete(let r): return .complete(r)
        }
    } catch {
        return .refused(error)
    }
}

private func scanByteByByte(_ input: UnsafeRawBufferPointer) -> Verdict {
    var scanner = HTTP1HeadScanner()
    var n = 1
    while n <= input.count {
        do {
            if case .complete(let r) = try scanner.scan(UnsafeRawBufferPointer(rebasing: input[0..<n]), limits: limits) {
                return .complete(r)
            }
        } catch {
            return .refused(error)
        }
        n += 1
    }
    return .incomplete
}

private func fuzzRequestHead(_ input: UnsafeRawBufferPointer) {
    let whole = scanWhole(input)
    let piecewise = scanByteByByte(input)
    precondition(whole == piecewise, "scanner verdict depends on how bytes arrive: \(whole) vs \(piecewise)")
    guard case .complete(let range) = whole else { return }
    precondition(range.lowerBound >= 0 && range.upperBound <= input.count, "head range outside the input")
    var head = HTTPRequestHead()
    let bytes = UnsafeRawBufferPointer(rebasing: input[range])
    do {
        try HTTP1Parser.parseRequest(bytes, limits: limits, into: &head)
    } catch {
        return
    }
    let n = bytes.count
    for span in [head.methodSpan, head.targetSpan] + head.headers.flatMap({ [$0.name, $0.value] }) {
        precondition(span.start >= 0 && span.end >= span.start && Int(span.end) <= n, "span outside the head")
    }
    var sawLength = false
    var sawTE = false
    for f in head.headers {
        if f.kind == .contentLength { sawLength = true }
        if f.kind == .transferEncoding { sawTE = true }
    }
    precondition(!(sawLength && sawTE), "a head with both Content-Length and Transfer-Encoding was accepted")
    if case .chunked = head.framing { precondition(sawTE && head.version == .http11, "chunked without TE in 1.1") }
    if case .contentLength(let len) = head.framing { precondition(sawLength && len >= 0, "length framing without a valid Content-Length") }
    if head.method == .connect { precondition(!head.targetSpan.range.isEmpty, "empty CONNECT target") }
}

private enum Decoded: Equatable {
    case done([UInt8], Int)
    case needMore([UInt8])
    case refused(ChunkedError)
}

/// Decodes `input` fed in pieces whose sizes come from `seed` (0: all at once).
private func decode(_ input: UnsafeRawBufferPointer, seed: UInt8) -> Decoded {
    var decoder = ChunkedDecoder()
    decoder.maxTrailerBytes = 1024
    var body: [UInt8] = []
    var index = 0
    var available = 0
    var step = UInt32(seed) | 1
    while available < input.count {
        step = step &* 1_103_515_245 &+ 12345
        available = seed == 0 ? input.count : min(input.count, available + 1 + Int(step >> 16) % 7)
        let window = UnsafeRawBufferPointer(rebasing: input[0..<available])
        do {
            decoding: while index < available {
                let before = index
                switch try decoder.decode(window, index: &index) {
                case .data(let r):
                    precondition(r.lowerBound >= before && r.upperBound <= available && r.lowerBound < r.upperBound, "data range out of order")
                    body += window[r]
                case .needMore:
                    break decoding
                case .end:
                    return .done(body, index)
                }
                precondition(index > before || index == available, "the decoder made no progress")
            }
        } catch {
            return .refused(error)
        }
    }
    return .needMore(body)
}

private func fuzzChunked(_ input: UnsafeRawBufferPointer, splitSeed: UInt8) {
    let whole = decode(input, seed: 0)
    let pieces = decode(input, seed: splitSeed)
    switch (whole, pieces) {
    case (.refused, .refused), (.done, .done), (.needMore, .needMore):
        precondition(whole == pieces || isRefused(whole), "chunked result depends on how bytes arrive: \(whole) vs \(pieces)")
    default:
        preconditionFailure("chunked verdict depends on how bytes arrive: \(whole) vs \(pieces)")
    }
}

private func isRefused(_ d: Decoded) -> Bool {
    if case .refused = d { return true }
    return false
}
