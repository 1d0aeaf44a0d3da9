import Logging
import TurnoutCore

/// Starting a whole Turnout process: state, admin API, workers.
public enum TurnoutProcess {
    /// Restores the routing state, binds the admin socket, starts the workers and serves
    /// until SIGINT/SIGTERM; returns the signal after the drain. `onReady` runs once
    /// everything accepts connections. Throws, with nothing left running, when a part
    /// cannot start (a port or the admin socket in use, an unusable state file with
    /// `state.on_corrupt: refuse`).
    public static func serve(config: TurnoutConfig, logger: Logger, onReady: (ProxyServer, ControlPlane) -> Void = { _, _ in })
        throws -> Int32
    {
        ProxyServer.blockShutdownSignals()
        let store = try StateStore(
            path: config.stateFilePath, config: config, historyLimit: config.admin.historyLimit,
            refuseCorrupt: config.state.onCorrupt == .refuse)
        switch store.origin {
        case .file:
            logger.info(
                "routing state restored",
                metadata: ["turnout.state": "\(store.path)", "turnout.generation": "\(store.generation)"])
        case .configuration:
            try store.persistCurrent()
        case .corrupt(let reason, let keptAs):
            logger.error(
                "the state file cannot be used; starting from the configuration",
                metadata: ["turnout.state": "\(store.path)", "turnout.reason": "\(reason)", "turnout.kept_as": "\(keptAs)"])
            try store.persistCurrent()
        }
        let audit = try AuditLog(path: config.auditFilePath)
        let control = try ControlPlane(config: config, store: store, audit: audit, logger: logger)
        let table = store.state.makeRouteTable(generation: store.generation, config: config)
        let server = ProxyServer(config: config, routeTable: table, logger: logger)
        try server.start(onAcknowledge: control.acknowledgementHandler)
        onReady(server, control)
        return control.run(server: server)
    }
}
