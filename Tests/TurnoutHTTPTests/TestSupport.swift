import TurnoutHTTP

// Shared helpers for the codec tests: run the parsers over Swift strings / byte arrays and
// turn spans back into strings so expectations read naturally.

func utf8(_ s: String) -> [UInt8] { Array(s.utf8) }

func text(_ bytes: [UInt8], _ span: Span) -> String {
    String(decoding: bytes[span.range], as: UTF8.self)
}

func text(_ bytes: [UInt8], _ range: Range<Int>) -> String {
    String(decoding: bytes[range], as: UTF8.self)
}

// MARK: - Request / response parsing

struct ParsedRequest {
    var bytes: [UInt8]
    var head: HTTPRequestHead

    var method: String { text(bytes, head.methodSpan) }
    var target: String { text(bytes, head.targetSpan) }
    var names: [String] { head.headers.map { text(bytes, $0.name) } }
    var values: [String] { head.headers.map { text(bytes, $0.value) } }

    func field(_ name: String) -> HTTPHeaderField? {
        head.headers.first { text(bytes, $0.name).lowercased() == name.lowercased() }
    }

    func value(_ name: String) -> String? { field(name).map { text(bytes, $0.value) } }
}

struct ParsedResponse {
    var bytes: [UInt8]
    var head: HTTPResponseHead

    var reason: String { text(bytes, head.reasonSpan) }
    func value(_ name: String) -> String? {
        head.headers.first { text(bytes, $0.name).lowercased() == name.lowercased() }.map { text(bytes, $0.value) }
    }
}

func parseRequest(_ raw: [UInt8], limits: HTTPHeadLimits = HTTPHeadLimits()) -> Result<ParsedRequest, HTTPParseError> {
    var head = HTTPRequestHead()
    let outcome: Result<Void, HTTPParseError> = raw.withUnsafeBytes { buffer in
        do throws(HTTPParseError) {
            try HTTP1Parser.parseRequest(buffer, limits: limits, into: &head)
            return .success(())
        } catch {
            return .failure(error)
        }
    }
    return outcome.map { ParsedRequest(bytes: raw, head: head) }
}

func parseRequest(_ raw: String, limits: HTTPHeadLimits = HTTPHeadLimits()) -> Result<ParsedRequest, HTTPParseError> {
    parseRequest(utf8(raw), limits: limits)
}

func parseResponse(
    _ raw: [UInt8], requestMethod: HTTPMethod = .get, limits: HTTPHeadLimits = HTTPHeadLimits()
) -> Result<ParsedResponse, HTTPParseError> {
    var head = HTTPResponseHead()
    let outcome: Result<Void, HTTPParseError> = raw.withUnsafeBytes { buffer in
        do throws(HTTPParseError) {
            try HTTP1Parser.parseResponse(buffer, requestMethod: requestMethod, limits: limits, into: &head)
            return .success(())
        } catch {
            return .failure(error)
        }
    }
    return outcome.map { ParsedResponse(bytes: raw, head: head) }
}

func parseResponse(
    _ raw: String, requestMethod: HTTPMethod = .get, limits: HTTPHeadLimits = HTTPHeadLimits()
) -> Result<ParsedResponse, HTTPParseError> {
    parseResponse(utf8(raw), requestMethod: requestMethod, limits: limits)
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

// MARK: - Head scanning

/// Scans `raw` as one buffer.
func scanWhole(_ raw: [UInt8], limits: HTTPHeadLimits = HTTPHeadLimits()) -> Result<HTTP1HeadScanner.Result, HTTPParseError> {
    var scanner = HTTP1HeadScanner()
    return scanPrefix(raw, raw.count, with: &scanner, limits: limits)
}

/// Scans `raw` as a buffer that grows `step` bytes per feed (same storage, more appended),
/// stopping at the first complete head or error.
func scanIncrementally(
    _ raw: [UInt8], step: Int = 1, limits: HTTPHeadLimits = HTTPHeadLimits()
) -> Result<HTTP1HeadScanner.Result, HTTPParseError> {
    var scanner = HTTP1HeadScanner()
    var fed = 0
    var last: Result<HTTP1HeadScanner.Result, HTTPParseError> = .success(.incomplete)
    while fed < raw.count {
        fed = min(raw.count, fed + step)
        last = scanPrefix(raw, fed, with: &scanner, limits: limits)
        if case .success(.incomplete) = last { continue }
        return last
    }
    return last
}

func scanPrefix(
    _ raw: [UInt8], _ count: Int, with scanner: inout HTTP1HeadScanner, limits: HTTPHeadLimits
) -> Result<HTTP1HeadScanner.Result, HTTPParseError> {
    raw.withUnsafeBytes { all in
        let buffer = UnsafeRawBufferPointer(rebasing: all[0..<count])
        do throws(HTTPParseError) {
            return .success(try scanner.scan(buffer, limits: limits))
        } catch {
            return .failure(error)
        }
    }
}

// MARK: - Chunked decoding

struct ChunkedOutcome: Equatable {
    /// Decoded body bytes, concatenated.
    var body: [UInt8]
    /// Whether `.end` was reached.
    var ended: Bool
    /// Offset into the whole input just past what the decoder consumed.
    var consumed: Int
    var error: ChunkedError?
}

/// Decodes `raw` fed as separate buffers cut at `cuts` (offsets into `raw`, ascending).
/// Each piece is its own buffer with indices starting at 0, as a connection would see reads.
func decodeChunked(
    _ raw: [UInt8], cuts: [Int] = [], configure: (inout ChunkedDecoder) -> Void = { _ in }
) -> ChunkedOutcome {
    var decoder = ChunkedDecoder()
    configure(&decoder)
    var outcome = ChunkedOutcome(body: [], ended: false, consumed: 0, error: nil)
    let bounds = [0] + cuts + [raw.count]
    for k in 0..<(bounds.count - 1) {
        let piece = Array(raw[bounds[k]..<bounds[k + 1]])
        var index = 0
        var finished = false
        piece.withUnsafeBytes { buffer in
            while true {
                do throws(ChunkedError) {
                    let event = try decoder.decode(buffer, index: &index)
                    switch event {
                    case .data(let range):
                        outcome.body += piece[range]
                    case .needMore:
                        precondition(index == piece.count, "needMore before consuming the buffer")
                        return
                    case .end:
                        outcome.ended = true
                        finished = true
                        return
                    }
                } catch {
                    outcome.error = error
                    finished = true
                    return
                }
            }
        }
        outcome.consumed = bounds[k] + index
        if finished { break }
    }
    return outcome
}

/// One `decode` call on `raw` from `index`.
func decodeStep(
    _ decoder: inout ChunkedDecoder, _ raw: [UInt8], _ index: inout Int
) throws(ChunkedError) -> ChunkedDecoder.Event {
    let outcome: Result<ChunkedDecoder.Event, ChunkedError> = raw.withUnsafeBytes { buffer in
        do throws(ChunkedError) {
            return .success(try decoder.decode(buffer, index: &index))
        } catch {
            return .failure(error)
        }
    }
    return try outcome.get()
}
