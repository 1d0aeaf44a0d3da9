#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds the end of a message head as bytes arrive, without re-reading what it has seen.
///
/// It enforces the line-ending policy (every LF must follow a CR: bare LF is refused)
/// and the size limits before the head is complete, so a client cannot make the proxy
/// buffer more than `maxHeadBytes` while it waits for the blank line.
/// Offsets are relative to the start of the buffer passed to `scan`, which must be the
/// same bytes (possibly with more appended) on every call until `reset()`.
public struct HTTP1HeadScanner: Sendable {
    /// Offset of the first byte not examined yet.
    private var position = 0
    /// Offset of the first byte of the current line.
    private var lineStart = 0
    /// Bytes of empty lines before the start line (RFC 9112 §2.2 allows ignoring them).
    private var leading = 0
    private var sawStartLine = false

    /// What the scan found.
    public enum Result: Equatable, Sendable {
        /// No complete head yet; read more.
        case incomplete
        /// The head occupies `range` of the buffer (empty leading lines excluded).
        case complete(Range<Int>)
    }

    public init() {}

    /// Forget everything: the next `scan` starts a new head.
    public mutating func reset() {
        self = HTTP1HeadScanner()
    }

    /// Scans the newly arrived bytes of `buffer` for the blank line that ends the head.
    public mutating func scan(_ buffer: UnsafeRawBufferPointer, limits: HTTPHeadLimits) throws(HTTPParseError) -> Result {
        let count = buffer.count
        guard let base = buffer.baseAddress, count > position else {
            return .incomplete
        }
        var i = position
        while i < count {
            guard let found = memchr(base + i, 0x0A, count - i) else {
                i = count
                break
            }
            let lf = base.distance(to: UnsafeRawPointer(found))
            // Refuse what a scan of fewer bytes would have refused before this LF arrived,
            // so the verdict never depends on how the bytes were split into reads.
            let endsWithCR = lf > 0 && buffer[lf - 1] == 0x0D
            if !sawStartLine && lf - lineStart - (endsWithCR ? 1 : 0) > limits.maxStartLineBytes {
                throw .requestLineTooLong
            }
            if lf - leading > limits.maxHeadBytes { throw .headerSectionTooLarge }
            if !endsWithCR {
                throw .bareLineFeed
            }
            let lineEnd = lf - 1
            if !sawStartLine {
                if lineEnd == lineStart {
                    // An empty line before the start line: tolerated a few times, then refused.
                    leading = lf + 1
                    lineStart = lf + 1
                    i = lf + 1
                    if leading > 8 { throw .invalidMethod }
                    continue
                }
                if lineEnd - lineStart > limits.maxStartLineBytes { throw .requestLineTooLong }
                sawStartLine = true
            } else if lineEnd == lineStart {
                let end = lf + 1
                if end - leading > limits.maxHeadBytes { throw .headerSectionTooLarge }
                position = end
                return .complete(leading..<end)
            }
            lineStart = lf + 1
            i = lf + 1
            if i - leading > limits.maxHeadBytes { throw .headerSectionTooLarge }
        }
        position = i
        if !sawStartLine {
            // A CR at the end may be the first half of the CRLF: it is not part of the line.
            let pending = count - lineStart - (buffer[count - 1] == 0x0D ? 1 : 0)
            if pending > limits.maxStartLineBytes { throw .requestLineTooLong }
        }
        if count - leading > limits.maxHeadBytes { throw .headerSectionTooLarge }
        return .incomplete
    }
}
