import Logging
import TurnoutCore
import TurnoutRouting

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
        let audit = try AuditLog(path: config.auditFilePath)
        let control = try ControlPlane(config: config, store: store, audit: audit, logger: logger)
        // Written only once the admin socket is this process's: a second Turnout started by
        // mistake on the same files stops there and leaves the running one's state file alone.
        switch store.origin {
        case .file:
            logger.info(
                "routing state restored",
                metadata: ["turnout.state": "\(store.path)", "turnout.generation": "\(store.generation)"])
            if let edits = store.configurationEdits {
                try applyConfigurationEdits(edits.parts, store: store, audit: audit, config: config, logger: logger)
            } else {
                // Records the configuration this state now stands under (and adds that record
                // to a file an earlier version wrote), so the next start can tell its edits.
                do {
                    try store.persistCurrent()
                } catch {
                    logger.warning(
                        "cannot rewrite the state file; it is used as it is",
                        metadata: ["turnout.state": "\(store.path)", "turnout.error": "\(error)"])
                }
            }
        case .configuration:
            try store.persistCurrent()
        case .corrupt(let reason, let keptAs):
            logger.error(
                "the state file cannot be used; starting from the configuration",
                metadata: ["turnout.state": "\(store.path)", "turnout.reason": "\(reason)", "turnout.kept_as": "\(keptAs)"])
            try store.persistCurrent()
        }
        let table = store.state.makeRouteTable(generation: store.generation, config: config)
        let server = ProxyServer(config: config, routeTable: table, logger: logger)
        try server.start(onAcknowledge: control.acknowledgementHandler)
        onReady(server, control)
        return control.run(server: server)
    }

    /// The configuration was edited since the state file was written: its new values for
    /// `parts` replace the file's, as a change at the next generation that is saved, logged
    /// and audited like an admin call, and that one `rollback` undoes.
    private static func applyConfigurationEdits(
        _ parts: [String], store: StateStore, audit: AuditLog, config: TurnoutConfig, logger: Logger
    ) throws {
        let before = store.state
        do {
            if let warning = try store.applyConfigurationEdits() {
                logger.error("the routing state was replaced but may not be durable yet", metadata: ["turnout.error": "\(warning)"])
            }
        } catch {
            throw StateFileError("cannot save the routing state that the edited configuration gives (\(parts.joined(separator: ", "))) to \(store.path): \(error)")
        }
        let after = store.state
        logger.notice(
            "the configuration was edited since the state file was written: its values replace the state file's",
            metadata: [
                "turnout.config": "\(config.sourcePath)", "turnout.edited": "\(parts.joined(separator: ", "))",
                "turnout.generation": "\(store.generation)",
                "turnout.split": "\(after.splitJSON().sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))",
            ])
        do {
            try audit.append([
                "operation": "configuration", "peer": ["configuration": config.sourcePath], "edited": parts,
                "generation": Int(store.generation), "before": before.splitJSON(), "after": after.splitJSON(),
                "moved": Split.formatPercent(before.split.movedParts(to: after.split)),
            ])
        } catch {
            logger.error("cannot write the audit log", metadata: ["turnout.error": "\(error)"])
        }
    }
}
