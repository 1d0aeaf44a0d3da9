import CTurnoutSys
import Logging
import TurnoutHTTP
import TurnoutRouting
#if canImport(Glibc)
import Glibc
#endif

/// The timer lists of a worker, one per timeout kind.
struct WorkerTimers {
    var clientHeader = 0
    var clientIdle = 0
    var bodyIdle = 0
    var upstreamConnect = 0
    var upstreamResponse = 0
    var upstreamIdle = 0
    var linger = 0
    var drain = 0
}

/// A message from the control thread to a worker.
public enum WorkerMessage: Sendable {
    /// Stop accepting, finish in-flight exchanges, then stop (or at the drain deadline).
    case drain
    /// Route every request whose head completes from now on by this snapshot, then
    /// acknowledge its generation.
    case install(RouteTable)
    /// Publish live per-member counts, then acknowledge with this sequence number.
    case collectStats(UInt64)
}

/// Live counts of one member as one worker sees them.
public struct MemberStats: Sendable, Equatable {
    public var inFlight: Int
    public var idleConnections: Int
    public var isUp: Bool

    public init(inFlight: Int = 0, idleConnections: Int = 0, isUp: Bool = true) {
        self.inFlight = inFlight
        self.idleConnections = idleConnections
        self.isUp = isUp
    }
}

/// What a worker reported last: the routing generation it runs and live counts per
/// pool and member (in the order of that generation's table).
public struct WorkerReport: Sendable {
    public var generation: UInt64 = 0
    public var statsSequence: UInt64 = 0
    public var members: [[MemberStats]] = []
    public var fallbacks = 0
    /// Event-loop waits answered while busy-polling, and waits that could sleep.
    public var polledWaits: UInt64 = 0
    public var blockingWaits: UInt64 = 0

    public init() {}
}

/// One data-plane thread: its own epoll loop, listening sockets (SO_REUSEPORT),
/// client connections, upstream pools, timers and access-log buffer. Workers share
/// nothing mutable; the control thread talks to one only through `post(_:)`.
public final class Worker {
    static let edgeEvents = cturnout_EPOLLIN | cturnout_EPOLLOUT | cturnout_EPOLLRDHUP | cturnout_EPOLLET

    public let index: Int
    let settings: ProxySettings
    let logger: Logger

    // Loop-thread only (created before the thread starts, then touched only by it).
    let loop: EventLoop
    let buffers: BufferPool
    let exchanges: ExchangePool
    let pipes = PipePool()
    var routeTable: RouteTable
    var pools: [PoolState] = []
    let accessLog: AccessLogWriter
    var timers = WorkerTimers()
    private(set) var isDraining = false
    let requestIDHeaderBytes: [UInt8]
    private var listeners: [ListenerHandler] = []
    /// Open client connections. Each knows its index here (`ClientConnection.connectionIndex`),
    /// so adding one appends and removing one moves the last into its place: no hashing, as
    /// a dictionary keyed by identity did twice per connection.
    private var connections: [ClientConnection] = []
    private var randomState: (UInt64, UInt64) = (0, 0)
    /// Requests routed to another pool because theirs had no available member.
    private(set) var fallbackCount = 0
    private var fallbacksSinceLog = 0
    private var lastFallbackLog: UInt64 = 0
    private var ignoredOverrides = 0
    private var lastIgnoredOverrideLog: UInt64 = 0
    private var drainTimer: DrainTimer?
    private var wakeup: WakeupHandler!

    // Shared with the control thread, guarded by `mailboxLock`.
    private var mailboxLock = pthread_mutex_t()
    private var mailbox: [WorkerMessage] = []
    private var report = WorkerReport()
    /// Called on the worker's thread after it acknowledged something (set before `start`).
    public var onAcknowledge: @Sendable () -> Void = {}
    private var thread = pthread_t()

