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
    // Storage kept from one exchange to the next (emptied, never released, by `reset`).
    var head: HTTPRequestHead
    var response: HTTPResponseHead
    var requestIDBytes: [UInt8]
    /// A copy of a tunnelled request's head (101 or a 2xx to CONNECT): tunnel bytes reuse
    /// the client buffer, and the access-log line is written when the tunnel ends.
    var tunnelHead: [UInt8] = []
    /// Everything else: plain values (no references), so `reset` puts them all back with one
    /// assignment that retains and releases nothing.
    var v: ExchangeValues

    /// `allocated`: with header arrays and a request id buffer (false: the idle sentinel).
    init(maxTrailerBytes: Int, allocated: Bool) {
        head = allocated ? HTTPRequestHead() : .unallocated
        response = allocated ? HTTPResponseHead() : .unallocated
        requestIDBytes = allocated ? [UInt8](repeating: 0x30, count: 32) : []
        v = ExchangeValues(maxTrailerBytes: maxTrailerBytes)
    }

    /// Back to the state of a new connection, keeping the storage.
    mutating func reset() {
        precondition(!v.outBuf.hasMemory && !v.upIn.hasMemory && !v.upOut.hasMemory, "an exchange went back with buffers attached")
        precondition(v.splicePipe == nil, "an exchange went back with a pipe attached")
        head.clear()
        response.clear()
        if !tunnelHead.isEmpty { tunnelHead = [] }
        v = ExchangeValues(maxTrailerBytes: v.requestChunked.maxTrailerBytes)
    }
}

/// The plain-value part of `ExchangeState`: buffers (pointers into pooled memory), parser
/// and decoder states, the routing decision and the accounting of one exchange.
struct ExchangeValues {
    var outBuf = IOBuffer()
    var upIn = IOBuffer()
    var upOut = IOBuffer()

    var scanner = HTTP1HeadScanner()
    /// True once `head` holds this request's successfully parsed head (never a stale one).
    var isHeadParsed = false
    var requestRemaining: Int64 = 0
    var requestChunked = ChunkedDecoder()
    var isRequestReceived = false
    var requestBodySent: Int64 = 0
    /// True once any byte of this attempt's request reached the upstream socket.
    var hasWrittenUpstream = false
    /// Minimum body rate: the current window's start (loop ms) and bytes, and whether
    /// reading is paused by backpressure (then the window restarts when reading resumes).
    /// Paused at first: the body rate is timed from the first body byte (100-continue).
    var rateWindowStart: UInt64 = 0
    var rateWindowBytes: Int64 = 0
    var isRatePaused = true
    var hasRetried = false
    /// The routing decision of the current request.
    var decision = RoutingDecision(poolIndex: 0, reason: .weight)
    var isCountedOutstanding = false

    var responseScanner = HTTP1HeadScanner()
    var responseMode = ResponseBodyMode.none
    var responsePassEnd = 0
    var responseDecodeIndex = 0
    var responseRemaining: Int64 = 0
    var responseChunked = ChunkedDecoder()
    var isResponseReceived = false
    var hasResponseBytes = false
    var hasSentResponseHead = false
    /// A head whose Content-Length body had not come with it: held until the first body
    /// bytes (or the upstream's end), in `outBuf` or, for a spliced body, in the pipe, so
    /// that head and body leave together. Not yet committed: an error replaces it.
    var isHeadWaitingForBody = false
    /// Bytes of `\r\n` still owed after a re-chunked block of data.
    var chunkSuffixPending = 0

    // Accounting for the access log.
    var startNanos: UInt64 = 0
    var bytesIn: Int64 = 0
    var bytesOut: Int64 = 0
    var status = 0
    var errorNote: StaticString = ""
    /// While a large response body is spliced: the pipe it goes through, and how many of
    /// its bytes wait in the pipe for the client.
    var splicePipe: SplicePipe?
    var pipeBytes = 0
    /// True once the worker had no pipe for this response: its body stays in the buffers
    /// instead of asking again at every buffer-full.
    var isSpliceDeclined = false

    init(maxTrailerBytes: Int) {
        requestChunked.maxTrailerBytes = maxTrailerBytes
        responseChunked.maxTrailerBytes = maxTrailerBytes
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
