import CTurnoutSys
import TurnoutRouting
#if canImport(Glibc)
import Glibc
#endif

/// One TCP connection to an upstream member. While a client connection uses it, its
/// events go to that owner; while idle in the member's pool, any readability (the
/// server closed it or sent stray bytes) or the idle timer closes it.
///
/// Loop-thread only.
final class UpstreamConnection: EventHandler {
    /// Strong: a connection keeps its member's state alive across snapshot changes.
    var member: MemberState
    /// The client connection using it, unretained. Called at +0: the owner is registered
    /// with the loop, which frees no handler before the end of an iteration.
    var owner: Unmanaged<ClientConnection>?
    var isConnected = false
    /// True once it has carried a complete exchange (a failure on it may be a stale close).
    var wasReused = false
    var isReadable = false
    var isWritable = false
    var sawEOF = false
    /// An event reported the server's FIN or an error (see `ClientConnection.hasPendingEOF`).
    var hasPendingEOF = false

    init(fd: Int32, member: MemberState) {
        self.member = member
        super.init(fd: fd)
    }

    override func handleEvent(_ events: UInt32) {
        if let owner {
            owner._withUnsafeGuaranteedRef { $0.upstreamEvent(events) }
        } else if events & (cturnout_EPOLLIN | cturnout_EPOLLRDHUP | cturnout_EPOLLHUP | cturnout_EPOLLERR) != 0 {
            // Idle: the server closed it or sent bytes nobody asked for. (Writability alone
            // means nothing here: edge-triggered EPOLLOUT fires again whenever ACKs free
            // send-buffer space, also after the connection went back to the pool.)
            member.closeIdle(self)
        }
    }

    override func handleTimeout() {
        if let owner {
            owner._withUnsafeGuaranteedRef { $0.upstreamTimeout() }
        } else {
            member.closeIdle(self)
        }
    }
}

/// Per-worker state of one pool member: its address and idle keep-alive connections.
final class MemberState {
    let address: MemberAddress
    let socketAddress: SocketAddress
    /// `host:port`, for logs.
    let label: String
    /// The same as bytes, for the access log.
    let labelBytes: [UInt8]
    let weight: Int
    /// False while an operator has drained the member (no new requests).
    let takesTraffic: Bool
    /// False when idle connections must not be kept (the member left the snapshot, or
    /// its pool gets no weighted traffic): busy connections close after their response.
    var keepsIdle = true
    unowned(unsafe) let worker: Worker
    /// The worker's loop, held directly: calls through `worker` retained it each time.
    let loop: EventLoop
    // Loop-thread only: most recently used last.
    private(set) var idle: [UpstreamConnection] = []
    /// Requests in flight to this member from this worker (for power-of-two-choices).
    var outstanding = 0
    /// Consecutive failed connection attempts (passive health).
    var failures = 0
    /// Loop time (ms) until which the member counts as down; 0 when up.
    var downUntil: UInt64 = 0
    /// How large this member's recent responses were, for the size of a head's first read.
    var responseSizes = ResponseSizeHistory()

    init(address: MemberAddress, weight: Int, takesTraffic: Bool, worker: Worker) throws {
        guard let sa = SocketAddress(host: address.host, port: address.port) else {
            throw ConfigurationError("member address \(address) is not an IP literal")
        }
        self.address = address
        self.weight = weight
        self.takesTraffic = takesTraffic
        self.socketAddress = sa
        self.label = address.description
        self.labelBytes = Array(address.description.utf8)
        self.worker = worker
        self.loop = worker.loop
        idle.reserveCapacity(worker.settings.upstream.maxIdlePerMember)
    }

    /// Takes the most recently used idle connection, if any.
    func takeIdle() -> UpstreamConnection? {
        guard let c = idle.popLast() else { return nil }
        loop.cancelTimer(c)
        return c
    }

