import Logging
import TurnoutCore
import TurnoutRouting

// The admin API: one handler per endpoint. Every change goes through `apply`, which
// checks the expected generation, validates, persists, audits, publishes and answers
// once every worker acknowledged.
//
//   GET    /v1/status                                   state, generation, live counts
//   GET    /v1/pools/{pool}/members                     one pool's members with live counts
//   GET    /v1/history                                  audit log (last 100) and rollback depth
//   POST   /v1/flip                {"pool": "green"}    100 % to one pool
//   PUT    /v1/split               {"split": {...}}     set the split
//   POST   /v1/rollback                                 back to the state before the last change
//   POST   /v1/pools/{pool}/members {"address", "weight"?}       add a member
//   DELETE /v1/pools/{pool}/members/{address}                    remove a member
//   POST   /v1/pools/{pool}/members/{address}/drain | /enable
//   POST   /v1/changes             {"split"|"flip", "members", "overrides", "dry_run"}
//
// Changes take `?dry_run=true` and `If-Match: <generation>`.

extension ControlPlane {
    func handle(_ request: AdminRequest, from connection: AdminConnection) {
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard parts.first == "v1" else {
            connection.answer(.error(AdminError(404, "unknown path \(request.path); the API lives under /v1")))
            return
        }
        let route = Array(parts.dropFirst())
        do {
            switch (request.method, route.count, route.first) {
            case ("GET", 1, "status"):
                answerStatus(connection)
            case ("GET", 1, "history"):
                connection.answer(history())
            case ("POST", 1, "flip"):
                let body = try AdminJSON.object(request.body)
                guard let pool = body["pool"] else { throw AdminError(400, "pool: required, e.g. {\"pool\": \"green\"}") }
                try apply(RoutingChange(split: try AdminJSON.flip(pool, pools: store.state.pools)), op: "flip", request, connection)
            case ("PUT", 1, "split"), ("POST", 1, "split"):
                let body = try AdminJSON.object(request.body)
                let split = try AdminJSON.split(body["split"] ?? body, pools: store.state.pools)
                try apply(RoutingChange(split: split), op: "split", request, connection)
            case ("POST", 1, "rollback"):
                try rollback(request, connection)
            case ("POST", 1, "changes"):
                let body = try AdminJSON.object(request.body)
                let change = try AdminJSON.change(body, pools: store.state.pools)
                guard !change.isEmpty else { throw AdminError(400, "the change is empty: give split, flip, members or overrides") }
                let dryRun = try AdminJSON.flag(body["dry_run"], key: "dry_run")
                try apply(change, op: "change", request, connection, dryRun: dryRun)
            case (_, 3, "pools") where route[2] == "members":
                try membersEndpoint(request, pool: route[1], connection)
            case (_, 4, "pools") where route[2] == "members":
                guard request.method == "DELETE" else { throw methodNotAllowed("DELETE") }
                let address = try AdminJSON.address(route[3], key: "address")
                try apply(RoutingChange(members: [MemberChange(pool: route[1], address: address, action: .remove)]),
                          op: "remove", request, connection)
            case (_, 5, "pools") where route[2] == "members" && (route[4] == "drain" || route[4] == "enable"):
                guard request.method == "POST" else { throw methodNotAllowed("POST") }
                let address = try AdminJSON.address(route[3], key: "address")
                let action: MemberAction = route[4] == "drain" ? .drain : .enable
                try apply(RoutingChange(members: [MemberChange(pool: route[1], address: address, action: action)]),
                          op: route[4], request, connection)
            case (_, 1, "status"), (_, 1, "history"):
                throw methodNotAllowed("GET")
            case (_, 1, "flip"), (_, 1, "rollback"), (_, 1, "changes"):
                throw methodNotAllowed("POST")
            case (_, 1, "split"):
                throw methodNotAllowed("PUT")
            default:
                throw AdminError(404, "unknown path \(request.path)")
            }
        } catch let e as AdminError {
            var extra: [String: Any] = ["generation": Int(store.generation)]
            if e.status == 405, let allowed = e.message.split(separator: " ", omittingEmptySubsequences: false).last {
                extra["allow"] = String(allowed)
            }
            connection.answer(.error(e, extra: extra))
        } catch {
            connection.answer(.error(AdminError(500, "\(error)")))
        }
    }

