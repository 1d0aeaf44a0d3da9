import CTurnoutSys
import Logging
import TurnoutCore
import TurnoutRouting
#if canImport(Glibc)
import Glibc
#endif

/// Runs the data plane for a configuration: binds every listener once per worker
/// (SO_REUSEPORT), starts the worker threads, and drains them on shutdown.
public final class ProxyServer {
    public let config: TurnoutConfig
    private let logger: Logger
    public private(set) var workers: [Worker] = []
    /// The snapshot workers start with (the state file's, or the configuration's).
    private let initialTable: RouteTable
    private var accessLogFD: Int32 = -1
    private var ownsAccessLogFD = false
    /// The ports actually bound, in listener order (useful when a port was 0).
    public private(set) var boundPorts: [UInt16] = []

    public init(config: TurnoutConfig, routeTable: RouteTable? = nil, logger: Logger) {
        self.config = config
        self.logger = logger
        self.initialTable = routeTable ?? config.makeRouteTable()
    }

    /// Binds the listeners and starts the workers. Errors (a port in use, a bad address)
    /// surface here, before any traffic is accepted.
    /// `onAcknowledge` runs on a worker thread each time that worker acknowledged a
    /// snapshot or published stats.
    public func start(onAcknowledge: @escaping @Sendable () -> Void = {}) throws {
        let table = initialTable
        let settings = config.settings
        raiseOpenFileLimit(for: settings)
        switch settings.accessLog.destination {
        case .off: accessLogFD = -1
        case .stdout: accessLogFD = 1
        case .stderr: accessLogFD = 2
        case .file(let path):
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            if fd < 0 { throw IOError("open(access log)", errno: errno) }
            accessLogFD = fd
            ownsAccessLogFD = true
        }
        var perWorker: [[Int32]] = []
        do {
            var listeners = settings.listeners
            for w in 0..<settings.workers {
                var fds: [Int32] = []
                for (i, address) in listeners.enumerated() {
                    let fd = try Sockets.makeListener(address, deferAccept: settings.deferAccept)
                    fds.append(fd)
                    if w == 0 {
                        let port = Sockets.localPort(fd)
                        boundPorts.append(port)
                        // Port 0: every other worker binds the port the first one got.
                        listeners[i].port = port
                    }
                }
                perWorker.append(fds)
            }
            for (w, fds) in perWorker.enumerated() {
                var workerLogger = logger
                workerLogger[metadataKey: "turnout.worker"] = "\(w)"
                workers.append(
                    try Worker(
                        index: w, settings: settings, routeTable: table, listenerFDs: fds,
                        accessLogFD: accessLogFD, logger: workerLogger))
            }
        } catch {
            if workers.isEmpty { for fds in perWorker { for fd in fds { Syscall.close(fd) } } }
            throw error
        }
        for w in workers {
            w.onAcknowledge = onAcknowledge
            w.start()
        }
        logger.info(
            "turnout started",
            metadata: [
                "turnout.listen": "\(zip(settings.listeners, boundPorts).map { ListenAddress(host: $0.host, port: $1).description })",
                "turnout.workers": "\(settings.workers)",
                "turnout.generation": "\(table.generation)",
            ])
    }

    /// Raises the soft open-file limit to the hard one (like nginx's worker_rlimit_nofile):
    /// each client connection may need an upstream connection too.
    private func raiseOpenFileLimit(for settings: ProxySettings) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        let needed = rlim_t(2 * settings.limits.maxConnections + 256)
        if limit.rlim_cur < needed {
            logger.warning(
                "the open-file limit is below what limits.max_connections needs (two descriptors per connection)",
                metadata: ["turnout.nofile": "\(limit.rlim_cur)", "turnout.needed": "\(needed)"])
        }
    }

    /// Stops accepting, lets in-flight requests finish (up to the drain timeout) and
    /// waits for every worker to stop.
    public func drainAndWait() {
        for w in workers { w.post(.drain) }
        for w in workers { w.join() }
        workers.removeAll()
        if ownsAccessLogFD { Syscall.close(accessLogFD) }
    }

    /// Blocks SIGINT/SIGTERM in the calling thread (and the threads it starts later) and
    /// ignores SIGPIPE, which a write to a closed socket would otherwise raise.
    public static func blockShutdownSignals() {
        signal(SIGPIPE, SIG_IGN)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }
}
