import CTurnoutSys
import TurnoutHTTP
import TurnoutRouting
#if canImport(Glibc)
import Glibc
#endif

// One downstream connection and the exchange it is in. The connection drives two
// relays: request bytes client → upstream and response bytes upstream → client. Each
// relay moves bytes from a source buffer to its destination with at most one
// buffer's worth in flight: when the destination would block, the source is not read
// (backpressure), so memory per connection stays bounded whatever the body size.
//
// Buffer layout:
//   inBuf   client bytes. [headStart, readIndex) is the current request head, kept
//           until the exchange ends (for a retry and the access log);
//           [readIndex, requestPassEnd) is validated body ready for upstream;
//           the rest is unvalidated body or the next pipelined request.
//   upOut   bytes the proxy generated for upstream (the rewritten request head).
//   upIn    upstream bytes. [readIndex, responsePassEnd) may go to the client as is.
//   outBuf  bytes the proxy generated for the client (response heads, chunk framing,
//           error responses). Always written before the pass-through region.
//
// All state is owned by the worker's loop thread.

/// What the request side of the exchange is doing.
enum RequestPhase {
    /// Keep-alive: waiting for the first byte of a request.
    case idle
    /// Reading a request head.
    case head
    /// Forwarding a body.
    case body
    /// The whole request is forwarded.
    case done
    /// Bytes are tunneled after a 101 response.
    case tunnel
}

/// What the response side of the exchange is doing.
enum ResponsePhase {
    case none
    case connecting
    case waitingHead
    case body
    case done
    case tunnel
}

/// How response body bytes reach the client.
enum ResponseBodyMode {
    case none
    case length
    /// Validated chunked bytes forwarded as they are.
    case chunkedPass
    /// Chunked from upstream, raw and delimited by close for an HTTP/1.0 client.
    case chunkedToClose
    /// Delimited by close from upstream, chunked for an HTTP/1.1 client.
    case closeToChunked
    /// Delimited by close on both sides.
    case closePass
}

final class ClientConnection: EventHandler {
    /// Strong references, so that calls on them borrow a stored `let` of the connection:
    /// through an `unowned(unsafe)` worker, and through the worker's own fields, every call
    /// retained and released its target. No cycle outlives the connection: the worker
    /// closes every connection when it stops, and a closed one is dropped by the loop.
    let worker: Worker
    let loop: EventLoop
    let buffers: BufferPool
    let exchanges: ExchangePool
    /// The client's IP as text bytes (for X-Forwarded-For and the log).
    let clientIP: IPAddressText
    let clientPort: UInt16
    let clientAddress: IPAddress
    /// `CohortHash.bucket(of: clientAddress)`, computed by the first request routed by a table
    /// that can place a request by its address (one without a bucket cookie).
    private var clientBucket: UInt32?
    /// The client socket's byte stream (plain TCP; TLS slots in here).
    let transport = Transport.plain

    // Readiness (edge-triggered: set by events, cleared on EAGAIN).
    private var isReadable = false
    private var isWritable = true
    private var sawEOF = false
    /// The last event reported the peer's FIN (or an error): a short read no longer
    /// proves the socket is drained, so the next read must still go ahead.
    private var hasPendingEOF = false
    private var isLingering = false
    private var isClosed = false
    /// The last request had a body and, with its head, was more than one buffer (a chunked
    /// one by the size it reached when it ended): the next request is read into a large
    /// block, so that a body of that size comes in one read and goes to the upstream in
    /// one send (a 20 KB upload took two of each through one buffer).
    private var expectsLargeRequest = false

    // Connection state: what an idle keep-alive connection holds.
    private var inBuf = IOBuffer()
    private var headStart = 0
    private var requestPhase = RequestPhase.idle
    private var requestPassEnd = 0
    private var responsePhase = ResponsePhase.none
    private var closeAfterResponse = false
    /// The last response bytes went with `MSG_MORE`: the kernel may still hold them back
    /// for the FIN (see `writeClient`).
    private var isTailHeld = false
    private var upstream: UpstreamConnection?
    private var pool: PoolState?
    private var member: MemberState?

    /// The exchange under way: buffers, parsed heads, decoders, routing decision and
    /// accounting. Lent by the worker's `ExchangePool` from a request's first byte until
    /// the connection is idle again; while idle it points at the pool's empty sentinel,
    /// so an idle connection holds none of this (see `attachExchange`).
    private var ex: UnsafeMutablePointer<ExchangeState>

    private var outBuf: IOBuffer {
        _read { yield ex.pointee.v.outBuf }
        _modify { yield &ex.pointee.v.outBuf }
    }
    private var upIn: IOBuffer {
        _read { yield ex.pointee.v.upIn }
        _modify { yield &ex.pointee.v.upIn }
    }
    private var upOut: IOBuffer {
        _read { yield ex.pointee.v.upOut }
        _modify { yield &ex.pointee.v.upOut }
    }
    private var scanner: HTTP1HeadScanner {
        _read { yield ex.pointee.v.scanner }
        _modify { yield &ex.pointee.v.scanner }
    }
    private var isHeadParsed: Bool {
        _read { yield ex.pointee.v.isHeadParsed }
        _modify { yield &ex.pointee.v.isHeadParsed }
    }
    private var head: HTTPRequestHead {
        _read { yield ex.pointee.head }
        _modify { yield &ex.pointee.head }
    }
    private var requestRemaining: Int64 {
        _read { yield ex.pointee.v.requestRemaining }
        _modify { yield &ex.pointee.v.requestRemaining }
    }
    private var requestChunked: ChunkedDecoder {
        _read { yield ex.pointee.v.requestChunked }
        _modify { yield &ex.pointee.v.requestChunked }
    }
    private var isRequestReceived: Bool {
        _read { yield ex.pointee.v.isRequestReceived }
        _modify { yield &ex.pointee.v.isRequestReceived }
    }
    private var requestBodySent: Int64 {
        _read { yield ex.pointee.v.requestBodySent }
        _modify { yield &ex.pointee.v.requestBodySent }
    }
    private var hasWrittenUpstream: Bool {
        _read { yield ex.pointee.v.hasWrittenUpstream }
        _modify { yield &ex.pointee.v.hasWrittenUpstream }
    }
    private var rateWindowStart: UInt64 {
        _read { yield ex.pointee.v.rateWindowStart }
        _modify { yield &ex.pointee.v.rateWindowStart }
    }
    private var rateWindowBytes: Int64 {
        _read { yield ex.pointee.v.rateWindowBytes }
        _modify { yield &ex.pointee.v.rateWindowBytes }
    }
    private var isRatePaused: Bool {
        _read { yield ex.pointee.v.isRatePaused }
        _modify { yield &ex.pointee.v.isRatePaused }
    }
    private var requestIDBytes: [UInt8] {
        _read { yield ex.pointee.requestIDBytes }
        _modify { yield &ex.pointee.requestIDBytes }
    }
    private var hasRetried: Bool {
        _read { yield ex.pointee.v.hasRetried }
        _modify { yield &ex.pointee.v.hasRetried }
    }
    private var decision: RoutingDecision {
        _read { yield ex.pointee.v.decision }
        _modify { yield &ex.pointee.v.decision }
    }
    private var isCountedOutstanding: Bool {
        _read { yield ex.pointee.v.isCountedOutstanding }
        _modify { yield &ex.pointee.v.isCountedOutstanding }
    }
    private var responseScanner: HTTP1HeadScanner {
        _read { yield ex.pointee.v.responseScanner }
        _modify { yield &ex.pointee.v.responseScanner }
    }
    private var response: HTTPResponseHead {
        _read { yield ex.pointee.response }
        _modify { yield &ex.pointee.response }
    }
    private var responseMode: ResponseBodyMode {
        _read { yield ex.pointee.v.responseMode }
        _modify { yield &ex.pointee.v.responseMode }
    }
    private var responsePassEnd: Int {
        _read { yield ex.pointee.v.responsePassEnd }
        _modify { yield &ex.pointee.v.responsePassEnd }
    }
    private var responseDecodeIndex: Int {
        _read { yield ex.pointee.v.responseDecodeIndex }
        _modify { yield &ex.pointee.v.responseDecodeIndex }
    }
    private var responseRemaining: Int64 {
        _read { yield ex.pointee.v.responseRemaining }
        _modify { yield &ex.pointee.v.responseRemaining }
    }
    private var responseChunked: ChunkedDecoder {
        _read { yield ex.pointee.v.responseChunked }
        _modify { yield &ex.pointee.v.responseChunked }
    }
    private var isResponseReceived: Bool {
        _read { yield ex.pointee.v.isResponseReceived }
        _modify { yield &ex.pointee.v.isResponseReceived }
    }
    private var hasResponseBytes: Bool {
        _read { yield ex.pointee.v.hasResponseBytes }
        _modify { yield &ex.pointee.v.hasResponseBytes }
    }
    private var hasSentResponseHead: Bool {
        _read { yield ex.pointee.v.hasSentResponseHead }
        _modify { yield &ex.pointee.v.hasSentResponseHead }
    }
    private var chunkSuffixPending: Int {
        _read { yield ex.pointee.v.chunkSuffixPending }
        _modify { yield &ex.pointee.v.chunkSuffixPending }
    }
    private var startNanos: UInt64 {
        _read { yield ex.pointee.v.startNanos }
        _modify { yield &ex.pointee.v.startNanos }
    }
    private var bytesIn: Int64 {
        _read { yield ex.pointee.v.bytesIn }
        _modify { yield &ex.pointee.v.bytesIn }
    }
    private var bytesOut: Int64 {
        _read { yield ex.pointee.v.bytesOut }
        _modify { yield &ex.pointee.v.bytesOut }
    }
    private var status: Int {
        _read { yield ex.pointee.v.status }
        _modify { yield &ex.pointee.v.status }
    }
    private var errorNote: StaticString {
        _read { yield ex.pointee.v.errorNote }
        _modify { yield &ex.pointee.v.errorNote }
    }
    private var splicePipe: SplicePipe? {
        _read { yield ex.pointee.v.splicePipe }
        _modify { yield &ex.pointee.v.splicePipe }
    }
    private var pipeBytes: Int {
        _read { yield ex.pointee.v.pipeBytes }
        _modify { yield &ex.pointee.v.pipeBytes }
    }
    private var isHeadWaitingForBody: Bool {
        _read { yield ex.pointee.v.isHeadWaitingForBody }
        _modify { yield &ex.pointee.v.isHeadWaitingForBody }
    }
    /// Whether the client may have received part of the response: a head that is still
    /// held for its body (`isHeadWaitingForBody`) has not left, so an error can replace it.
    private var isResponseCommitted: Bool { hasSentResponseHead && !isHeadWaitingForBody }
    /// Whether what is left of a Content-Length body is large enough to be spliced: at
    /// least two buffers (half a large block). Below that line a body is copied through a
    /// large block in one read and one send, which costs less than the splices (measured:
    /// 20 KB bodies take about a fifth less CPU copied whole; at 40 KB the two are level).
    /// The pipe taken for the head and the splice of the rest follow this line; the
    /// member's size history (and so the head's first read) draws its own from it.
    private var isSpliceSized: Bool { responseRemaining >= spliceLine }
    private var spliceLine: Int64 { Int64(2 * settings.limits.bufferBytes) }
    private var isSpliceDeclined: Bool {
        _read { yield ex.pointee.v.isSpliceDeclined }
        _modify { yield &ex.pointee.v.isSpliceDeclined }
    }
    private var tunnelHead: [UInt8] {
        _read { yield ex.pointee.tunnelHead }
        _modify { yield &ex.pointee.tunnelHead }
    }