    /// Creates a worker around already-bound listening sockets it will own.
    public init(
        index: Int, settings: ProxySettings, routeTable: RouteTable, listenerFDs: [Int32],
        accessLogFD: Int32, logger: Logger
    ) throws {
        self.index = index
        self.settings = settings
        self.routeTable = routeTable
        self.logger = logger
        self.loop = try EventLoop()
        self.buffers = BufferPool(blockSize: settings.limits.bufferBytes)
        self.exchanges = ExchangePool(maxTrailerBytes: settings.limits.head.maxHeadBytes)
        self.accessLog = AccessLogWriter(fd: accessLogFD, format: settings.accessLog.format)
        self.requestIDHeaderBytes = Array(settings.headers.requestIDHeader.utf8)
        self.maxConnections = max(1, (settings.limits.maxConnections + settings.workers - 1) / max(1, settings.workers))
        pthread_mutex_init(&mailboxLock, nil)
        withUnsafeMutableBytes(of: &randomState) { _ = cturnout_fill_random($0.baseAddress, $0.count) }
        if randomState == (0, 0) { randomState = (0x9E37_79B9_7F4A_7C15, 0xBF58_476D_1CE4_E5B9) }

        let t = settings.timeouts
        timers.clientHeader = loop.makeTimerList(durationMs: t.clientHeaderMs)
        timers.clientIdle = loop.makeTimerList(durationMs: t.clientIdleMs)
        timers.bodyIdle = loop.makeTimerList(durationMs: t.bodyIdleMs)
        timers.upstreamConnect = loop.makeTimerList(durationMs: t.upstreamConnectMs)
        timers.upstreamResponse = loop.makeTimerList(durationMs: t.upstreamResponseMs)
        timers.upstreamIdle = loop.makeTimerList(durationMs: t.upstreamIdleMs)
        timers.linger = loop.makeTimerList(durationMs: 2_000)
        timers.drain = loop.makeTimerList(durationMs: t.drainMs)

        pools = try routeTable.pools.map { try PoolState(pool: $0, worker: self) }
        report.generation = routeTable.generation
        for fd in listenerFDs {
            let l = ListenerHandler(fd: fd, worker: self)
            try loop.register(l, events: cturnout_EPOLLIN | cturnout_EPOLLET)
            listeners.append(l)
        }
        wakeup = try WakeupHandler { [unowned self] in self.readMailbox() }
        try loop.register(wakeup, events: cturnout_EPOLLIN)
        loop.busyPoll = BusyPollWindow(maxNs: UInt64(settings.busyPollMicroseconds) * 1_000)
        loop.afterIteration = { [accessLog] in accessLog.flush() }
    }

    deinit {
        pthread_mutex_destroy(&mailboxLock)
    }

    // MARK: Thread