    private func methodNotAllowed(_ allowed: String) -> AdminError {
        AdminError(405, "method not allowed; use \(allowed)")
    }

    private func membersEndpoint(_ request: AdminRequest, pool: String, _ connection: AdminConnection) throws {
        switch request.method {
        case "GET":
            guard let index = store.state.poolIndex(pool) else {
                throw AdminError(404, "no pool is named \"\(pool)\"; the pools are: \(store.state.pools.map(\.name).joined(separator: ", "))")
            }
            let sequence = requestStats()
            answerWhen(.stats(sequence), connection) { [unowned self] in
                AdminReply(status: 200, json: ["generation": Int(self.store.generation), "pool": self.poolJSON(index, live: self.liveStats())])
            }
        case "POST":
            let body = try AdminJSON.object(request.body)
            let address = try AdminJSON.address(body["address"], key: "address")
            var weight: Int?
            if let w = body["weight"] {
                guard let n = JSON.integer(w) else { throw AdminError(400, "weight: expected an integer") }
                weight = n
            }
            try apply(RoutingChange(members: [MemberChange(pool: pool, address: address, action: .add, weight: weight)]),
                      op: "add", request, connection)
        default:
            throw methodNotAllowed("GET, POST")
        }
    }

    // MARK: Changes

    /// Checks `If-Match` against the current generation.
    private func checkPrecondition(_ request: AdminRequest) throws {
        guard let value = request.header("if-match") else { return }
        let text = Text.trimming(value) { $0 == "\"" || $0 == " " }
        guard let expected = UInt64(text) else { throw AdminError(400, "If-Match: expected a generation number") }
        if expected != store.generation {
            throw AdminError(409, "the generation is \(store.generation), not \(expected): someone changed the routing; read the status and retry")
        }
    }

    private func isDryRun(_ request: AdminRequest) -> Bool {
        guard let v = request.query["dry_run"] else { return false }
        return v == "" || v == "1" || v == "true"
    }

    private func rollback(_ request: AdminRequest, _ connection: AdminConnection) throws {
        try checkPrecondition(request)
        guard let previous = store.history.last else {
            throw AdminError(409, "nothing to roll back to: no earlier state is kept")
        }
        try commit(previous, op: "rollback", details: [:], request, connection, isRollback: true, dryRun: isDryRun(request))
    }

    private func apply(_ change: RoutingChange, op: String, _ request: AdminRequest, _ connection: AdminConnection,
                       dryRun: Bool = false) throws {
        try checkPrecondition(request)
        let next = try store.state.applying(change)
        var details: [String: Any] = [:]
        if !change.members.isEmpty {
            details["members"] = change.members.map { ["pool": $0.pool, "address": $0.address.description, "action": $0.action.rawValue] }
        }
        if change.overrides != nil { details["overrides"] = AdminJSON.overridesJSON(next.overrides) }
        try commit(next, op: op, details: details, request, connection, isRollback: false, dryRun: dryRun || isDryRun(request))
    }

    private func commit(_ next: RoutingState, op: String, details: [String: Any], _ request: AdminRequest,
                        _ connection: AdminConnection, isRollback: Bool, dryRun: Bool) throws {
        let before = store.state
        let moved = Split.formatPercent(before.split.movedParts(to: next.split))
        var warnings: [String] = []
        for pool in next.poolsWithoutTakers {
            warnings.append("pool \(pool) has a share but no member taking traffic: its share goes to the other pools")
        }
        if dryRun {
            connection.answer(AdminReply(status: 200, json: [
                "dry_run": true, "generation": Int(store.generation), "would_be_generation": Int(store.generation + 1),
                "moved": moved, "state": stateJSON(next, live: nil), "warnings": warnings,
            ]))
            return
        }
        if next == before {
            connection.answer(AdminReply(status: 200, json: [
                "changed": false, "generation": Int(store.generation), "moved": "0%", "state": stateJSON(next, live: nil),
            ]))
            return
        }
        let generation = store.generation + 1
        do {
            if let warning = try store.commit(next, generation: generation, isRollback: isRollback) {
                logger.error("the routing state was replaced but may not be durable yet", metadata: ["turnout.error": "\(warning)"])
            }
        } catch {
            logger.error("cannot save the routing state; the change is refused", metadata: ["turnout.error": "\(error)"])
            throw AdminError(500, "cannot save the routing state, nothing changed: \(error)")
        }
        var record: [String: Any] = [
            "operation": op, "peer": request.peer.json, "generation": Int(generation),
            "before": before.splitJSON(), "after": next.splitJSON(), "moved": moved,
        ]
        for (k, v) in details { record[k] = v }
        do {
            try audit.append(record)
        } catch {
            logger.error("cannot write the audit log", metadata: ["turnout.error": "\(error)"])
        }
        logger.notice(
            "routing changed",
            metadata: [
                "turnout.operation": "\(op)", "turnout.generation": "\(generation)",
                "turnout.split": "\(next.splitJSON().sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))",
            ])
        publish(next.makeRouteTable(generation: generation, config: config))
        answerWhen(.generation(generation), connection) { [unowned self] in
            var json: [String: Any] = [
                "changed": true, "operation": op, "generation": Int(generation), "moved": moved,
                "state": self.stateJSON(next, live: nil), "warnings": warnings,
            ]
            for (k, v) in details { json[k] = v }
            return AdminReply(status: 200, json: json)
        }
    }

