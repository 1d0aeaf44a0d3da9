import CTurnoutSys
import Logging
import TurnoutAdminClient
import TurnoutCore
import TurnoutRouting

#if canImport(Glibc)
    import Glibc
#endif

/// The control plane: one thread with its own epoll loop that owns the routing state,
/// serves the admin API, and is the only writer of routing snapshots.
///
/// A change is validated, written to the state file (durable before anything else),
/// recorded in the audit log, turned into a new `RouteTable` with the next generation and
/// posted to every worker; the admin call is answered only once every worker has
/// acknowledged that generation. SIGINT/SIGTERM arrive here too (signalfd) and start the
/// drain. All stored properties are control-thread only unless noted.
public final class ControlPlane {
    public let config: TurnoutConfig
    let logger: Logger
    let store: StateStore
    let audit: AuditLog
    let loop: EventLoop
    /// The admin socket path in use.
    public let socketPath: String
    /// The bound admin TCP port, if the TCP listener is on.
    public private(set) var tcpPort: UInt16?

    private var server: ProxyServer?
    private var ackWakeup: WakeupHandler!
    private var signals: SignalHandler!
    private var listeners: [AdminListener] = []
    private var socketInode: ino_t = 0
    private var connections: [ObjectIdentifier: AdminConnection] = [:]
    private var waiters: [Waiter] = []
    private var statsSequence: UInt64 = 0
    private var tokens: [(name: String, token: [UInt8])] = []
    private var ackTimeoutList = 0
    private var connectionTimeoutList = 0
    private var receivedSignal: Int32 = 0

    /// How long a change waits for the workers' acknowledgements.
    static let acknowledgementTimeoutMs = 10_000

    /// A reply waiting for the workers.
    final class Waiter {
        enum Condition {
            case generation(UInt64)
            case stats(UInt64)
        }

        let condition: Condition
        let connection: AdminConnection
        let reply: () -> AdminReply
        let timer: ControlTimer

        init(condition: Condition, connection: AdminConnection, timer: ControlTimer, reply: @escaping () -> AdminReply) {
            self.condition = condition
            self.connection = connection
            self.timer = timer
            self.reply = reply
        }
    }

    /// Opens the state store's files and binds the admin socket (and TCP listener).
    /// Throws when another Turnout already serves the socket, or a file cannot be used.
    public init(config: TurnoutConfig, store: StateStore, audit: AuditLog, logger: Logger) throws {
        self.config = config
        self.store = store
        self.audit = audit
        self.logger = logger
        self.loop = try EventLoop()
        self.socketPath = config.admin.socketPath ?? AdminEndpoint.defaultSocketPath
        ackTimeoutList = loop.makeTimerList(durationMs: ControlPlane.acknowledgementTimeoutMs)
        connectionTimeoutList = loop.makeTimerList(durationMs: 30_000)
        if let file = config.admin.tokenFile { tokens = try ControlPlane.readTokens(file) }
        let (fd, inode) = try ControlPlane.bindUnixSocket(socketPath)
        socketInode = inode
        listeners.append(AdminListener(fd: fd, isTCP: false, control: self))
        if let listen = config.admin.listen {
            let tcp = try Sockets.makeListener(listen, backlog: 64)
            tcpPort = Sockets.localPort(tcp)
            listeners.append(AdminListener(fd: tcp, isTCP: true, control: self))
        }
        ackWakeup = try WakeupHandler { [unowned self] in self.checkWaiters() }
        signals = try SignalHandler { [unowned self] sig in
            self.receivedSignal = sig
            self.loop.isRunning = false
        }
        for l in listeners { try loop.register(l, events: cturnout_EPOLLIN) }
        try loop.register(ackWakeup, events: cturnout_EPOLLIN)
        try loop.register(signals, events: cturnout_EPOLLIN)
    }

    /// The closure workers call after acknowledging (wakes this loop; any thread).
    public var acknowledgementHandler: @Sendable () -> Void {
        let wakeup = ackWakeup!
        return { wakeup.wake() }
    }

    /// Serves the admin API until SIGINT/SIGTERM, then drains the proxy and returns the signal.
    public func run(server: ProxyServer) -> Int32 {
        self.server = server
        logger.info(
            "admin API listening",
            metadata: ["turnout.admin.socket": "\(socketPath)", "turnout.generation": "\(store.generation)"])
        loop.run()
        logger.info("shutting down: draining in-flight requests", metadata: ["turnout.signal": "\(receivedSignal)"])
        for c in Array(connections.values) { close(c) }
        for l in listeners { loop.close(l) }
        removeSocketFile()
        server.drainAndWait()
        loop.close(ackWakeup)
        loop.close(signals)
        loop.releaseRetired()
        logger.info("stopped")
        return receivedSignal
    }

    // MARK: Connections

    func accepted(_ connection: AdminConnection) {
        do {
            try loop.register(connection, events: cturnout_EPOLLIN | cturnout_EPOLLOUT | cturnout_EPOLLRDHUP | cturnout_EPOLLET)
        } catch {
            loop.close(connection)  // not registered: closes the descriptor and marks it closed
            return
        }
        connections[ObjectIdentifier(connection)] = connection
        loop.armTimer(connection, list: connectionTimeoutList)
        if case .process(let uid, _) = connection.peer, uid != 0 && uid != geteuid() {
            connection.answer(AdminReply.error(AdminError(403, "uid \(uid) may not use this admin socket")))
            return
        }
        connection.handleEvent(cturnout_EPOLLIN)
    }