    init(fd: Int32, address: SocketAddress, worker: Worker) {
        self.worker = worker
        self.loop = worker.loop
        self.buffers = worker.buffers
        self.exchanges = worker.exchanges
        self.clientIP = address.ipAddressText
        self.clientPort = address.port
        self.clientAddress = address.ipAddress
        self.ex = exchanges.idle
        super.init(fd: fd)
    }

    /// Takes exchange state from the pool (at a request's first byte).
    private func attachExchange() {
        if ex == exchanges.idle { ex = exchanges.take() }
    }

    /// Returns the exchange state (when the connection goes idle or closes).
    private func detachExchange() {
        if ex != exchanges.idle {
            exchanges.give(ex)
            ex = exchanges.idle
        }
    }

    /// Between requests on a keep-alive connection that has served at least one.
    var isIdleKeepAlive: Bool {
        hasServedRequest && requestPhase == .idle && responsePhase == .none && !isClosed && !isLingering
    }
    /// True once a response completed on this connection.
    private var hasServedRequest = false
    /// Position in the worker's list of open connections (-1 when not in it).
    var connectionIndex = -1

    private var settings: ProxySettings { worker.settings }

    /// Called once after registration.
    func start() {
        // A new connection has the header deadline for its first request (as nginx's
        // client_header_timeout); the idle-timer list holds only keep-alive connections,
        // oldest first, which is what the connection limit reclaims.
        loop.armTimer(self, list: worker.timers.clientHeader)
        isReadable = true
        drive()
    }

    // MARK: Events

    override func handleEvent(_ events: UInt32) {
        if events & (cturnout_EPOLLIN | cturnout_EPOLLRDHUP | cturnout_EPOLLHUP | cturnout_EPOLLERR) != 0 {
            isReadable = true
        }
        if events & (cturnout_EPOLLRDHUP | cturnout_EPOLLHUP | cturnout_EPOLLERR) != 0 { hasPendingEOF = true }
        if events & cturnout_EPOLLOUT != 0 { isWritable = true }
        if events & (cturnout_EPOLLHUP | cturnout_EPOLLERR) != 0 && !isLingering {
            // The client is gone in both directions.
            if requestPhase == .done || requestPhase == .tunnel || responsePhase != .none {
                abort(note: "client closed the connection")
                return
            }
        }
        drive()
    }

    func upstreamEvent(_ events: UInt32) {
        guard let up = upstream else { return }
        if events & (cturnout_EPOLLIN | cturnout_EPOLLRDHUP | cturnout_EPOLLHUP | cturnout_EPOLLERR) != 0 {
            up.isReadable = true
        }
        if events & (cturnout_EPOLLRDHUP | cturnout_EPOLLHUP | cturnout_EPOLLERR) != 0 { up.hasPendingEOF = true }
        if events & (cturnout_EPOLLOUT | cturnout_EPOLLERR | cturnout_EPOLLHUP) != 0 { up.isWritable = true }
        if !up.isConnected && up.isWritable {
            let err = Syscall.socketError(up.fd)
            if err != 0 {
                upstreamConnectFailed(IOError("connect", errno: err), note: "upstream connect failed", status: 502)
                return
            }
            up.isConnected = true
            loop.armTimer(self, list: worker.timers.upstreamResponse)
            responsePhase = .waitingHead
        }
        drive()
    }

    override func handleReady() {
        drive()
    }

    override func handleTimeout() {
        if isLingering {
            close()
            return
        }
        switch responsePhase {
        case .connecting:
            if let member { worker.logUpstreamReason("upstream connect timed out", member: member) }
            upstreamConnectFailed(nil, note: "upstream connect timed out", status: 504)
            return
        case .waitingHead where !hasResponseBytes && requestPhase == .done:
            gatewayError(504, "upstream response timed out")
            return
        case .body where isHeadWaitingForBody:
            // The head is still held: nothing of the response reached the client, which
            // gets a 504 rather than a head whose body never comes.
            gatewayError(504, "upstream response timed out")
            return
        case .none:
            if requestPhase == .head {
                errorNote = "client header timeout"
                sendErrorAndClose(408, "request header timeout\n")
            } else {
                close()
            }
            return
        default:
            abort(note: "idle timeout while relaying")
        }
    }

    func upstreamTimeout() {
        handleTimeout()
    }

    // MARK: The driver

    /// Makes all the progress possible now. Stops after a bounded amount of work and
    /// re-queues itself, so one fast transfer cannot starve the worker's other connections.
    private func drive() {
        defer { if !isWatched && !isClosed { watchIfNeeded() } }
        var rounds = 0
        while !isClosed {
            rounds += 1
            if rounds > 16 {
                loop.enqueueReady(self)
                return
            }
            var progress = false
            if isLingering {
                drainLingering()
                return
            }
            if readClient() { progress = true }
            if isClosed { return }
            if processClientInput() { progress = true }
            if isClosed { return }
            if writeUpstream() { progress = true }
            if isClosed { return }
            if readUpstream() { progress = true }
            if isClosed { return }
            if processUpstreamInput() { progress = true }
            if isClosed { return }
            if writeClient() { progress = true }
            if isClosed { return }
            if spliceResponseBody() { progress = true }
            if isClosed { return }
            if finishIfDone() { progress = true }
            if !progress {
                if requestPhase == .tunnel { releaseDrainedTunnelBuffers() }
                return
            }
        }
    }

    /// A tunnel (101, CONNECT) is mostly quiet: with nothing left to move, each buffer that
    /// holds nothing goes back to the pool, as an idle keep-alive connection's do, and the
    /// next bytes in either direction attach a normal block. So an idle WebSocket holds no
    /// buffer memory, whatever size its blocks were when the tunnel began (a large one
    /// after an upload, or from a member whose responses were medium).
    private func releaseDrainedTunnelBuffers() {
        if inBuf.isEmpty {
            inBuf.release(buffers)
            headStart = 0
            requestPassEnd = 0
        }
        if upIn.isEmpty {
            upIn.release(buffers)
            responsePassEnd = 0
            responseDecodeIndex = 0
        }
        if upOut.isEmpty { upOut.release(buffers) }
        if outBuf.isEmpty { outBuf.release(buffers) }
    }

    // MARK: Watching the client fd

    /// The fd enters epoll when the connection first has to wait for it, not at accept: a
    /// connection whose request is read at once, and whose response goes out in one write
    /// before it closes, never costs an `epoll_ctl` (nor the readiness event and the epoll
    /// removal at close that come with one), as HAProxy's connections do not. While the
    /// request waits for its upstream, the client fd matters only for noticing a hang-up:
    /// that is deferred (`watchSoon`), so a client that goes away is noticed up to
    /// `EventLoop.deferredWatchMs` later; anything else (reading more, a write that did not
    /// finish, lingering) watches at once. Edge-triggered registration reports the fd's
    /// current readiness, so no event is lost; `finishIfDone`, which relies on having heard
    /// of no input, asks the socket itself while it is unwatched.
    private func watchIfNeeded() {
        let isWaitingForUpstreamOnly = requestPhase == .done && isWritable && !isLingering
            && (responsePhase == .connecting || responsePhase == .waitingHead || responsePhase == .body)
        if isWaitingForUpstreamOnly {
            loop.watchSoon(self, events: Worker.edgeEvents)
            return
        }
        do {
            try loop.watch(self, events: Worker.edgeEvents)
        } catch {
            watchFailed(error)
        }
    }

    override func handleWatchFailure(_ error: IOError, loop: EventLoop) {
        watchFailed(error)
    }

    private func watchFailed(_ error: IOError) {
        worker.logger.error("cannot watch a client connection", metadata: ["turnout.error": "\(error)"])
        abort(note: "client connection not watchable")
    }

    // MARK: Client → proxy