    /// Starts a new non-blocking connection; the caller waits for writability.
    func connectNew() throws(IOError) -> UpstreamConnection {
        let fd = try Sockets.makeClientSocket(family: socketAddress.family)
        let conn = UpstreamConnection(fd: fd, member: self)
        do {
            let r = try socketAddress.connect(fd)
            if case .processed = r {
                conn.isConnected = true
                conn.isWritable = true
            }
            try loop.register(conn, events: Worker.edgeEvents)
        } catch {
            Syscall.close(fd)
            conn.fd = -1
            throw error
        }
        return conn
    }

    /// Returns a connection after a clean exchange; closes it when the pool is full or draining.
    func giveBack(_ c: UpstreamConnection) {
        c.owner = nil
        c.wasReused = true
        c.isReadable = false
        if worker.isDraining || !keepsIdle || idle.count >= worker.settings.upstream.maxIdlePerMember {
            loop.close(c)
            return
        }
        idle.append(c)
        loop.armTimer(c, list: worker.timers.upstreamIdle)
    }

    /// Moves the idle connections of `other` (the same member in the previous snapshot) here.
    func adoptIdle(from other: MemberState) {
        for c in other.idle {
            c.member = self
            idle.append(c)
        }
        other.idle.removeAll()
        failures = other.failures
        downUntil = other.downUntil
    }

    /// Up unless recent connection failures marked it down (nginx's max_fails/fail_timeout).
    func isUp(now: UInt64) -> Bool { downUntil <= now }

    /// A connection attempt failed; after `max_fails` in a row the member is down for `fail_timeout`.
    func connectFailed(now: UInt64) {
        failures += 1
        if failures >= worker.settings.upstream.maxFails {
            downUntil = now + UInt64(worker.settings.upstream.failTimeoutMs)
            failures = 0
        }
    }

    /// The member answered: it is up.
    func responded() {
        failures = 0
        downUntil = 0
    }

    func closeIdle(_ c: UpstreamConnection) {
        if let i = idle.firstIndex(where: { $0 === c }) { idle.remove(at: i) }
        loop.close(c)
    }

    func closeAllIdle() {
        for c in idle { loop.close(c) }
        idle.removeAll()
    }
}

/// Per-worker state of one pool: its members and the balancer over them.
final class PoolState {
    let name: String
    let nameBytes: [UInt8]
    /// The pool as the snapshot describes it (members, weights, drained flags, policy).
    let definition: Pool
    let members: [MemberState]
    let policy: BalancePolicy
    private let weights: [Int]
    private var balancer: SmoothWeightedRoundRobin

    /// A member that stays across snapshots takes over its predecessor's idle connections
    /// and health afterwards (`MemberState.adoptIdle`), so a change never drops a warm pool.
    init(pool: Pool, worker: Worker) throws {
        name = pool.name
        nameBytes = Array(pool.name.utf8)
        definition = pool
        members = try pool.members.map {
            try MemberState(address: $0.address, weight: $0.weight, takesTraffic: $0.takesTraffic, worker: worker)
        }
        policy = pool.balance
        weights = pool.members.map { $0.takesTraffic ? $0.weight : 0 }
        balancer = SmoothWeightedRoundRobin(weights: weights)
    }

    /// True when some member with weight can take a request now.
    func isAvailable(now: UInt64) -> Bool {
        for m in members where m.takesTraffic && m.isUp(now: now) { return true }
        return false
    }

    /// The next member by the pool's policy, skipping members that are down. When every
    /// member is down one is still returned (the attempt may find it back up), as nginx
    /// does once its fail timeouts expire.
    func pickMember(now: UInt64, random: UInt64) -> MemberState? {
        let members = self.members
        let index: Int?
        switch policy {
        case .roundRobin:
            index = balancer.next(isEligible: { members[$0].isUp(now: now) }) ?? balancer.next(isEligible: { _ in true })
        case .powerOfTwoChoices:
            index = PowerOfTwoChoices.pick(
                weights: weights, random: random, outstanding: { members[$0].outstanding },
                isEligible: { members[$0].isUp(now: now) })
                ?? PowerOfTwoChoices.pick(
                    weights: weights, random: random, outstanding: { members[$0].outstanding }, isEligible: { _ in true })
        }
        return index.map { members[$0] }
    }
}
