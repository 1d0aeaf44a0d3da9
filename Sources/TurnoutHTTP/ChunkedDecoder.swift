/// Why a chunked body was refused.
public enum ChunkedError: Error, Equatable, Sendable {
    case invalidChunkSize
    case chunkSizeTooLarge
    case invalidExtension
    case extensionTooLong
    case missingCRLF
    case invalidTrailer
    case trailerTooLarge
}

/// Incremental, strict decoder of the chunked transfer coding (RFC 9112 §7.1).
///
/// Feed it bytes as they arrive; it reports body data as ranges of the buffer it was
/// given (no copy) and says where the message ends. Because it validates every framing
/// byte, the raw input up to the end can also be forwarded as it is.
public struct ChunkedDecoder: Sendable {
    enum State: Sendable {
        case size
        case sizeBWS
        case extensionName
        case extensionNameBWS
        case extensionValueStart
        case extensionToken
        case extensionQuoted
        case extensionQuotedEscape
        case extensionAfterValue
        case sizeLF
        case data
        case dataCR
        case dataLF
        case trailerLineStart
        case trailerName
        case trailerValue
        case trailerLF
        case finalLF
        case done
    }

    /// What `decode` found next.
    public enum Event: Equatable, Sendable {
        /// Body bytes at this range of the buffer.
        case data(Range<Int>)
        /// Everything given was consumed; more input is needed.
        case needMore
        /// The message ended; the final CRLF was consumed.
        case end
    }

    var state = State.size
    var remaining: UInt64 = 0
    var sizeDigits = 0
    var extensionBytes = 0
    var trailerBytes = 0
    var sawNameByte = false
    /// The largest chunk size accepted.
    public var maxChunkSize: UInt64 = 1 << 62
    /// The longest chunk extension accepted, in bytes.
    public var maxExtensionBytes = 4096
    /// The largest trailer section accepted, in bytes.
    public var maxTrailerBytes = 16384

    public init() {}

    /// True once the last chunk and the trailer section have been read.
    public var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// Body bytes still expected in the current chunk (0 between chunks).
    public var remainingInChunk: UInt64 { remaining }

    public mutating func reset() {
        let (a, b, c) = (maxChunkSize, maxExtensionBytes, maxTrailerBytes)
        self = ChunkedDecoder()
        maxChunkSize = a
        maxExtensionBytes = b
        maxTrailerBytes = c
    }