    private func readClient() -> Bool {
        guard isReadable, !sawEOF else { return false }
        switch requestPhase {
        case .idle, .head, .body, .tunnel:
            break
        case .done:
            return false
        }
        if requestPhase == .body && inBuf.readableBytes >= worker.settings.limits.bufferBytes / 2
            && inBuf.writableBytes == 0
        {
            // Backpressure: the upstream has not taken what we hold.
            if !makeRoomInInBuf() {
                isRatePaused = true
                return false
            }
        }
        inBuf.attach(buffers, large: expectsLargeRequest && requestPhase == .idle)
        if inBuf.writableBytes == 0 && !makeRoomInInBuf() {
            if requestPhase == .body { isRatePaused = true }
            return false
        }
        let r: IOResult<Int>
        let requested = inBuf.writableBytes
        do {
            r = try transport.read(fd, inBuf.base! + inBuf.writeIndex, requested)
        } catch {
            abort(note: "client read failed")
            return false
        }
        switch r {
        case .wouldBlock:
            isReadable = false
            releaseIdleInBuf()
            return false
        case .processed(0):
            sawEOF = true
            releaseIdleInBuf()
            clientEOF()
            return true
        case .processed(let n):
            inBuf.writeIndex += n
            // Edge-triggered: a short read took everything queued, and anything that
            // arrives later raises a new event, so skip the read that would say EAGAIN.
            if n < requested && !hasPendingEOF && transport.isDrainedByShortRead { isReadable = false }
            if requestPhase == .idle {
                requestPhase = .head
                attachExchange()
                headStart = inBuf.readIndex
                startNanos = loop.nowNanos
                loop.armTimer(self, list: worker.timers.clientHeader)
            } else if requestPhase == .body || requestPhase == .tunnel {
                loop.armTimer(self, list: worker.timers.bodyIdle)
                if requestPhase == .body && settings.limits.minBodyRate > 0 && !checkBodyRate(adding: n) { return false }
            }
            return true
        }
    }

    /// Counts `n` request-body bytes against `limits.min_body_rate`. Each window of
    /// `timeouts.body_rate_window` must bring at least rate × window bytes; time during
    /// which the proxy held the client back (backpressure) does not count. False when the
    /// request was refused (408).
    private func checkBodyRate(adding n: Int) -> Bool {
        let now = loop.now
        if isRatePaused {
            isRatePaused = false
            rateWindowStart = now
            rateWindowBytes = 0
        }
        rateWindowBytes += Int64(n)
        let elapsed = now &- rateWindowStart
        guard elapsed >= UInt64(settings.timeouts.bodyRateWindowMs) else { return true }
        if rateWindowBytes &* 1000 < settings.limits.minBodyRate &* Int64(elapsed) {
            errorNote = "request body slower than limits.min_body_rate"
            worker.logClientReason("request body slower than limits.min_body_rate", clientIP: clientIP)
            failRequest(408, "request body too slow\n")
            return false
        }
        rateWindowStart = now
        rateWindowBytes = 0
        return true
    }

    /// An idle keep-alive connection holds no buffer memory. In other phases the buffer
    /// may look empty while it still holds the current request head (kept for a retry
    /// and the access log), so it stays.
    private func releaseIdleInBuf() {
        if requestPhase == .idle { inBuf.releaseIfEmpty(buffers) }
    }

    /// Frees space at the end of `inBuf` by moving retained bytes to the front, or by
    /// growing it to hold a large head. False when nothing can be freed.
    private func makeRoomInInBuf() -> Bool {
        let isHeadPhase = requestPhase == .idle || requestPhase == .head || requestPhase == .tunnel
        let keepFrom = isHeadPhase ? inBuf.readIndex : headStart
        var freed = false
        if keepFrom > 0 {
            let moved = inBuf.compact(keepFrom: keepFrom)
            headStart -= moved
            requestPassEnd = max(requestPassEnd - moved, inBuf.readIndex)
            freed = true
        }
        if !isHeadPhase {
            // The head stays (retry, access log); body bytes already sent upstream go.
            let headEnd = headStart + head.headLength
            let gap = inBuf.readIndex - headEnd
            if gap > 0 {
                inBuf.removeBytes(from: headEnd, upTo: inBuf.readIndex)
                requestPassEnd -= gap
                freed = true
            }
        }
        if freed { return inBuf.writableBytes > 0 }
        if requestPhase == .head || requestPhase == .idle {
            let limit = settings.limits.head.maxHeadBytes + 64
            if inBuf.capacity < limit {
                inBuf.grow(to: limit, pool: buffers)
                return true
            }
        }
        return false
    }

    private func clientEOF() {
        switch requestPhase {
        case .idle:
            close()
        case .head:
            if inBuf.readableBytes > 0 {
                errorNote = "client closed mid-head"
                abort(note: "client closed mid-head")
            } else {
                close()
            }
        case .body:
            if !isRequestReceived { abort(note: "client closed mid-body") }
        case .done:
            closeAfterResponse = true
        case .tunnel:
            if let up = upstream, inBuf.readableBytes == 0 { Syscall.shutdownWrite(up.fd) }
        }
    }

    private func processClientInput() -> Bool {
        switch requestPhase {
        case .head:
            return parseRequestHead()
        case .body:
            return validateRequestBody()
        case .tunnel:
            let end = inBuf.writeIndex
            if end != requestPassEnd {
                bytesIn += Int64(end - requestPassEnd)
                requestPassEnd = end
                return true
            }
            return false
        case .idle, .done:
            return false
        }
    }

    private func parseRequestHead() -> Bool {
        let bytes = inBuf.bytes(from: headStart)
        let range: Range<Int>
        do {
            switch try scanner.scan(bytes, limits: settings.limits.head) {
            case .incomplete:
                if sawEOF { abort(note: "client closed mid-head") }
                return false
            case .complete(let r):
                range = r
            }
        } catch {
            rejectRequest(error)
            return false
        }
        headStart += range.lowerBound
        let headBytes = UnsafeRawBufferPointer(rebasing: inBuf.bytes(from: headStart)[0..<range.count])
        isHeadParsed = false
        do {
            try HTTP1Parser.parseRequest(headBytes, limits: settings.limits.head, into: &head)
        } catch {
            rejectRequest(error)
            return false
        }
        isHeadParsed = true
        bytesIn = Int64(range.count)
        inBuf.readIndex = headStart + range.count
        requestPassEnd = inBuf.readIndex
        if head.method == .connect && !admitConnect() { return false }
        switch head.framing {
        case .contentLength(let n):
            let max = settings.limits.maxBodyBytes
            if max > 0 && n > max {
                errorNote = "request body over max_body_size"
                sendErrorAndClose(413, "request body too large\n")
                return false
            }
            requestRemaining = n
            isRequestReceived = n == 0
        case .chunked:
            requestChunked.reset()
            requestRemaining = 0
            isRequestReceived = false
        case .none, .untilClose:
            requestRemaining = 0
            isRequestReceived = true
        }
        requestPhase = isRequestReceived ? .done : .body
        switch head.framing {
        case .contentLength(let n): expectsLargeRequest = n > 0 && Int64(head.headLength) + n > Int64(buffers.blockSize)
        case .chunked: expectsLargeRequest = false  // decided by its size when it ends (validateRequestBody)
        case .none, .untilClose: expectsLargeRequest = false
        }
        if requestPhase == .body {
            // A body bigger than what the block has left is read and written in large
            // blocks, as for responses (no view into the old block is held here).
            let isLarge: Bool
            switch head.framing {
            case .contentLength(let n): isLarge = n > Int64(inBuf.capacity - inBuf.writeIndex)
            case .chunked: isLarge = true
            case .none, .untilClose: isLarge = false
            }
            if isLarge { inBuf.enlarge(buffers) }
        }
        requestBodySent = 0
        hasWrittenUpstream = false
        hasRetried = false
        if !head.isKeepAlive { closeAfterResponse = true }
        hasSentResponseHead = false
        // The rate window starts with the first body byte read (a client waiting for
        // 100 Continue is held back by the upstream, not slow).
        isRatePaused = true
        if requestPhase == .body && inBuf.writeIndex > requestPassEnd {
            // Validate the body bytes that came with the head before anything goes
            // upstream: a request sent whole with a broken chunked body is refused
            // without the origin ever seeing its head.
            _ = validateRequestBody()
            if isClosed || hasSentResponseHead { return false }
        }
        startExchange()
        return true
    }

    /// CONNECT passes only when `connect.enabled` is set, names an allowed port and has no
    /// content (RFC 9110 §9.3.6); bytes after its head are tunnel data, held until the
    /// member answers 2xx. The connection never outlives the exchange.
    private func admitConnect() -> Bool {
        let connect = settings.connect
        guard connect.isEnabled else {
            errorNote = "CONNECT is not enabled"
            sendErrorAndClose(405, "CONNECT is not supported\n")
            return false
        }
        let src = inBuf.bytes(from: headStart)
        guard let port = HTTP1Parser.authorityPort(src, head.targetSpan.range), connect.ports.contains(port) else {
            errorNote = "CONNECT to a port not in connect.ports"
            sendErrorAndClose(403, "CONNECT to this port is not allowed\n")
            return false
        }
        guard head.framing == .none else {
            errorNote = "CONNECT with content"
            worker.logClientReason("CONNECT with Content-Length or Transfer-Encoding", clientIP: clientIP)
            sendErrorAndClose(400, "bad request\n")
            return false
        }
        closeAfterResponse = true
        return true
    }

    private func validateRequestBody() -> Bool {
        let end = inBuf.writeIndex
        guard end > requestPassEnd, !isRequestReceived else { return false }
        switch head.framing {
        case .contentLength:
            let take = min(Int64(end - requestPassEnd), requestRemaining)
            requestPassEnd += Int(take)
            requestRemaining -= take
            bytesIn += take
            if requestRemaining == 0 { isRequestReceived = true }
        case .chunked:
            guard let base = inBuf.base else { return false }
            let all = UnsafeRawBufferPointer(start: base, count: end)
            var index = requestPassEnd
            do {
                decoding: while index < end {
                    switch try requestChunked.decode(all, index: &index) {
                    case .data(let r):
                        if settings.limits.maxBodyBytes > 0 {
                            requestRemaining += Int64(r.count)
                            if requestRemaining > settings.limits.maxBodyBytes {
                                errorNote = "request body over max_body_size"
                                failRequest(413, "request body too large\n")
                                return false
                            }
                        }
                    case .needMore:
                        break decoding
                    case .end:
                        isRequestReceived = true
                        break decoding
                    }
                }
            } catch {
                errorNote = "invalid chunked request body"
                failRequest(400, "invalid chunked body\n")
                return false
            }
            bytesIn += Int64(index - requestPassEnd)
            requestPassEnd = index
            if isRequestReceived { expectsLargeRequest = bytesIn > Int64(buffers.blockSize) }
        default:
            return false
        }
        return true
    }