    /// Starts the worker's thread.
    public func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        let r = pthread_create(&thread, nil, { arg in
            let worker = Unmanaged<Worker>.fromOpaque(arg!).takeRetainedValue()
            worker.run()
            return nil
        }, box)
        precondition(r == 0, "pthread_create failed: \(r)")
    }

    /// Waits for the worker's thread to end.
    public func join() {
        pthread_join(thread, nil)
    }

    /// Sends a message to the worker; safe from any thread.
    public func post(_ message: WorkerMessage) {
        pthread_mutex_lock(&mailboxLock)
        mailbox.append(message)
        pthread_mutex_unlock(&mailboxLock)
        wakeup.wake()
    }

    private func run() {
        loop.run()
        // Stopped: release whatever is left.
        for c in Array(connections) { c.close() }
        for p in pools { for m in p.members { m.closeAllIdle() } }
        for l in listeners { loop.close(l) }
        loop.close(wakeup)
        loop.releaseRetired()
        accessLog.flush()
    }

    private func readMailbox() {
        pthread_mutex_lock(&mailboxLock)
        let messages = mailbox
        mailbox.removeAll()
        pthread_mutex_unlock(&mailboxLock)
        var acknowledged = false
        for m in messages {
            switch m {
            case .drain:
                beginDrain()
            case .install(let table):
                install(table)
                acknowledged = true
            case .collectStats(let sequence):
                publishStats(sequence)
                acknowledged = true
            }
        }
        if acknowledged { onAcknowledge() }
    }

    /// The last report (generation acknowledged, stats); safe from any thread.
    public func lastReport() -> WorkerReport {
        pthread_mutex_lock(&mailboxLock)
        defer { pthread_mutex_unlock(&mailboxLock) }
        return report
    }

    /// Swaps in a new routing snapshot. Pools and members that stay keep their state
    /// (idle connections, balancer position, passive health); members that left, or that
    /// no longer take traffic, lose their idle connections, and their busy ones close
    /// after the response in flight.
    private func install(_ table: RouteTable) {
        var old: [String: PoolState] = [:]
        for p in pools { old[p.name] = p }
        var newPools: [PoolState] = []
        var kept = Set<ObjectIdentifier>()
        for pool in table.pools {
            let existing = old[pool.name]
            let state: PoolState
            if let existing, existing.definition == pool {
                state = existing
            } else {
                do {
                    state = try PoolState(pool: pool, worker: self)
                } catch {
                    // Addresses were validated when the change was accepted; keep serving.
                    logger.error("cannot install a pool", metadata: ["turnout.pool": "\(pool.name)", "turnout.error": "\(error)"])
                    return
                }
            }
            newPools.append(state)
            for m in state.members { kept.insert(ObjectIdentifier(m)) }
        }
        // Every pool built: members that stayed take over their idle connections and health.
        for state in newPools {
            guard let existing = old[state.name], existing !== state else { continue }
            for m in state.members {
                if let previous = existing.members.first(where: { $0.address == m.address }) { m.adoptIdle(from: previous) }
            }
        }
        // Pools that no split sends traffic to keep no idle connections (overrides may
        // still reach them: a new connection is opened then).
        for (i, p) in newPools.enumerated() {
            let weighted = table.receivesWeightedTraffic(poolIndex: i)
            for m in p.members {
                m.keepsIdle = weighted && m.takesTraffic
                if !m.keepsIdle { m.closeAllIdle() }
            }
        }
        for p in pools {
            for m in p.members where !kept.contains(ObjectIdentifier(m)) {
                m.keepsIdle = false
                m.closeAllIdle()
            }
        }
        pools = newPools
        routeTable = table
        pthread_mutex_lock(&mailboxLock)
        report.generation = table.generation
        pthread_mutex_unlock(&mailboxLock)
    }

    private func publishStats(_ sequence: UInt64) {
        let now = loop.now
        let members = pools.map { p in
            p.members.map { MemberStats(inFlight: $0.outstanding, idleConnections: $0.idle.count, isUp: $0.isUp(now: now)) }
        }
        pthread_mutex_lock(&mailboxLock)
        report.members = members
        report.fallbacks = fallbackCount
        report.polledWaits = loop.polledWaits
        report.blockingWaits = loop.blockingWaits
        report.statsSequence = sequence
        pthread_mutex_unlock(&mailboxLock)
    }

    private func beginDrain() {
        guard !isDraining else { return }
        isDraining = true
        for l in listeners { loop.close(l) }
        listeners.removeAll()
        for p in pools { for m in p.members { m.closeAllIdle() } }
        let timer = DrainTimer(worker: self)
        drainTimer = timer
        loop.armTimer(timer, list: timers.drain)
        for c in Array(connections) { c.beginDrain() }
        stopIfDrained()
    }

    fileprivate func drainDeadlinePassed() {
        logger.warning("drain timeout: closing remaining connections", metadata: ["turnout.worker": "\(index)", "turnout.connections": "\(connections.count)"])
        loop.isRunning = false
    }

    private func stopIfDrained() {
        if isDraining && connections.isEmpty {
            if let t = drainTimer { loop.cancelTimer(t) }
            loop.isRunning = false
        }
    }

    // MARK: Connections

    /// At the limit, closes the oldest idle keep-alive connection for the one just
    /// accepted, as nginx does: an idle client can reconnect, a new one would wait.
    private func makeRoom() {
        guard connections.count >= maxConnections, let oldest = oldestKeepAlive() else { return }
        oldest.close()
        reclaimedIdle += 1
        if loop.now >= lastReclaimLog + 1000 {
            lastReclaimLog = loop.now
            logger.notice(
                "connection limit reached: closing the oldest idle keep-alive connections for new ones",
                metadata: ["turnout.connections": "\(connections.count)", "turnout.closed": "\(reclaimedIdle)",
                           "turnout.worker": "\(index)"])
            reclaimedIdle = 0
        }
    }

    fileprivate func accepted(fd: Int32, address: SocketAddress) {
        makeRoom()
        let c = ClientConnection(fd: fd, address: address, worker: self)
        // Into epoll only once it has to wait for the client (ClientConnection.watchIfNeeded).
        loop.attach(c)
        c.connectionIndex = connections.count
        connections.append(c)
        c.start()
    }

    func connectionClosed(_ c: ClientConnection) {
        let i = c.connectionIndex
        if i >= 0 && i < connections.count && connections[i] === c {
            let last = connections.removeLast()
            if last !== c {
                connections[i] = last
                last.connectionIndex = i
            }
            c.connectionIndex = -1
        }
        if isAtConnectionLimit && connections.count < maxConnections {
            isAtConnectionLimit = false
            for l in listeners { loop.enqueueReady(l) }
        }
        stopIfDrained()
    }

    /// A connection went idle: if accepting paused at the limit, it can now be reclaimed.
    func connectionBecameIdle() {
        if isAtConnectionLimit {
            isAtConnectionLimit = false
            for l in listeners { loop.enqueueReady(l) }
        }
    }

    /// This worker's share of `limits.max_connections`.
    let maxConnections: Int
    /// True while the listeners are paused because `maxConnections` are open.
    private(set) var isAtConnectionLimit = false
    private var reclaimedIdle = 0
    private var lastReclaimLog: UInt64 = 0

    /// The idle keep-alive connection idle the longest (among the 32 oldest idle-timer
    /// entries; connections that have not sent a first request are not reclaimed).
    private func oldestKeepAlive() -> ClientConnection? {
        var h = loop.oldestTimer(on: timers.clientIdle)
        var looked = 0
        while let handler = h, looked < 32 {
            if let c = handler as? ClientConnection, c.isIdleKeepAlive { return c }
            h = handler.timerNext?.takeUnretainedValue()
            looked += 1
        }
        return nil
    }

    /// False when the connection limit is reached and no idle keep-alive connection can
    /// make room (the listener then stops accepting until a connection closes).
    func mayAccept() -> Bool {
        if connections.count < maxConnections || oldestKeepAlive() != nil { return true }
        if !isAtConnectionLimit {
            isAtConnectionLimit = true
            logger.warning(
                "connection limit reached: new connections wait in the listen queue",
                metadata: ["turnout.connections": "\(connections.count)", "turnout.worker": "\(index)"])
        }
        return false
    }

    // MARK: Helpers for connections

    /// 64 random bits (xorshift128+; for balancing and new buckets, not secrets).
    func nextRandom() -> UInt64 {
        var (s1, s0) = randomState
        randomState.0 = s0
        s1 ^= s1 << 23
        randomState.1 = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26)
        return randomState.1 &+ s0
    }

    /// Bit `i` set when pool `i` has a member that can take a request now.
    func availablePools() -> UInt64 {
        var mask: UInt64 = 0
        let now = loop.now
        for (i, p) in pools.enumerated() where p.isAvailable(now: now) { mask |= 1 << UInt64(i) }
        return mask
    }

    /// Logs an override the router did not follow: at most one line a second per worker
    /// (the public can send overrides at will), with the count since the last line.
    func logIgnoredOverride(_ outcome: IgnoredOverride, clientIP: IPAddressText) {
        let why: String
        switch outcome {
        case .none: return
        case .unknownPool: why = "it names no pool"
        case .untrusted: why = "the client is not trusted to pick a pool"
        case .unavailable: why = "the pool it names has no available member"
        }
        ignoredOverrides += 1
        guard loop.now >= lastIgnoredOverrideLog + 1000 else { return }
        lastIgnoredOverrideLog = loop.now
        logger.info(
            "ignored a pool override: \(why)",
            metadata: [
                "turnout.client": "\(clientIP.string)",
                "turnout.requests": "\(ignoredOverrides)", "turnout.worker": "\(index)",
            ])
        ignoredOverrides = 0
    }

    /// Counts a request the split meant for a pool without available members; logs at
    /// most once a second with the count since the last line.
    func noteFallback(to other: PoolState) {
        fallbackCount += 1
        fallbacksSinceLog += 1
        guard loop.now >= lastFallbackLog + 1000 else { return }
        lastFallbackLog = loop.now
        logger.warning(
            "a pool of the split has no available member: requests go to another pool",
            metadata: [
                "turnout.fallback": "\(other.name)", "turnout.requests": "\(fallbacksSinceLog)",
                "turnout.worker": "\(index)",
            ])
        fallbacksSinceLog = 0
    }

    /// 32 random hex digits (xorshift128+ seeded from getrandom; ids, not secrets).
    func fillRequestID(_ out: inout [UInt8]) {
        let hex: StaticString = "0123456789abcdef"
        out.withUnsafeMutableBufferPointer { buf in
            for half in 0..<2 {
                var (s1, s0) = randomState
                randomState.0 = s0
                s1 ^= s1 << 23
                randomState.1 = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26)
                var v = randomState.1 &+ s0
                for k in 0..<16 {
                    buf[half * 16 + k] = hex.utf8Start[Int(v & 0xF)]
                    v >>= 4
                }
            }
        }
    }

    func logUpstreamError(_ error: IOError, member: MemberState, note: StaticString) {
        logger.warning(
            "\(note)",
            metadata: ["turnout.member": "\(member.label)", "turnout.error": "\(error)", "turnout.worker": "\(index)"])
    }

    func logUpstreamReason(_ reason: String, member: MemberState?) {
        logger.warning(
            "\(reason)", metadata: ["turnout.member": "\(member?.label ?? "-")", "turnout.worker": "\(index)"])
    }

    func logClientReason(_ reason: String, clientIP: IPAddressText) {
        logger.info(
            "rejected request: \(reason)",
            metadata: ["turnout.client": "\(clientIP.string)", "turnout.worker": "\(index)"])
    }
}