    /// Decodes from `index` onwards, advancing it past what was consumed.
    public mutating func decode(_ buffer: UnsafeRawBufferPointer, index: inout Int) throws(ChunkedError) -> Event {
        let n = buffer.count
        var i = index
        defer { index = i }
        while i < n {
            let b = buffer[i]
            switch state {
            case .size:
                if let v = HTTPBytes.hexValue(b) {
                    if remaining > (maxChunkSize >> 4) { throw .chunkSizeTooLarge }
                    remaining = remaining << 4 | UInt64(v)
                    if remaining > maxChunkSize { throw .chunkSizeTooLarge }
                    sizeDigits += 1
                    i += 1
                    continue
                }
                guard sizeDigits > 0 else { throw .invalidChunkSize }
                switch b {
                case 0x0D: state = .sizeLF
                case 0x3B: state = .extensionName; sawNameByte = false; extensionBytes = 0
                case 0x20, 0x09: state = .sizeBWS
                default: throw .invalidChunkSize
                }
                i += 1
            case .sizeBWS:
                switch b {
                case 0x20, 0x09: break
                case 0x3B: state = .extensionName; sawNameByte = false; extensionBytes = 0
                case 0x0D: state = .sizeLF
                default: throw .invalidChunkSize
                }
                i += 1
            case .extensionName:
                try countExtensionByte()
                if HTTPBytes.isTokenChar(b) {
                    sawNameByte = true
                } else if (b == 0x20 || b == 0x09) && !sawNameByte {
                    // BWS before the name
                } else {
                    guard sawNameByte else { throw .invalidExtension }
                    switch b {
                    case 0x3D: state = .extensionValueStart
                    case 0x3B: sawNameByte = false
                    case 0x0D: state = .sizeLF
                    case 0x20, 0x09: state = .extensionNameBWS
                    default: throw .invalidExtension
                    }
                }
                i += 1
            case .extensionNameBWS:
                try countExtensionByte()
                switch b {
                case 0x20, 0x09: break
                case 0x3D: state = .extensionValueStart
                case 0x3B: state = .extensionName; sawNameByte = false
                case 0x0D: state = .sizeLF
                default: throw .invalidExtension
                }
                i += 1
            case .extensionValueStart:
                try countExtensionByte()
                if b == 0x22 {
                    state = .extensionQuoted
                } else if HTTPBytes.isTokenChar(b) {
                    state = .extensionToken
                } else if b != 0x20 && b != 0x09 {
                    throw .invalidExtension
                }
                i += 1
            case .extensionToken:
                try countExtensionByte()
                if !HTTPBytes.isTokenChar(b) {
                    switch b {
                    case 0x3B: state = .extensionName; sawNameByte = false
                    case 0x0D: state = .sizeLF
                    case 0x20, 0x09: state = .extensionAfterValue
                    default: throw .invalidExtension
                    }
                }
                i += 1
            case .extensionQuoted:
                try countExtensionByte()
                switch b {
                case 0x22: state = .extensionAfterValue
                case 0x5C: state = .extensionQuotedEscape
                default:
                    guard HTTPBytes.isFieldValueChar(b) else { throw .invalidExtension }
                }
                i += 1
            case .extensionQuotedEscape:
                try countExtensionByte()
                guard HTTPBytes.isFieldValueChar(b) else { throw .invalidExtension }
                state = .extensionQuoted
                i += 1
            case .extensionAfterValue:
                try countExtensionByte()
                switch b {
                case 0x20, 0x09: break
                case 0x3B: state = .extensionName; sawNameByte = false
                case 0x0D: state = .sizeLF
                default: throw .invalidExtension
                }
                i += 1
            case .sizeLF:
                guard b == 0x0A else { throw .missingCRLF }
                i += 1
                if remaining == 0 {
                    state = .trailerLineStart
                    trailerBytes = 0
                } else {
                    state = .data
                }
            case .data:
                let available = UInt64(n - i)
                let take = Int(min(available, remaining))
                let start = i
                i += take
                remaining -= UInt64(take)
                if remaining == 0 { state = .dataCR }
                return .data(start..<i)
            case .dataCR:
                guard b == 0x0D else { throw .missingCRLF }
                state = .dataLF
                i += 1
            case .dataLF:
                guard b == 0x0A else { throw .missingCRLF }
                state = .size
                sizeDigits = 0
                remaining = 0
                i += 1
            case .trailerLineStart:
                if b == 0x0D {
                    state = .finalLF
                } else if HTTPBytes.isTokenChar(b) {
                    state = .trailerName
                } else {
                    throw .invalidTrailer
                }
                try countTrailerByte()
                i += 1
            case .trailerName:
                try countTrailerByte()
                if b == 0x3A {
                    state = .trailerValue
                } else if !HTTPBytes.isTokenChar(b) {
                    throw .invalidTrailer
                }
                i += 1
            case .trailerValue:
                try countTrailerByte()
                if b == 0x0D {
                    state = .trailerLF
                } else if !HTTPBytes.isFieldValueChar(b) {
                    throw .invalidTrailer
                }
                i += 1
            case .trailerLF:
                try countTrailerByte()
                guard b == 0x0A else { throw .missingCRLF }
                state = .trailerLineStart
                i += 1
            case .finalLF:
                guard b == 0x0A else { throw .missingCRLF }
                state = .done
                i += 1
                return .end
            case .done:
                return .end
            }
        }
        if case .done = state { return .end }
        return .needMore
    }

    @inline(__always)
    private mutating func countExtensionByte() throws(ChunkedError) {
        extensionBytes += 1
        if extensionBytes > maxExtensionBytes { throw .extensionTooLong }
    }

    @inline(__always)
    private mutating func countTrailerByte() throws(ChunkedError) {
        trailerBytes += 1
        if trailerBytes > maxTrailerBytes { throw .trailerTooLarge }
    }
}