    // MARK: Starting an exchange

    private func startExchange() {
        makeRequestID()
        responseScanner.reset()
        hasResponseBytes = false
        hasSentResponseHead = false
        isResponseReceived = false
        isSpliceDeclined = false
        isHeadWaitingForBody = false
        status = 0
        errorNote = ""
        guard route() else { return }
        connectUpstream(mayReuse: true)
    }

    /// Chooses the pool and member for the current request from the worker's current
    /// snapshot (read once here). False when it answered the request itself (503).
    private func route() -> Bool {
        let table = worker.routeTable
        let src = inBuf.bytes(from: headStart)
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        // A CONNECT goes where its target points (its Host field may say anything).
        let hostRange = head.method == .connect
            ? head.targetSpan.range : (head.hostIndex >= 0 ? head.headers[head.hostIndex].value.range : nil)
        if clientBucket == nil && table.bucketCookieName == nil { clientBucket = CohortHash.bucket(of: clientAddress) }
        var request = RoutingRequest(
            host: hostRange.map { UnsafeRawBufferPointer(rebasing: src[$0]) } ?? empty,
            path: UnsafeRawBufferPointer(rebasing: src[head.targetSpan.range]),
            client: clientAddress, random: UInt32(truncatingIfNeeded: worker.nextRandom()), clientBucket: clientBucket)
        if table.readsRequestFields {
            for field in head.headers {
                let name = UnsafeRawBufferPointer(rebasing: src[field.name.range])
                let value = UnsafeRawBufferPointer(rebasing: src[field.value.range])
                if request.overrideHeader == nil, let n = table.overrideHeaderName, HeaderName.matches(name, n) {
                    request.overrideHeader = value
                } else if request.cohortHeader == nil, let n = table.cohortHeaderName, HeaderName.matches(name, n) {
                    request.cohortHeader = value
                } else if table.readsCookies, HeaderName.matches(name, "cookie") {
                    if request.overrideCookie == nil, let n = table.overrideCookieName {
                        request.overrideCookie = n.withUnsafeBytes { Cookies.value(named: $0, in: value) }
                    }
                    if request.cohortCookie == nil, let n = table.cohortCookieName {
                        request.cohortCookie = n.withUnsafeBytes { Cookies.value(named: $0, in: value) }
                    }
                    if request.bucketCookie == nil, let n = table.bucketCookieName {
                        request.bucketCookie = n.withUnsafeBytes { Cookies.value(named: $0, in: value) }
                    }
                }
            }
        }
        let decision = table.decide(request, available: worker.availablePools())
        self.decision = decision
        if decision.ignoredOverride != .none { worker.logIgnoredOverride(decision.ignoredOverride, clientIP: clientIP) }
        let poolState = worker.pools[decision.poolIndex]
        if decision.reason == .fallback { worker.noteFallback(to: poolState) }
        pool = poolState
        if head.method == .connect && !settings.connect.pools.contains(poolState.name) {
            errorNote = "CONNECT routed to a pool not in connect.pools"
            sendErrorAndClose(403, "CONNECT is not allowed here\n")
            return false
        }
        guard let chosen = poolState.pickMember(now: loop.now, random: worker.nextRandom()) else {
            gatewayError(503, "pool has no members")
            return false
        }
        setMember(chosen)
        return true
    }

    /// Moves this exchange's outstanding-request count to `newMember`.
    private func setMember(_ newMember: MemberState?) {
        if isCountedOutstanding {
            member?.outstanding -= 1
            isCountedOutstanding = false
        }
        member = newMember
        if let m = newMember {
            m.outstanding += 1
            isCountedOutstanding = true
        }
    }

    /// A connection to the chosen member could not be made. The request reached nobody,
    /// so it may go anywhere: the member is marked (passive health) and the request is
    /// routed once more, possibly to another member or pool.
    private func upstreamConnectFailed(_ error: IOError?, note: StaticString, status code: Int) {
        if let up = upstream {
            upstream = nil
            loop.close(up)
        }
        if let member {
            member.connectFailed(now: loop.now)
            if let error { worker.logUpstreamError(error, member: member, note: note) }
        }
        if !hasRetried {
            hasRetried = true
            hasWrittenUpstream = false
            if route() { connectUpstream(mayReuse: true) }
            // Mostly called from a timeout or an upstream event, not from drive: a pooled
            // connection taken for the retry raises no event of its own, so the request head
            // waiting in upOut is sent by the next drive.
            if !isClosed { loop.enqueueReady(self) }
            return
        }
        gatewayError(code, note)
    }

    /// Sends the request to `member`, on a pooled connection when `mayReuse` allows one.
    /// A CONNECT never takes a pooled connection: it is not retried, so one that turned
    /// out stale would fail it, and its tunnel keeps the connection for good.
    private func connectUpstream(mayReuse: Bool) {
        guard let member else { return }
        let reuse = mayReuse && head.method != .connect
        upOut.attach(buffers)
        upOut.readIndex = 0
        upOut.writeIndex = 0
        writeRequestHead()
        if reuse, let idle = member.takeIdle() {
            idle.owner = Unmanaged.passUnretained(self)
            upstream = idle
            responsePhase = .waitingHead
            loop.armTimer(self, list: worker.timers.upstreamResponse)
            return
        }
        do {
            let up = try member.connectNew()
            up.owner = Unmanaged.passUnretained(self)
            upstream = up
            if up.isConnected {
                responsePhase = .waitingHead
                loop.armTimer(self, list: worker.timers.upstreamResponse)
            } else {
                responsePhase = .connecting
                loop.armTimer(self, list: worker.timers.upstreamConnect)
            }
        } catch {
            upstreamConnectFailed(error, note: "upstream connect failed", status: 502)
        }
    }

    /// Writes the request head as the upstream will see it: end-to-end fields in their
    /// original order and spelling, hop-by-hop fields dropped, framing regenerated,
    /// forwarding fields and the request id added.
    private func writeRequestHead() {
        let src = inBuf.bytes(from: headStart)
        let table = worker.routeTable
        let requestIDHeader = worker.requestIDHeaderBytes
        let needed = head.headLength + clientIP.count * 2 + 256 + requestIDHeader.count
            + (table.poolHeaderName?.count ?? 0) + (pool?.nameBytes.count ?? 0)
        if upOut.capacity < needed { upOut.grow(to: needed, pool: buffers) }
        func put(_ span: Span) {
            upOut.append(UnsafeRawBufferPointer(rebasing: src[span.range]))
        }
        put(head.methodSpan)
        upOut.append(byte: 0x20)
        // Absolute-form targets go upstream in origin-form; their authority is the host.
        var target = head.targetSpan.range
        var authority: Range<Int>?
        if head.method != .connect, let first = src[safe: target.lowerBound], first != 0x2F, first != 0x2A {
            if let (a, path) = splitAbsoluteForm(src, target) {
                authority = a
                target = path
            }
        }
        if target.isEmpty {
            upOut.append(byte: 0x2F)
        } else {
            if src[target.lowerBound] == 0x3F { upOut.append(byte: 0x2F) }
            upOut.append(UnsafeRawBufferPointer(rebasing: src[target]))
        }
        upOut.append(" HTTP/1.1\r\n")
        var sawForwardedFor = false
        var sawForwardedProto = false
        var sawForwardedHost = false
        let trust = settings.headers.trustForwarded
        for field in head.headers {
            if field.isHopByHop { continue }
            if table.stripsRequestFields, field.kind == .other {
                // Routing control fields are for the proxy: never forwarded as sent.
                let name = UnsafeRawBufferPointer(rebasing: src[field.name.range])
                if let n = table.overrideHeaderName, HeaderName.matches(name, n) { continue }
                if let n = table.poolHeaderNameLowercased, HeaderName.matches(name, n) { continue }
            }
            switch field.kind {
            case .contentLength:
                continue
            case .host:
                if let authority {
                    upOut.append("Host: ")
                    upOut.append(UnsafeRawBufferPointer(rebasing: src[authority]))
                    upOut.append("\r\n")
                    continue
                }
                if !settings.headers.preserveHost, let member {
                    upOut.append("Host: ")
                    upOut.append(member.labelBytes)
                    upOut.append("\r\n")
                    continue
                }
            case .xForwardedFor:
                if !trust || sawForwardedFor { continue }
                sawForwardedFor = true
                upOut.append("X-Forwarded-For: ")
                appendJoinedValues(src, kind: .xForwardedFor)
                upOut.append(", ")
                clientIP.withBytes { upOut.append($0) }
                upOut.append("\r\n")
                continue
            case .xForwardedProto:
                if !trust { continue }
                sawForwardedProto = true
            case .xForwardedHost:
                if !trust { continue }
                sawForwardedHost = true
            default:
                break
            }
            put(field.name)
            upOut.append(": ")
            put(field.value)
            upOut.append("\r\n")
        }
        if head.hostIndex < 0 {
            upOut.append("Host: ")
            if let authority {
                upOut.append(UnsafeRawBufferPointer(rebasing: src[authority]))
            } else if let member {
                upOut.append(member.labelBytes)
            }
            upOut.append("\r\n")
        }
        switch head.framing {
        case .contentLength(let n):
            upOut.append("Content-Length: ")
            upOut.appendDecimal(n)
            upOut.append("\r\n")
        case .chunked:
            upOut.append("Transfer-Encoding: chunked\r\n")
        case .none, .untilClose:
            break
        }
        if head.wantsUpgrade && head.upgradeIndex >= 0 {
            upOut.append("Connection: upgrade\r\nUpgrade: ")
            put(head.headers[head.upgradeIndex].value)
            upOut.append("\r\n")
        }
        if !sawForwardedFor {
            upOut.append("X-Forwarded-For: ")
            clientIP.withBytes { upOut.append($0) }
            upOut.append("\r\n")
        }
        if !sawForwardedProto {
            upOut.append("X-Forwarded-Proto: http\r\n")
        }
        if !sawForwardedHost {
            if let authority {
                upOut.append("X-Forwarded-Host: ")
                upOut.append(UnsafeRawBufferPointer(rebasing: src[authority]))
                upOut.append("\r\n")
            } else if head.hostIndex >= 0 {
                upOut.append("X-Forwarded-Host: ")
                put(head.headers[head.hostIndex].value)
                upOut.append("\r\n")
            }
        }
        if let name = table.poolHeaderName, let pool {
            upOut.append(name)
            upOut.append(": ")
            upOut.append(pool.nameBytes)
            upOut.append("\r\n")
        }
        if head.requestIDIndex < 0 && !requestIDHeader.isEmpty {
            upOut.append(requestIDHeader)
            upOut.append(": ")
            upOut.append(requestIDBytes)
            upOut.append("\r\n")
        }
        upOut.append("\r\n")
    }

