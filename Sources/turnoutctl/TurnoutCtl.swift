import ArgumentParser
import Foundation
import TurnoutAdminClient

/// `turnoutctl`: the operator's command line over Turnout's admin socket.
@main
struct TurnoutCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "turnoutctl",
        abstract: "Shift traffic on a running Turnout: flip, split, roll back, drain members.",
        discussion: """
            Exit codes: 0 success; 1 the change or request was refused; 3 the admin socket cannot be \
            reached; 4 the routing changed underneath (--if-match did not match); 64 bad usage.
            """,
        subcommands: [
            Status.self, Flip.self, Split.self, Rollback.self, Members.self, Drain.self, Enable.self, Add.self,
            Remove.self, History.self,
        ]
    )

    /// Accepts the common options before the subcommand too (`turnoutctl --socket S status`).
    static func main() {
        main(Self.movingCommonOptions(Array(CommandLine.arguments.dropFirst())))
    }

    /// Moves `--socket X`, `--socket=X` and `--json` given before the subcommand to after it.
    static func movingCommonOptions(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var rest = arguments[...]
        while let first = rest.first, first.hasPrefix("--") {
            if first == "--socket", rest.count >= 2 {
                leading += rest.prefix(2)
                rest = rest.dropFirst(2)
            } else if first.hasPrefix("--socket=") || first == "--json" {
                leading.append(first)
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        guard let command = rest.first else { return arguments }
        return [command] + leading + rest.dropFirst()
    }
}

/// Options every command takes.
struct Connection: ParsableArguments {
    @Option(help: "Admin socket (default: \(AdminEndpoint.defaultSocketPath), or $TURNOUT_ADMIN_SOCKET).")
    var socket: String?

    @Flag(help: "Print the API's JSON answer instead of a table.")
    var json = false

    var client: AdminClient { AdminClient(socketPath: socket ?? AdminEndpoint.defaultSocketPath) }
}

/// POOL and MEMBER of the member commands.
struct MemberTarget: ParsableArguments {
    @Argument(help: "The pool.") var pool: String
    @Argument(help: "The member, host:port (an IP address).") var member: String

    /// `/v1/pools/POOL/members/MEMBER` followed by `suffix`.
    func path(_ suffix: String = "") -> String { "/v1/pools/\(encoded(pool))/members/\(encoded(member))" + suffix }
}

/// Options of commands that change something.
struct ChangeOptions: ParsableArguments {
    @Option(name: .customLong("if-match"), help: "Only apply if the routing is still at this generation.")
    var ifMatch: UInt64?

    @Flag(name: .customLong("dry-run"), help: "Show the resulting state and the share of traffic that would move; change nothing.")
    var dryRun = false

    var headers: [(String, String)] { ifMatch.map { [("If-Match", String($0))] } ?? [] }
    var query: String { dryRun ? "?dry_run=true" : "" }
}

// MARK: - Calling the API

enum CtlExit {
    static let refused: Int32 = 1
    static let unreachable: Int32 = 3
    static let conflict: Int32 = 4
}

/// Sends a request, prints the answer (JSON or through `render`), exits non-zero on failure.
func call(
    _ connection: Connection, _ method: String, _ path: String, body: [String: Any]? = nil,
    headers: [(String, String)] = [], render: ([String: Any]) -> String
) throws {
    let bytes = try body.map { Array(try JSONSerialization.data(withJSONObject: $0)) }
    let response: AdminResponse
    do {
        response = try connection.client.send(method, path, json: bytes, headers: headers)
    } catch {
        printError("turnoutctl: \(error)")
        throw ExitCode(CtlExit.unreachable)
    }
    let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
    if connection.json {
        print(response.bodyText, terminator: response.bodyText.hasSuffix("\n") ? "" : "\n")
    }
    guard response.status == 200 else {
        let message = object["error"] as? String ?? response.bodyText
        printError("turnoutctl: \(message) (HTTP \(response.status))")
        throw ExitCode(response.status == 409 && message.contains("generation is") ? CtlExit.conflict : CtlExit.refused)
    }
    if !connection.json { print(render(object)) }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// `blue 90%, green 10%` from `{"blue": "90%", ...}` in the order of `pools`.
func splitText(_ object: [String: Any]) -> String {
    let split = object["split"] as? [String: Any] ?? [:]
    let order = (object["pools"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? split.keys.sorted()
    return order.compactMap { name in (split[name] as? String).map { "\(name) \($0)" } }.joined(separator: ", ")
}

/// The summary of a change answer.
func changeText(_ object: [String: Any]) -> String {
    let state = object["state"] as? [String: Any] ?? [:]
    var lines: [String] = []
    if object["dry_run"] as? Bool == true {
        lines.append("dry run: nothing changed (generation stays \(object["generation"] ?? "?"))")
        lines.append("would be generation \(object["would_be_generation"] ?? "?"): \(splitText(state))")
    } else if object["changed"] as? Bool == false {
        lines.append("no change: generation \(object["generation"] ?? "?"), \(splitText(state))")
    } else {
        lines.append("generation \(object["generation"] ?? "?"): \(splitText(state)) (acknowledged by every worker)")
    }
    for m in object["members"] as? [[String: Any]] ?? [] {
        lines.append("\(m["action"] ?? "?") \(m["pool"] ?? "?") \(m["address"] ?? "?")")
    }
    lines.append("traffic moved: \(object["moved"] ?? "0%")")
    for w in object["warnings"] as? [String] ?? [] { lines.append("warning: \(w)") }
    return lines.joined(separator: "\n")
}

/// A fixed-width table.
func table(_ header: [String], _ rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}

func memberRows(_ pool: [String: Any]) -> [[String]] {
    (pool["members"] as? [[String: Any]] ?? []).map { m in
        [
            pool["name"] as? String ?? "", m["address"] as? String ?? "", "\(m["weight"] ?? "")", m["state"] as? String ?? "",
            m["health"] as? String ?? "-", "\(m["in_flight"] ?? "-")", "\(m["idle_connections"] ?? "-")",
        ]
    }
}

let memberHeader = ["POOL", "MEMBER", "WEIGHT", "STATE", "HEALTH", "IN-FLIGHT", "IDLE"]

/// A pool member path segment (`[::1]:8080` needs its brackets encoded).
func encoded(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: ".:-_"))) ?? text
}

// MARK: - Commands

extension TurnoutCtl {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the split, the generation and every member.")
        @OptionGroup var connection: Connection

        func run() throws {
            try call(connection, "GET", "/v1/status") { s in
                var out = "generation \(s["generation"] ?? "?")   split: \(splitText(s))"
                if let active = s["active"] as? String { out += "   (active: \(active))" }
                out += "\nworkers \(s["workers"] ?? "?")   rollback depth \(s["rollback_depth"] ?? 0)   fallbacks \(s["fallbacks"] ?? 0)"
                let overrides = s["overrides"] as? [String: Any] ?? [:]
                if overrides["enabled"] as? Bool == true {
                    var parts: [String] = []
                    if let h = overrides["header"] as? String { parts.append("header \(h)") }
                    if let c = overrides["cookie"] as? String { parts.append("cookie \(c)") }
                    let nets = overrides["trusted_networks"] as? [String] ?? []
                    parts.append(nets.isEmpty ? "from anywhere" : "from \(nets.joined(separator: ", "))")
                    if overrides["token_required"] as? Bool == true { parts.append("token required") }
                    out += "\noverrides: " + parts.joined(separator: ", ")
                }
                let pools = s["pools"] as? [[String: Any]] ?? []
                out += "\n\n" + table(["POOL", "SHARE", "BALANCE", "MEMBERS"], pools.map {
                    [$0["name"] as? String ?? "", $0["share"] as? String ?? "", $0["balance"] as? String ?? "",
                     "\(($0["members"] as? [Any])?.count ?? 0)"]
                })
                out += "\n\n" + table(memberHeader, pools.flatMap(memberRows))
                return out
            }
        }
    }

    struct Flip: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send 100% of traffic to POOL (blue/green cutover).")
        @Argument(help: "The pool that takes all traffic.") var pool: String
        @OptionGroup var change: ChangeOptions
        @OptionGroup var connection: Connection

        func run() throws {
            try call(connection, "POST", "/v1/flip" + change.query, body: ["pool": pool], headers: change.headers, render: changeText)
        }
    }

    struct Split: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the split, e.g. `turnoutctl split green=10 blue=90` (percent, up to four decimals).")
        @Argument(help: "POOL=PERCENT pairs adding up to 100; pools not named get 0.") var shares: [String]
        @OptionGroup var change: ChangeOptions
        @OptionGroup var connection: Connection

        func validate() throws {
            if shares.isEmpty { throw ValidationError("give at least one POOL=PERCENT") }
            for s in shares where !s.contains("=") { throw ValidationError("\"\(s)\" is not POOL=PERCENT") }
        }

        func run() throws {
            var split: [String: Any] = [:]
            for s in shares {
                let kv = s.split(separator: "=", maxSplits: 1).map(String.init)
                let value = kv.count > 1 ? kv[1] : ""
                split[kv[0]] = value.hasSuffix("%") ? value : value + "%"
            }
            try call(connection, "PUT", "/v1/split" + change.query, body: ["split": split], headers: change.headers, render: changeText)
        }
    }

    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Go back to the state before the last change (repeat to go further back).")
        @OptionGroup var change: ChangeOptions
        @OptionGroup var connection: Connection

        func run() throws {
            try call(connection, "POST", "/v1/rollback" + change.query, headers: change.headers, render: changeText)
        }
    }

    struct Members: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the members of POOL with live counts.")
        @Argument var pool: String
        @OptionGroup var connection: Connection

        func run() throws {
            try call(connection, "GET", "/v1/pools/\(encoded(pool))/members") { s in
                table(memberHeader, memberRows(s["pool"] as? [String: Any] ?? [:]))
            }
        }
    }

    struct Drain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop sending new requests to MEMBER of POOL; requests in flight finish.")
        @OptionGroup var target: MemberTarget
        @OptionGroup var change: ChangeOptions
        @OptionGroup var connection: Connection

        func run() throws {
            try call(connection, "POST", target.path("/drain") + change.query, headers: change.headers, render: changeText)
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send requests to a drained MEMBER of POOL again.")
        @OptionGroup var target: MemberTarget
        @OptionGroup var change: ChangeOptions
        @OptionGroup var connection: Connection

        func run() throws {
            try call(connection, "POST", target.path("/enable") + change.query, headers: change.headers, render: changeText)
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add MEMBER to POOL.")
        @Argument var pool: String
        @Argument(help: "host:port (an IP address)") var member: String
        @Option(help: "Relative share of the pool's traffic.") var weight: Int = 1
        @OptionGroup var change: ChangeOptions
        @OptionGroup var connection: Connection

        func run() throws {
            try call(connection, "POST", "/v1/pools/\(encoded(pool))/members" + change.query,
                     body: ["address": member, "weight": weight], headers: change.headers, render: changeText)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove MEMBER from POOL; requests in flight finish.")
        @OptionGroup var target: MemberTarget
        @OptionGroup var change: ChangeOptions
        @OptionGroup var connection: Connection

        func run() throws {
            try call(connection, "DELETE", target.path() + change.query, headers: change.headers, render: changeText)
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the audit log: who changed what, when.")
        @OptionGroup var connection: Connection

        func run() throws {
            try call(connection, "GET", "/v1/history") { s in
                let entries = s["entries"] as? [[String: Any]] ?? []
                func who(_ e: [String: Any]) -> String {
                    let p = e["peer"] as? [String: Any] ?? [:]
                    if let t = p["token"] as? String { return "token \(t)" }
                    return "uid \(p["uid"] ?? "?") pid \(p["pid"] ?? "?")"
                }
                func split(_ v: Any?) -> String {
                    (v as? [String: Any] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                }
                let rows = entries.map { e in
                    [e["time"] as? String ?? "", "\(e["generation"] ?? "")", e["operation"] as? String ?? "", who(e),
                     split(e["after"]), e["moved"] as? String ?? ""]
                }
                return table(["TIME", "GEN", "OPERATION", "BY", "SPLIT AFTER", "MOVED"], rows)
                    + "\n\nrollback depth \(s["rollback_depth"] ?? 0), generation \(s["generation"] ?? "?")"
            }
        }
    }
}