    func close(_ connection: AdminConnection) {
        guard connections.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        waiters.removeAll { w in
            if w.connection === connection {
                loop.cancelTimer(w.timer)
                return true
            }
            return false
        }
        loop.close(connection)
    }

    func tokenName(for presented: String) -> String? {
        let bytes = Array(presented.utf8)
        var found: String?
        for (name, token) in tokens {
            var diff = UInt8(truncatingIfNeeded: token.count ^ bytes.count)
            for i in 0..<token.count { diff |= token[i] ^ (i < bytes.count ? bytes[i] : 0) }
            if diff == 0 { found = name }
        }
        return found
    }

    // MARK: Waiting for the workers

    /// Answers `connection` with `reply()` once the condition holds for every worker.
    func answerWhen(_ condition: Waiter.Condition, _ connection: AdminConnection, reply: @escaping () -> AdminReply) {
        let timer = ControlTimer { [unowned self] in self.waiterTimedOut() }
        waiters.append(Waiter(condition: condition, connection: connection, timer: timer, reply: reply))
        loop.armTimer(timer, list: ackTimeoutList)
        checkWaiters()
    }

    private func isSatisfied(_ condition: Waiter.Condition) -> Bool {
        guard let server else { return true }
        let reports = server.workers.map { $0.lastReport() }
        switch condition {
        case .generation(let g): return reports.allSatisfy { $0.generation >= g }
        case .stats(let s): return reports.allSatisfy { $0.statsSequence >= s }
        }
    }

    private func checkWaiters() {
        var still: [Waiter] = []
        for w in waiters {
            if isSatisfied(w.condition) {
                loop.cancelTimer(w.timer)
                w.connection.answer(w.reply())
            } else {
                still.append(w)
            }
        }
        waiters = still
    }

    private func waiterTimedOut() {
        let now = waiters
        waiters = []
        for w in now {
            if isSatisfied(w.condition) {
                loop.cancelTimer(w.timer)
                w.connection.answer(w.reply())
            } else if w.timer.hasFired {
                logger.error("workers did not acknowledge within 10 s")
                w.connection.answer(AdminReply.error(AdminError(504, "not every worker acknowledged within 10 s; the change is saved and will apply")))
            } else {
                waiters.append(w)
            }
        }
    }

    /// Posts a snapshot to every worker.
    func publish(_ table: RouteTable) {
        server?.workers.forEach { $0.post(.install(table)) }
    }

    /// Asks every worker for live counts; returns the sequence to wait for.
    func requestStats() -> UInt64 {
        statsSequence += 1
        server?.workers.forEach { $0.post(.collectStats(statsSequence)) }
        return statsSequence
    }

    var workerReports: [WorkerReport] { server?.workers.map { $0.lastReport() } ?? [] }

    // MARK: Socket and token files

    /// Binds the admin Unix socket with mode 0600 under a temporary name, then renames it
    /// over `path`: a stale socket is replaced, a live one (another Turnout answering)
    /// or a non-socket file is an error.
    static func bindUnixSocket(_ path: String) throws -> (Int32, ino_t) {
        let dir = FileSystem.parentDirectory(path)
        if !dir.isEmpty && !FileSystem.exists(dir) { try FileSystem.createDirectories(dir, mode: 0o700) }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw ConfigurationError("\(path) exists and is not a socket; refusing to replace it")
            }
            let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            defer { Glibc.close(probe) }
            let live = withUnixAddress(path) { Glibc.connect(probe, $0, $1) } == 0
            if live { throw ConfigurationError("another turnout is serving the admin socket \(path)") }
        }
        let temp = path + ".\(getpid())"
        guard temp.utf8.count < 108 else { throw ConfigurationError("admin socket path \(path) is too long") }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw IOError("socket(AF_UNIX)", errno: errno) }
        unlink(temp)
        let oldMask = umask(0o177)
        let bound = withUnixAddress(temp) { Glibc.bind(fd, $0, $1) }
        umask(oldMask)
        if bound != 0 {
            let e = errno
            Glibc.close(fd)
            throw IOError("bind(admin socket)", errno: e)
        }
        chmod(temp, 0o600)
        if Glibc.listen(fd, 64) != 0 || rename(temp, path) != 0 {
            let e = errno
            Glibc.close(fd)
            unlink(temp)
            throw IOError("listen/rename(admin socket)", errno: e)
        }
        var bound_st = stat()
        stat(path, &bound_st)
        return (fd, bound_st.st_ino)
    }

    private func removeSocketFile() {
        var st = stat()
        if stat(socketPath, &st) == 0 && st.st_ino == socketInode { unlink(socketPath) }
    }

    static func withUnixAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.prefix(raw.count - 1).enumerated() { raw[i] = b }
        }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// `NAME:TOKEN` per line (a bare token is named "token"); `#` starts a comment.
    static func readTokens(_ path: String) throws -> [(name: String, token: [UInt8])] {
        guard let data = FileSystem.contents(path) else {
            throw ConfigurationError("cannot read the admin token file \(path)")
        }
        var out: [(String, [UInt8])] = []
        for raw in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let line = Text.trimming(String(raw), where: Text.isWhitespace)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if let colon = line.firstIndex(of: ":") {
                out.append((String(line[..<colon]), Array(line[line.index(after: colon)...].utf8)))
            } else {
                out.append(("token", Array(line.utf8)))
            }
        }
        guard !out.isEmpty, out.allSatisfy({ $0.1.count >= 16 }) else {
            throw ConfigurationError("the admin token file \(path) needs tokens of at least 16 characters")
        }
        return out
    }
}