    private func appendJoinedValues(_ src: UnsafeRawBufferPointer, kind: HTTPHeaderKind) {
        var first = true
        for field in head.headers where field.kind == kind {
            if !first { upOut.append(", ") }
            first = false
            upOut.append(UnsafeRawBufferPointer(rebasing: src[field.value.range]))
        }
    }

    /// Splits `scheme://authority/path?query` into the authority and the path-and-query.
    private func splitAbsoluteForm(_ src: UnsafeRawBufferPointer, _ target: Range<Int>) -> (Range<Int>, Range<Int>)? {
        var p = target.lowerBound
        while p + 2 < target.upperBound {
            if src[p] == 0x3A && src[p + 1] == 0x2F && src[p + 2] == 0x2F { break }
            p += 1
        }
        guard p + 2 < target.upperBound else { return nil }
        let authorityStart = p + 3
        var q = authorityStart
        while q < target.upperBound && src[q] != 0x2F && src[q] != 0x3F { q += 1 }
        return (authorityStart..<q, q..<target.upperBound)
    }

    private func makeRequestID() {
        if head.requestIDIndex >= 0 { return }
        worker.fillRequestID(&requestIDBytes)
    }

    // MARK: Proxy → upstream

    private func writeUpstream() -> Bool {
        guard let up = upstream, up.isConnected, up.isWritable else { return false }
        let passCount = requestPassEnd - inBuf.readIndex
        let headCount = upOut.readableBytes
        guard headCount + passCount > 0 else { return false }
        var iov = (iovec(), iovec())
        var count: Int32 = 0
        withUnsafeMutableBytes(of: &iov) { raw in
            let v = raw.baseAddress!.assumingMemoryBound(to: iovec.self)
            if headCount > 0 {
                v[Int(count)] = iovec(iov_base: upOut.base! + upOut.readIndex, iov_len: headCount)
                count += 1
            }
            if passCount > 0 {
                v[Int(count)] = iovec(iov_base: inBuf.base! + inBuf.readIndex, iov_len: passCount)
                count += 1
            }
        }
        let r: IOResult<Int>
        do {
            r = try withUnsafeBytes(of: &iov) { raw throws(IOError) in
                try Syscall.send(up.fd, raw.baseAddress!.assumingMemoryBound(to: iovec.self), count)
            }
        } catch {
            upstreamFailed(error, note: "upstream write failed")
            return false
        }
        switch r {
        case .wouldBlock:
            up.isWritable = false
            return false
        case .processed(var n):
            if n > 0 { hasWrittenUpstream = true }
            let fromHead = min(n, headCount)
            upOut.readIndex += fromHead
            n -= fromHead
            if n > 0 {
                inBuf.readIndex += n
                requestBodySent += Int64(n)
            }
            if upOut.isEmpty {
                upOut.readIndex = 0
                upOut.writeIndex = 0
            }
            if requestPhase == .body && isRequestReceived && inBuf.readIndex == requestPassEnd && upOut.isEmpty {
                requestPhase = .done
                loop.armTimer(self, list: worker.timers.upstreamResponse)
            } else if requestPhase == .body {
                loop.armTimer(self, list: worker.timers.bodyIdle)
            }
            if requestPhase == .tunnel && sawEOF && inBuf.readIndex == inBuf.writeIndex {
                Syscall.shutdownWrite(up.fd)
            }
            return true
        }
    }

    // MARK: Upstream → proxy

    private func readUpstream() -> Bool {
        guard let up = upstream, up.isConnected, up.isReadable, !up.sawEOF, splicePipe == nil else { return false }
        switch responsePhase {
        case .waitingHead, .body, .tunnel:
            break
        default:
            return false
        }
        // A member whose responses lately were medium-sized gets its head read into a large
        // block: the whole response in one read (ResponseSizeHistory).
        upIn.attach(buffers, large: responsePhase == .waitingHead && up.member.responseSizes.expectsMedium)
        if upIn.writableBytes == 0 {
            let keep = upIn.readIndex
            guard keep > 0 else {
                if responsePhase == .waitingHead {
                    let limit = settings.limits.head.maxHeadBytes + 64
                    if upIn.capacity < limit {
                        upIn.grow(to: limit, pool: buffers)
                    } else {
                        return false
                    }
                } else {
                    return false
                }
                return true
            }
            let moved = upIn.compact(keepFrom: keep)
            responsePassEnd -= moved
            responseDecodeIndex -= moved
        }
        let r: IOResult<Int>
        // A response from a member whose responses lately were large: read little more
        // than the head, so that the body goes through the pipe (ResponseSizeHistory).
        let requested = responsePhase == .waitingHead && transport.canSplice && up.member.responseSizes.expectsLarge
            && worker.pipes.mayHavePipe
            ? min(upIn.writableBytes, ResponseSizeHistory.smallFirstRead) : upIn.writableBytes
        do {
            r = try Syscall.receive(up.fd, upIn.base! + upIn.writeIndex, requested)
        } catch {
            upstreamFailed(error, note: "upstream read failed")
            return false
        }
        switch r {
        case .wouldBlock:
            up.isReadable = false
            return false
        case .processed(0):
            up.sawEOF = true
            upstreamEOF()
            return true
        case .processed(let n):
            upIn.writeIndex += n
            if n < requested && !up.hasPendingEOF { up.isReadable = false }  // as in readClient
            hasResponseBytes = true
            if responsePhase == .body || responsePhase == .tunnel {
                loop.armTimer(self, list: worker.timers.bodyIdle)
            }
            return true
        }
    }

    private func upstreamEOF() {
        switch responsePhase {
        case .waitingHead:
            if !hasResponseBytes {
                upstreamFailed(IOError("read", errno: ECONNRESET), note: "upstream closed before responding")
            } else if upIn.readableBytes > 0 {
                // Let the parser try what arrived; an incomplete head is a bad gateway.
                if case .incomplete = (try? responseScanner.scan(upIn.readable, limits: settings.limits.head)) ?? .incomplete {
                    gatewayError(502, "upstream closed mid-head")
                }
            }
        case .body:
            switch responseMode {
            case .closeToChunked, .closePass:
                break  // the end of the body; handled in processUpstreamInput
            default:
                // Body bytes that came with the end of the stream are passed on first:
                // processUpstreamInput decides once they are (responseBodyEndedEarly).
                break
            }
        case .tunnel:
            if outBuf.isEmpty && upIn.readIndex == upIn.writeIndex { transport.shutdownWrite(fd) }
        default:
            break
        }
    }

    private func processUpstreamInput() -> Bool {
        switch responsePhase {
        case .waitingHead:
            return parseResponseHead()
        case .body:
            if advanceResponseBody() { return true }
            if responseBodyEndedEarly() { abort(note: "upstream closed mid-body") }
            return false
        case .tunnel:
            if upIn.writeIndex != responsePassEnd {
                responsePassEnd = upIn.writeIndex
                return true
            }
            return false
        default:
            return false
        }
    }

    /// The upstream closed, everything it sent is decoded, and the body is still short.
    /// (A re-framed chunked body may still be waiting for the client to take a range.)
    private func responseBodyEndedEarly() -> Bool {
        // Only once the client has what came before the end, so nothing received is lost.
        guard let up = upstream, up.sawEOF, !isResponseReceived, !isClosed, isOutputFlushed else { return false }
        switch responseMode {
        case .closeToChunked, .closePass, .none:
            return false
        case .chunkedToClose:
            return upIn.readIndex == responsePassEnd && upIn.writeIndex <= responseDecodeIndex
        case .length:
            return upIn.writeIndex <= responsePassEnd
        case .chunkedPass:
            return upIn.writeIndex <= responseDecodeIndex
        }
    }