    // MARK: Reading

    private func answerStatus(_ connection: AdminConnection) {
        let sequence = requestStats()
        answerWhen(.stats(sequence), connection) { [unowned self] in
            var json = self.stateJSON(self.store.state, live: self.liveStats())
            json["generation"] = Int(self.store.generation)
            json["workers"] = self.workerReports.count
            json["fallbacks"] = self.workerReports.reduce(0) { $0 + $1.fallbacks }
            json["event_loop"] = [
                "busy_poll_us": self.config.settings.busyPollMicroseconds,
                "polled_waits": Int(self.workerReports.reduce(0) { $0 + $1.polledWaits }),
                "blocking_waits": Int(self.workerReports.reduce(0) { $0 + $1.blockingWaits }),
            ]
            json["rollback_depth"] = self.store.history.count
            json["admin_socket"] = self.socketPath
            return AdminReply(status: 200, json: json)
        }
    }

    private func history() -> AdminReply {
        AdminReply(status: 200, json: [
            "generation": Int(store.generation), "rollback_depth": store.history.count, "entries": audit.tail(100),
        ])
    }

    /// Live counts summed over workers that run the current generation: [pool][member].
    func liveStats() -> [[MemberStats]]? {
        let reports = workerReports.filter { $0.generation == store.generation }
        guard let first = reports.first else { return nil }
        var sum = first.members.map { $0.map { _ in MemberStats(inFlight: 0, idleConnections: 0, isUp: true) } }
        for r in reports where r.members.count == sum.count {
            for p in r.members.indices where r.members[p].count == sum[p].count {
                for m in r.members[p].indices {
                    sum[p][m].inFlight += r.members[p][m].inFlight
                    sum[p][m].idleConnections += r.members[p][m].idleConnections
                    sum[p][m].isUp = sum[p][m].isUp && r.members[p][m].isUp
                }
            }
        }
        return sum
    }

    func stateJSON(_ state: RoutingState, live: [[MemberStats]]?) -> [String: Any] {
        var json: [String: Any] = [
            "split": state.splitJSON(),
            "pools": state.pools.indices.map { poolJSON($0, state: state, live: live) },
            "overrides": AdminJSON.overridesJSON(state.overrides),
        ]
        json["active"] = state.activePool.map { $0 as Any } ?? JSON.null
        return json
    }

    func poolJSON(_ index: Int, state: RoutingState? = nil, live: [[MemberStats]]?) -> [String: Any] {
        let state = state ?? store.state
        let pool = state.pools[index]
        let members: [[String: Any]] = pool.members.enumerated().map { i, m in
            var json: [String: Any] = [
                "address": m.address.description, "weight": m.weight, "state": m.isDrained ? "drained" : "enabled",
            ]
            if let live, index < live.count, i < live[index].count {
                json["in_flight"] = live[index][i].inFlight
                json["idle_connections"] = live[index][i].idleConnections
                json["health"] = live[index][i].isUp ? "up" : "down"
            }
            return json
        }
        return [
            "name": pool.name, "share": Split.formatPercent(state.split.partsPerMillion[index]),
            "balance": pool.balance.rawValue, "members": members,
        ]
    }
}