/// Accepts connections on one listening socket of a worker.
final class ListenerHandler: EventHandler {
    unowned(unsafe) let worker: Worker
    private var address = sockaddr_storage()

    init(fd: Int32, worker: Worker) {
        self.worker = worker
        super.init(fd: fd)
    }

    override func handleEvent(_ events: UInt32) {
        acceptSome()
    }

    override func handleReady() {
        acceptSome()
    }

    private func acceptSome() {
        // A bounded batch per turn keeps accepting fair to established connections.
        for _ in 0..<64 {
            guard worker.mayAccept() else { return }
            let r: IOResult<Int32>
            do {
                r = try Syscall.accept(fd, &address)
            } catch {
                // EMFILE/ENFILE/ENOBUFS: leave the queue and try again next turn.
                worker.logger.error("accept failed", metadata: ["turnout.error": "\(error)"])
                return
            }
            switch r {
            case .wouldBlock:
                return
            case .processed(let client):
                var sa = SocketAddress()
                sa.storage = address
                worker.accepted(fd: client, address: sa)
            }
        }
        worker.loop.enqueueReady(self)
    }
}

/// Fires when a draining worker's deadline passes.
final class DrainTimer: EventHandler {
    unowned(unsafe) let worker: Worker

    init(worker: Worker) {
        self.worker = worker
        super.init(fd: -1)
    }

    override func handleTimeout() {
        worker.drainDeadlinePassed()
    }
}