    private func parseResponseHead() -> Bool {
        guard upIn.readableBytes > 0 else { return false }
        // Only once the client has taken earlier output (interim responses), so heads stay in order.
        guard outBuf.isEmpty else { return false }
        let range: Range<Int>
        do {
            switch try responseScanner.scan(upIn.readable, limits: settings.limits.head) {
            case .incomplete:
                return false
            case .complete(let r):
                range = r
            }
        } catch {
            worker.logUpstreamReason("invalid response head", member: member)
            gatewayError(502, "invalid response from upstream")
            return false
        }
        let headBytes = UnsafeRawBufferPointer(rebasing: upIn.readable[range])
        do {
            try HTTP1Parser.parseResponse(headBytes, requestMethod: head.method, limits: settings.limits.head, into: &response)
        } catch {
            worker.logUpstreamReason("invalid response head: \(error.reason)", member: member)
            gatewayError(502, "invalid response from upstream")
            return false
        }
        member?.responded()
        let headOffset = upIn.readIndex + range.lowerBound
        let bodyStart = upIn.readIndex + range.upperBound
        outBuf.attach(buffers)
        let needed = response.headLength + 384 + (worker.routeTable.bucketCookieName?.count ?? 0)
        if outBuf.capacity - outBuf.writeIndex < needed { outBuf.grow(to: outBuf.writeIndex + needed, pool: buffers) }
        if response.isInterim {
            if head.version == .http11 {
                writeResponseHead(headBytes, interim: true)
            }
            upIn.readIndex = bodyStart
            responseScanner.reset()
            return true
        }
        let isConnectTunnel = head.method == .connect && response.status >= 200 && response.status < 300
        if response.status == 101 || isConnectTunnel {
            guard head.wantsUpgrade || isConnectTunnel else {
                gatewayError(502, "upstream switched protocols unasked")
                return false
            }
            status = response.status
            tunnelHead = Array(inBuf.bytes(from: headStart)[0..<head.headLength])
            writeResponseHead(headBytes, interim: false)
            hasSentResponseHead = true
            upIn.readIndex = bodyStart
            responsePassEnd = upIn.writeIndex
            responsePhase = .tunnel
            requestPhase = .tunnel
            bytesIn += Int64(inBuf.writeIndex - requestPassEnd)
            requestPassEnd = inBuf.writeIndex
            closeAfterResponse = true
            loop.armTimer(self, list: worker.timers.bodyIdle)
            _ = headOffset
            return true
        }
        status = response.status
        // Decide how the body travels before writing the head (it names the framing).
        switch response.framing {
        case .none:
            responseMode = .none
        case .contentLength(let n):
            responseMode = .length
            responseRemaining = n
        case .chunked:
            responseMode = head.version == .http11 ? .chunkedPass : .chunkedToClose
            responseChunked.reset()
        case .untilClose:
            responseMode = head.version == .http11 ? .closeToChunked : .closePass
        }
        if let up = upstream, responseMode == .length || responseMode == .none {
            // Large: still at the splice line after a small first read would have taken its
            // head and the body's first bytes (a body just above the line read that way
            // would be copied in two reads). Medium: beyond what one buffer holds with the head.
            // (A chunked or close-delimited response is recorded when it ends, by its size.)
            let size: ResponseSizeHistory.Size
            if responseMode == .none {
                size = .small
            } else if responseRemaining >= spliceLine + Int64(ResponseSizeHistory.smallFirstRead) {
                size = .large
            } else if responseRemaining > Int64(buffers.blockSize - response.headLength) {
                size = .medium
            } else {
                size = .small
            }
            up.member.responseSizes.record(size)
        }
        if responseMode == .chunkedToClose || responseMode == .closePass { closeAfterResponse = true }
        if !isRequestReceived { closeAfterResponse = true }
        if worker.isDraining { closeAfterResponse = true }
        writeResponseHead(headBytes, interim: false)
        // Only now, with `headBytes` (a view into upIn's block) no longer needed: a body
        // bigger than what the block has left moves in large blocks (a 64 KiB body then
        // takes one read and one write instead of four each).
        switch responseMode {
        case .length where responseRemaining > Int64(upIn.capacity - bodyStart),
            .chunkedPass, .closePass:
            upIn.enlarge(buffers)
        default:
            break
        }
        hasSentResponseHead = true
        upIn.readIndex = bodyStart
        responsePassEnd = bodyStart
        responseDecodeIndex = bodyStart
        responsePhase = .body
        isResponseReceived = responseMode == .none || (responseMode == .length && responseRemaining == 0)
        loop.armTimer(self, list: worker.timers.bodyIdle)
        // Body bytes that came with the head leave in the same write as the head. A body
        // that did not (an origin that writes the head and then sends the file, as nginx
        // does) is waited for: sent alone, the head would be a segment of its own, and the
        // client's kernel answers two short segments with an immediate ACK instead of one
        // carried by the next request. HAProxy sends such a head with MSG_MORE. A body to be
        // spliced waits in the pipe, the head ahead of it (`takePipe`).
        if !isResponseReceived {
            isHeadWaitingForBody = responseMode == .length && bodyStart == upIn.writeIndex
            _ = advanceResponseBody()
        }
        return true
    }

    /// Writes the response head for the client into `outBuf`.
    private func writeResponseHead(_ src: UnsafeRawBufferPointer, interim: Bool) {
        let isTunnel = !interim && head.method == .connect && response.status >= 200 && response.status < 300
        outBuf.append("HTTP/1.1 ")
        outBuf.appendDecimal(Int64(response.status))
        outBuf.append(byte: 0x20)
        outBuf.append(UnsafeRawBufferPointer(rebasing: src[response.reasonSpan.range]))
        outBuf.append("\r\n")
        for field in response.headers {
            if field.isHopByHop { continue }
            if field.kind == .contentLength && (response.framing != .none || isTunnel) { continue }
            outBuf.append(UnsafeRawBufferPointer(rebasing: src[field.name.range]))
            outBuf.append(": ")
            outBuf.append(UnsafeRawBufferPointer(rebasing: src[field.value.range]))
            outBuf.append("\r\n")
        }
        if interim {
            outBuf.append("\r\n")
            return
        }
        if isTunnel {
            // A tunnel: no framing fields, and nothing about persistence (the
            // connection ends with the tunnel).
            outBuf.append("\r\n")
            return
        }
        if response.status == 101 {
            outBuf.append("Connection: upgrade\r\n")
            if response.upgradeIndex >= 0 {
                outBuf.append("Upgrade: ")
                outBuf.append(UnsafeRawBufferPointer(rebasing: src[response.headers[response.upgradeIndex].value.range]))
                outBuf.append("\r\n")
            }
            outBuf.append("\r\n")
            return
        }
        switch responseMode {
        case .length:
            outBuf.append("Content-Length: ")
            outBuf.appendDecimal(responseRemaining)
            outBuf.append("\r\n")
        case .chunkedPass, .closeToChunked:
            outBuf.append("Transfer-Encoding: chunked\r\n")
        case .none, .chunkedToClose, .closePass:
            break
        }
        if decision.issueBucketCookie, let name = worker.routeTable.bucketCookieName {
            outBuf.append("Set-Cookie: ")
            outBuf.append(name)
            outBuf.append(byte: 0x3D)
            outBuf.appendDecimal(Int64(decision.bucket))
            outBuf.append("; Path=/; Max-Age=")
            outBuf.appendDecimal(Int64(worker.routeTable.policy.cohort.bucketCookie?.maxAgeSeconds ?? 0))
            outBuf.append("; HttpOnly; SameSite=Lax\r\n")
        }
        if closeAfterResponse {
            outBuf.append("Connection: close\r\n")
        } else if head.version == .http10 {
            outBuf.append("Connection: keep-alive\r\n")
        }
        outBuf.append("\r\n")
    }

    private func advanceResponseBody() -> Bool {
        guard let up = upstream, !isResponseReceived else { return false }
        let end = upIn.writeIndex
        switch responseMode {
        case .none:
            return false
        case .length:
            guard end > responsePassEnd else { return false }
            let take = min(Int64(end - responsePassEnd), responseRemaining)
            responsePassEnd += Int(take)
            responseRemaining -= take
            if responseRemaining == 0 { isResponseReceived = true }
            return take > 0
        case .chunkedPass:
            guard end > responseDecodeIndex, let base = upIn.base else { return false }
            let all = UnsafeRawBufferPointer(start: base, count: end)
            var index = responseDecodeIndex
            do {
                decoding: while index < end {
                    switch try responseChunked.decode(all, index: &index) {
                    case .data: continue
                    case .needMore: break decoding
                    case .end:
                        isResponseReceived = true
                        break decoding
                    }
                }
            } catch {
                worker.logUpstreamReason("invalid chunked response body", member: member)
                abort(note: "invalid chunked response body")
                return false
            }
            responseDecodeIndex = index
            responsePassEnd = index
            return true
        case .chunkedToClose:
            // Data ranges go out one at a time; framing bytes between them are skipped.
            guard upIn.readIndex == responsePassEnd, end > responseDecodeIndex, let base = upIn.base else { return false }
            let all = UnsafeRawBufferPointer(start: base, count: end)
            var index = responseDecodeIndex
            do {
                switch try responseChunked.decode(all, index: &index) {
                case .data(let r):
                    upIn.readIndex = r.lowerBound
                    responsePassEnd = r.upperBound
                case .needMore:
                    upIn.readIndex = index
                    responsePassEnd = index
                case .end:
                    upIn.readIndex = index
                    responsePassEnd = index
                    isResponseReceived = true
                }
            } catch {
                worker.logUpstreamReason("invalid chunked response body", member: member)
                abort(note: "invalid chunked response body")
                return false
            }
            responseDecodeIndex = index
            return true
        case .closeToChunked:
            guard upIn.readIndex == responsePassEnd, chunkSuffixPending == 0, outBuf.isEmpty else { return false }
            if end > responsePassEnd {
                outBuf.attach(buffers)
                outBuf.appendHex(end - responsePassEnd)
                outBuf.append("\r\n")
                responsePassEnd = end
                chunkSuffixPending = 2
                return true
            }
            if up.sawEOF {
                outBuf.attach(buffers)
                outBuf.append("0\r\n\r\n")
                isResponseReceived = true
                return true
            }
            return false
        case .closePass:
            if end > responsePassEnd {
                responsePassEnd = end
                return true
            }
            if up.sawEOF && upIn.readIndex == end {
                isResponseReceived = true
                return true
            }
            return false
        }
    }

    // MARK: Proxy → client

