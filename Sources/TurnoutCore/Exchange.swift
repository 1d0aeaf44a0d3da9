import TurnoutHTTP
import TurnoutRouting

/// The state of one request/response exchange on a client connection: everything a
/// connection needs only while it carries a request. Connections borrow it from their
/// worker's `ExchangePool` at a request's first byte and give it back when they are idle
/// again, so an idle keep-alive connection stays small and steady-state proxying
/// allocates nothing (the header arrays and request id buffer are reused).
///
/// Loop-thread only. Field meanings are documented on `ClientConnection`.
struct ExchangeState {
    var outBuf = IOBuffer()
    var upIn = IOBuffer()
    var upOut = IOBuffer()

    var scanner = HTTP1HeadScanner()
    /// True once `head` holds this request's successfully parsed head (never a stale one).
    var isHeadParsed = false
    var head: HTTPRequestHead
    var requestRemaining: Int64 = 0
    var requestChunked = ChunkedDecoder()
    var isRequestReceived = false
    var requestBodySent: Int64 = 0
    /// True once any byte of this attempt's request reached the upstream socket.
    var hasWrittenUpstream = false
    /// Minimum body rate: the current window's start (loop ms) and bytes, and whether
    /// reading is paused by backpressure (then the window restarts when reading resumes).
    var rateWindowStart: UInt64 = 0
    var rateWindowBytes: Int64 = 0
    var isRatePaused = false
    var requestIDBytes: [UInt8]
    var hasRetried = false
    /// The routing decision of the current request.
    var decision = RoutingDecision(poolIndex: 0, reason: .weight)
    var isCountedOutstanding = false

    var responseScanner = HTTP1HeadScanner()
    var response: HTTPResponseHead
    var responseMode = ResponseBodyMode.none
    var responsePassEnd = 0
    var responseDecodeIndex = 0
    var responseRemaining: Int64 = 0
    var responseChunked = ChunkedDecoder()
    var isResponseReceived = false
    var hasResponseBytes = false
    var hasSentResponseHead = false
    /// Bytes of `\r\n` still owed after a re-chunked block of data.
    var chunkSuffixPending = 0

    // Accounting for the access log.
    var startNanos: UInt64 = 0
    var bytesIn: Int64 = 0
    var bytesOut: Int64 = 0
    var status = 0
    var errorNote: StaticString = ""
    /// A copy of a tunnelled request's head (101 or a 2xx to CONNECT): tunnel bytes reuse
    /// the client buffer, and the access-log line is written when the tunnel ends.
    var tunnelHead: [UInt8] = []
    /// While a large response body is spliced: the pipe it goes through, and how many of
    /// its bytes wait in the pipe for the client.
    var splicePipe: SplicePipe?
    var pipeBytes = 0

    /// `allocated`: with header arrays and a request id buffer (false: the idle sentinel).
    init(maxTrailerBytes: Int, allocated: Bool) {
        head = allocated ? HTTPRequestHead() : .unallocated
        response = allocated ? HTTPResponseHead() : .unallocated
        requestIDBytes = allocated ? [UInt8](repeating: 0x30, count: 32) : []
        requestChunked.maxTrailerBytes = maxTrailerBytes
        responseChunked.maxTrailerBytes = maxTrailerBytes
        // Wait for the first body byte before timing the body rate (100-continue).
        isRatePaused = true
    }

    /// Back to the state of a new connection, keeping the storage.
    mutating func reset() {
        precondition(!outBuf.hasMemory && !upIn.hasMemory && !upOut.hasMemory, "an exchange went back with buffers attached")
        precondition(splicePipe == nil, "an exchange went back with a pipe attached")
        var fresh = ExchangeState(maxTrailerBytes: requestChunked.maxTrailerBytes, allocated: false)
        swap(&fresh.head, &head)
        swap(&fresh.response, &response)
        swap(&fresh.requestIDBytes, &requestIDBytes)
        fresh.head.clear()
        fresh.response.clear()
        self = fresh
    }
}

/// Exchange state lent to a worker's connections. Owned by one worker thread.
final class ExchangePool {
    /// What idle connections point at: never lent, holds no storage. Code that runs for
    /// an idle connection may read it but must not change it.
    let idle: UnsafeMutablePointer<ExchangeState>
    private var free: [UnsafeMutablePointer<ExchangeState>] = []
    private let maxTrailerBytes: Int
    /// States kept for reuse; the rest are freed.
    let maxFree: Int

    init(maxTrailerBytes: Int, maxFree: Int = 256) {
        self.maxTrailerBytes = maxTrailerBytes
        self.maxFree = maxFree
        idle = .allocate(capacity: 1)
        idle.initialize(to: ExchangeState(maxTrailerBytes: maxTrailerBytes, allocated: false))
        free.reserveCapacity(maxFree)
    }

    deinit {
        for p in free + [idle] {
            p.deinitialize(count: 1)
            p.deallocate()
        }
    }

    func take() -> UnsafeMutablePointer<ExchangeState> {
        if let p = free.popLast() { return p }
        let p = UnsafeMutablePointer<ExchangeState>.allocate(capacity: 1)
        p.initialize(to: ExchangeState(maxTrailerBytes: maxTrailerBytes, allocated: true))
        return p
    }

    func give(_ p: UnsafeMutablePointer<ExchangeState>) {
        precondition(p != idle, "the idle sentinel is never given back")
        p.pointee.reset()
        if free.count < maxFree {
            free.append(p)
        } else {
            p.deinitialize(count: 1)
            p.deallocate()
        }
    }
}