    private func writeClient() -> Bool {
        guard isWritable else { return false }
        let outCount = outBuf.readableBytes
        let passCount = responsePassEnd - upIn.readIndex
        let suffix = chunkSuffixPending
        guard outCount + max(passCount, 0) + suffix > 0 else { return false }
        let pipe = splicePipe ?? takePipe()
        if isHeadWaitingForBody && pipe == nil {
            // The head alone: wait while the upstream may still send the body (its bytes,
            // its end or an error each end the wait; the body timer bounds it).
            if passCount <= 0, let up = upstream, !up.sawEOF { return false }
            isHeadWaitingForBody = false
        }
        var iov = (iovec(), iovec(), iovec())
        var count: Int32 = 0
        let crlf: StaticString = "\r\n"
        withUnsafeMutableBytes(of: &iov) { raw in
            let v = raw.baseAddress!.assumingMemoryBound(to: iovec.self)
            if outCount > 0 {
                v[Int(count)] = iovec(iov_base: outBuf.base! + outBuf.readIndex, iov_len: outCount)
                count += 1
            }
            if passCount > 0 {
                v[Int(count)] = iovec(iov_base: upIn.base! + upIn.readIndex, iov_len: passCount)
                count += 1
            }
            if suffix > 0 {
                v[Int(count)] = iovec(
                    iov_base: UnsafeMutableRawPointer(mutating: crlf.utf8Start + (2 - suffix)), iov_len: suffix)
                count += 1
            }
        }
        // The whole rest of a response after which the connection closes: the FIN can
        // go out with its last segment (finishIfDone closes or half-closes as soon as
        // the write is complete, which is what pushes the held segment out).
        let closesAfter = closeAfterResponse && isResponseReceived && responsePhase == .body && pipe == nil
        let r: IOResult<Int>
        do {
            r = try withUnsafeBytes(of: &iov) { raw throws(IOError) in
                let v = raw.baseAddress!.assumingMemoryBound(to: iovec.self)
                if let pipe { return try Syscall.writePipe(pipe.writeFD, v, count) }
                return try transport.writev(fd, v, count, closesAfter: closesAfter)
            }
        } catch {
            abort(note: pipe == nil ? "client write failed" : "pipe write failed")
            return false
        }
        switch r {
        case .wouldBlock:
            if pipe == nil { isWritable = false }
            return false
        case .processed(var n):
            if pipe == nil {
                bytesOut += Int64(n)
                if closesAfter { isTailHeld = true }
            } else {
                pipeBytes += n
                // A head held in the pipe leaves it room for the body: one that did not go
                // in whole, or a long one, goes out without waiting.
                if n < outCount + max(passCount, 0) || pipeBytes > settings.limits.bufferBytes {
                    isHeadWaitingForBody = false
                }
            }
            let fromOut = min(n, outCount)
            outBuf.readIndex += fromOut
            n -= fromOut
            if passCount > 0 {
                let fromPass = min(n, passCount)
                upIn.readIndex += fromPass
                n -= fromPass
            }
            if n > 0 { chunkSuffixPending -= n }
            if outBuf.isEmpty {
                outBuf.readIndex = 0
                outBuf.writeIndex = 0
            }
            if responsePhase == .tunnel, let up = upstream, up.sawEOF, upIn.readIndex == upIn.writeIndex, outBuf.isEmpty {
                transport.shutdownWrite(fd)
            }
            return true
        }
    }

    // MARK: Finishing

    private var isOutputFlushed: Bool {
        outBuf.isEmpty && upIn.readIndex >= responsePassEnd && chunkSuffixPending == 0 && pipeBytes == 0
    }

    /// The pipe for a response whose body will be spliced, taken when its head is written
    /// (or, if the buffers had nothing for the client then, when the splice starts):
    /// the head and the body bytes read with it go into the pipe (a copy, as a send would
    /// make) and the spliced body follows them, so the client gets the whole response in
    /// one splice instead of a send and a splice: one system call, and for the client one
    /// wake-up and no short segment. A head that came without body bytes waits there for
    /// them (`isHeadWaitingForBody`), not yet committed. Nil when the body is not spliced.
    private func takePipe() -> SplicePipe? {
        guard responsePhase == .body, responseMode == .length, !isResponseReceived, !isSpliceDeclined,
            transport.canSplice, isSpliceSized, chunkSuffixPending == 0, let up = upstream, !up.sawEOF
        else { return nil }
        guard let pipe = worker.pipes.take() else {
            isSpliceDeclined = true
            return nil
        }
        splicePipe = pipe
        pipeBytes = 0
        return pipe
    }

    /// Moves a large Content-Length response body from the upstream socket to the client
    /// through a pipe (splice(2)), behind everything that came through the buffers (head,
    /// first body bytes), which `writeClient` puts in the pipe first. The pipe goes back to
    /// the worker when it is empty and the body complete; an upstream that ends early is
    /// judged by `responseBodyEndedEarly` once the pipe is flushed, as for buffered bodies.
    private func spliceResponseBody() -> Bool {
        guard responsePhase == .body, responseMode == .length, let up = upstream else { return false }
        if splicePipe == nil {
            // The buffers had nothing for the client when writeClient ran.
            guard outBuf.isEmpty, upIn.readIndex == upIn.writeIndex, responsePassEnd == upIn.writeIndex
            else { return false }
            _ = takePipe()
        }
        guard let pipe = splicePipe else { return false }
        var progress = false
        // What came through the buffers goes into the pipe first (writeClient).
        let isBufferedOutputInPipe = outBuf.isEmpty && upIn.readIndex == upIn.writeIndex
        if responseRemaining > 0 && up.isReadable && !up.sawEOF && isBufferedOutputInPipe {
            do {
                switch try Syscall.splice(from: up.fd, to: pipe.writeFD, Int(min(responseRemaining, 1 << 20))) {
                case .wouldBlock:
                    // With the pipe empty the socket is what is empty; otherwise the pipe
                    // may be full, and emptying it comes first. (A head waiting in the
                    // pipe for its body is not what would fill it.)
                    if pipeBytes == 0 || isHeadWaitingForBody { up.isReadable = false }
                case .processed(0):
                    up.sawEOF = true
                    isHeadWaitingForBody = false
                    progress = true
                case .processed(let n):
                    isHeadWaitingForBody = false
                    pipeBytes += n
                    responseRemaining -= Int64(n)
                    if responseRemaining == 0 { isResponseReceived = true }
                    hasResponseBytes = true
                    loop.armTimer(self, list: worker.timers.bodyIdle)
                    progress = true
                }
            } catch {
                upstreamFailed(error, note: "upstream read failed")
                return false
            }
        }
        if pipeBytes > 0 && isWritable && !isHeadWaitingForBody {
            do {
                switch try Syscall.splice(from: pipe.readFD, to: fd, pipeBytes) {
                case .wouldBlock:
                    isWritable = false
                case .processed(let n):
                    pipeBytes -= n
                    bytesOut += Int64(n)
                    progress = progress || n > 0
                }
            } catch {
                abort(note: "client write failed")
                return false
            }
        }
        if pipeBytes == 0 && (isResponseReceived || up.sawEOF) {
            splicePipe = nil
            worker.pipes.give(pipe, isEmpty: true)
        }
        return progress
    }

    /// Ends the exchange once the response is complete and flushed.
    private func finishIfDone() -> Bool {
        if responsePhase == .tunnel {
            guard let up = upstream else { return false }
            let isClientSideDone = sawEOF && inBuf.readIndex == inBuf.writeIndex
            let isUpstreamSideDone = up.sawEOF && isOutputFlushed
            // A CONNECT tunnel ends when either side closes, once what that side sent is
            // delivered (RFC 9110 §9.3.6); an upgraded connection passes half-closes on
            // and ends when both sides have closed.
            let isDone = head.method == .connect
                ? isClientSideDone || isUpstreamSideDone : isClientSideDone && isUpstreamSideDone
            if isDone {
                logAccess()
                close()
                return true
            }
            return false
        }
        guard responsePhase == .body, isResponseReceived, isOutputFlushed else { return false }
        let requestComplete = requestPhase == .done
        if let up = upstream {
            if responseMode != .length && responseMode != .none {
                // Never spliced: medium once it was more than one buffer (ResponseSizeHistory).
                up.member.responseSizes.record(bytesOut > Int64(buffers.blockSize) ? .medium : .small)
            }
            let reusable = requestComplete && response.isKeepAlive && !up.sawEOF
                && upIn.readIndex == upIn.writeIndex && !worker.isDraining
            upstream = nil
            if reusable {
                up.member.giveBack(up)
            } else {
                loop.close(up)
            }
        }
        logAccess()
        setMember(nil)
        pool = nil
        upIn.release(buffers)
        upOut.release(buffers)
        outBuf.release(buffers)
        // The response indexes point into the released buffer: start the next exchange at 0.
        responsePassEnd = 0
        responseDecodeIndex = 0
        chunkSuffixPending = 0
        responsePhase = .none
        if closeAfterResponse || !requestComplete || worker.isDraining {
            // The client asked to close, sent its whole request and nothing after it: a
            // plain close delivers the response and then FIN (the kernel drops nothing).
            // Otherwise it may still be sending, and a close with unread input would send
            // a reset that can destroy the response: linger instead.
            // (`isRequestReceived`: the whole body was read; an error answer may have left
            // it unread, and the client may still be sending it.)
            // `isReadable` says what epoll reported; a socket not yet in epoll (watchIfNeeded)
            // has reported nothing since the last read, so it is asked directly.
            let isClientDone = requestComplete && isRequestReceived && isHeadParsed && !head.isKeepAlive
                && inBuf.writeIndex == requestPassEnd && !isReadable
                && (isWatched || !transport.hasUnreadInput(fd))
            if isClientDone {
                // A close with input still unread (sent after our last read) resets the
                // connection and discards what the kernel holds. Watched, input may have
                // come since the last event was read: a held tail goes out with the FIN by
                // shutdown first, as it did when it was sent at once. Unwatched, the socket
                // was asked just now, and the close sends the held tail with the FIN itself
                // (the peek takes the place of the shutdown).
                if isTailHeld && isWatched { transport.shutdownWrite(fd) }
                close()
            } else {
                closeGracefully()
            }
            return true
        }
        // Ready for the next request on this connection.
        inBuf.readIndex = requestPassEnd
        headStart = inBuf.readIndex
        requestPassEnd = inBuf.readIndex
        scanner.reset()
        hasServedRequest = true
        if inBuf.isEmpty {
            inBuf.release(buffers)
            detachExchange()
            headStart = 0
            requestPassEnd = 0
            requestPhase = .idle
            loop.armTimer(self, list: worker.timers.clientIdle)
            worker.connectionBecameIdle()
            if sawEOF { close() }
        } else {
            requestPhase = .head
            startNanos = loop.nowNanos
            loop.armTimer(self, list: worker.timers.clientHeader)
        }
        return true
    }

    private func logAccess() {
        // The exchange's byte counts end with it, logged or not: a pipelined request keeps
        // the exchange state, and the size history reads `bytesOut` (finishIfDone).
        defer {
            bytesOut = 0
            bytesIn = 0
        }
        guard worker.accessLog.isEnabled else { return }
        if !tunnelHead.isEmpty {
            tunnelHead.withUnsafeBytes { writeAccessLog(src: $0) }
            tunnelHead = []
        } else {
            writeAccessLog(src: inBuf.bytes(from: headStart))
        }
    }

    /// One access-log line; `src` holds the request head at offset 0 when there is one.
    private func writeAccessLog(src: UnsafeRawBufferPointer) {
        // Only a head parsed for this request, lying inside what `src` holds.
        let hasHead = isHeadParsed && requestPhase != .idle && requestPhase != .head && head.headLength > 0
            && src.count >= head.headLength && Int(head.targetSpan.end) <= head.headLength
        let requestID: UnsafeRawBufferPointer? = nil
        requestIDBytes.withUnsafeBytes { generated in
            let rid: UnsafeRawBufferPointer
            if hasHead && head.requestIDIndex >= 0 {
                rid = UnsafeRawBufferPointer(rebasing: src[head.headers[head.requestIDIndex].value.range])
            } else if hasHead {
                rid = generated
            } else {
                rid = requestID ?? UnsafeRawBufferPointer(start: nil, count: 0)
            }
            worker.accessLog.write(
                AccessLogRecord(
                    client: clientIP,
                    clientPort: clientPort,
                    method: hasHead ? UnsafeRawBufferPointer(rebasing: src[head.methodSpan.range]) : nil,
                    target: hasHead ? UnsafeRawBufferPointer(rebasing: src[head.targetSpan.range]) : nil,
                    version: head.version,
                    status: status,
                    pool: pool?.nameBytes,
                    reason: pool != nil ? decision.reason : nil,
                    member: member?.labelBytes,
                    bytesIn: bytesIn,
                    bytesOut: bytesOut,
                    durationNanos: loop.nowNanos &- startNanos,
                    requestID: rid,
                    note: errorNote
                ))
        }
    }

    // MARK: Failures

    /// The upstream failed. Retries once on a fresh connection when the failure can be a
    /// stale keep-alive close and repeating the request is safe; otherwise answers 502.
    private func upstreamFailed(_ error: IOError, note: StaticString) {
        guard let up = upstream, let member else { return }
        // Safe to repeat: an idempotent method whose body (if any) is still here to resend,
        // or any request of which the upstream received nothing at all.
        let canRetry = up.wasReused && !hasResponseBytes && !hasRetried && requestBodySent == 0
            && (head.method.isIdempotent || !hasWrittenUpstream)
        upstream = nil
        loop.close(up)
        if canRetry {
            hasRetried = true
            hasWrittenUpstream = false
            upIn.readIndex = 0
            upIn.writeIndex = 0
            responsePassEnd = 0
            responseDecodeIndex = 0
            responseScanner.reset()
            connectUpstream(mayReuse: false)
            return
        }
        worker.logUpstreamError(error, member: member, note: note)
        if isResponseCommitted {
            abort(note: note)
        } else {
            gatewayError(502, note)
        }
    }

    /// Answers the client with a gateway error (502/503/504) and drops the upstream.
    private func gatewayError(_ code: Int, _ note: StaticString) {
        if let up = upstream {
            upstream = nil
            loop.close(up)
        }
        errorNote = note
        if isResponseCommitted {
            abort(note: note)
            return
        }
        // A held head never left: it is replaced by the error response.
        isHeadWaitingForBody = false
        hasSentResponseHead = false
        if code == 504, let member { worker.logUpstreamReason("\(note)", member: member) }
        let body: StaticString
        switch code {
        case 502: body = "bad gateway: the upstream server is unreachable or answered badly\n"
        case 503: body = "service unavailable: no upstream server to take the request\n"
        default: body = "gateway timeout: the upstream server did not answer in time\n"
        }
        if !isRequestReceived || requestPhase == .body { closeAfterResponse = true }
        writeErrorResponse(code, body)
        isRequestReceived = isRequestReceived || false
        responsePhase = .body
        responseMode = .none
        isResponseReceived = true
        if requestPhase == .body {
            // The rest of the body will not be read: close after the answer.
            requestPhase = .done
            closeAfterResponse = true
        }
        drive()
    }

    /// A request that cannot be parsed: answer and close (its framing is unknowable).
    private func rejectRequest(_ error: HTTPParseError) {
        errorNote = "bad request"
        worker.logClientReason(error.reason, clientIP: clientIP)
        let body: StaticString
        switch error.status {
        case 414: body = "request line too long\n"
        case 431: body = "request header fields too large\n"
        case 505: body = "HTTP version not supported\n"
        case 417: body = "expectation failed\n"
        default: body = "bad request\n"
        }
        sendErrorAndClose(error.status, body)
    }

    /// A request whose body turned out invalid or too large after forwarding started.
    private func failRequest(_ code: Int, _ body: StaticString) {
        if let up = upstream {
            upstream = nil
            loop.close(up)
        }
        if isResponseCommitted {
            abort(note: errorNote)
            return
        }
        isHeadWaitingForBody = false
        hasSentResponseHead = false
        sendErrorAndClose(code, body)
    }

    private func sendErrorAndClose(_ code: Int, _ body: StaticString) {
        closeAfterResponse = true
        writeErrorResponse(code, body)
        requestPhase = .done
        isRequestReceived = false
        responsePhase = .body
        responseMode = .none
        isResponseReceived = true
        if startNanos == 0 { startNanos = loop.nowNanos }
        drive()
    }

    private func writeErrorResponse(_ code: Int, _ body: StaticString) {
        status = code
        if let pipe = splicePipe {
            // A held head in the pipe is replaced too: the pipe is closed with it.
            splicePipe = nil
            worker.pipes.give(pipe, isEmpty: pipeBytes == 0)
            pipeBytes = 0
        }
        upIn.readIndex = 0
        upIn.writeIndex = 0
        responsePassEnd = 0
        chunkSuffixPending = 0
        outBuf.attach(buffers)
        outBuf.readIndex = 0
        outBuf.writeIndex = 0
        outBuf.append("HTTP/1.1 ")
        outBuf.appendDecimal(Int64(code))
        outBuf.append(byte: 0x20)
        outBuf.append(reasonPhrase(code))
        outBuf.append("\r\nContent-Type: text/plain\r\nContent-Length: ")
        outBuf.appendDecimal(Int64(body.utf8CodeUnitCount))
        outBuf.append(closeAfterResponse ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n")
        outBuf.append(body)
        hasSentResponseHead = true
    }

    private func reasonPhrase(_ code: Int) -> StaticString {
        switch code {
        case 400: return "Bad Request"
        case 403: return "Forbidden"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 417: return "Expectation Failed"
        case 431: return "Request Header Fields Too Large"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Error"
        }
    }

    /// Drops the exchange and the connection without an answer (too late for one).
    private func abort(note: StaticString) {
        if isClosed { return }
        if ex == exchanges.idle {
            close()  // no exchange under way: nothing to note or log
            return
        }
        errorNote = note
        if status == 0 { status = hasSentResponseHead ? response.status : 499 }
        if requestPhase != .idle { logAccess() }
        close()
    }

    /// Half-closes after the last response and discards what the client still sends for
    /// a moment, so the response is not destroyed by a reset (lingering close).
    private func closeGracefully() {
        if sawEOF {
            close()
            return
        }
        transport.shutdownWrite(fd)
        isLingering = true
        inBuf.readIndex = 0
        inBuf.writeIndex = 0
        loop.armTimer(self, list: worker.timers.linger)
        drainLingering()
    }

    private func drainLingering() {
        inBuf.attach(buffers)
        while isReadable {
            inBuf.readIndex = 0
            inBuf.writeIndex = 0
            let r: IOResult<Int>
            do {
                r = try transport.read(fd, inBuf.base!, inBuf.capacity)
            } catch {
                close()
                return
            }
            switch r {
            case .wouldBlock:
                isReadable = false
            case .processed(0):
                close()
                return
            case .processed:
                continue
            }
        }
    }

    /// Releases everything this connection holds.
    func close() {
        if isClosed { return }
        isClosed = true
        setMember(nil)
        if let up = upstream {
            upstream = nil
            loop.close(up)
        }
        inBuf.release(buffers)
        outBuf.release(buffers)
        upIn.release(buffers)
        upOut.release(buffers)
        if let pipe = splicePipe {
            splicePipe = nil
            worker.pipes.give(pipe, isEmpty: pipeBytes == 0)
            pipeBytes = 0
        }
        detachExchange()
        loop.close(self)
        worker.connectionClosed(self)
    }

    /// Shutdown: close now if no exchange is under way; otherwise finish it and close.
    func beginDrain() {
        if requestPhase == .idle && responsePhase == .none {
            close()
        } else {
            closeAfterResponse = true
        }
    }
}

extension UnsafeRawBufferPointer {
    fileprivate subscript(safe i: Int) -> UInt8? {
        i >= 0 && i < count ? self[i] : nil
    }
}

/// ASCII case-insensitive header name comparison against a lowercase name.
enum HeaderName {
    @inline(__always)
    static func matches(_ name: UnsafeRawBufferPointer, _ lower: [UInt8]) -> Bool {
        guard name.count == lower.count else { return false }
        for k in 0..<lower.count {
            let b = name[k]
            if (b >= 0x41 && b <= 0x5A ? b | 0x20 : b) != lower[k] { return false }
        }
        return true
    }

    @inline(__always)
    static func matches(_ name: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        guard name.count == lower.utf8CodeUnitCount else { return false }
        for k in 0..<name.count {
            let b = name[k]
            if (b >= 0x41 && b <= 0x5A ? b | 0x20 : b) != lower.utf8Start[k] { return false }
        }
        return true
    }
}
