import CTurnoutSys
import TurnoutRouting

#if canImport(Glibc)
    import Glibc
#endif

/// The durable routing state: the current state, its generation, and the states before
/// the last changes (for repeated rollback), in one JSON file.
///
/// Every save writes a temporary file, fsyncs it, renames it over the old one and fsyncs
/// the directory, so a crash at any moment leaves either the old file or the new one,
/// both complete. Control-thread only.
public final class StateStore {
    public let path: String
    /// Most previous states kept for rollback.
    public let historyLimit: Int
    public private(set) var generation: UInt64
    public private(set) var state: RoutingState
    /// Previous states, oldest first.
    public private(set) var history: [RoutingState]

    /// What `open` found on disk.
    public enum Origin: Equatable {
        /// No state file yet: the configuration's values.
        case configuration
        /// The state file.
        case file
        /// The file was unusable; it was renamed to `keptAs` and the configuration's values are used.
        case corrupt(reason: String, keptAs: String)
    }

    public private(set) var origin: Origin

    /// The configuration's own values (split, members, overrides), recorded in every write
    /// so that the next start can tell an edit of the configuration from a run-time change.
    public let configured: RoutingState

    /// When the configuration was edited since the state file was written: the state with
    /// the edited parts taken from the configuration, and which parts (`split`, `members of
    /// blue`, `overrides`). Not applied yet: `applyConfigurationEdits` makes it current.
    /// Nil when nothing was edited, or the file (written by an earlier version) does not
    /// record the configuration; then the file's state stands as it is.
    public private(set) var configurationEdits: (state: RoutingState, parts: [String])?

    /// Loads `path`, or starts from the configuration when there is no file yet. A file
    /// that cannot be read or parsed is renamed aside (`.corrupt-<time>`) and the
    /// configuration's values are used, unless `refuseCorrupt`, which throws instead.
    public init(path: String, config: TurnoutConfig, historyLimit: Int, refuseCorrupt: Bool) throws {
        self.path = path
        self.historyLimit = historyLimit
        let initial = RoutingState(config: config)
        configured = initial
        configurationEdits = nil
        generation = 1
        state = initial
        history = []
        origin = .configuration
        guard FileSystem.exists(path) else { return }
        do {
            let (g, s, h, baseline) = try StateStore.read(path: path, config: config)
            generation = g
            state = s
            history = h
            origin = .file
            if let baseline {
                let (reconciled, parts) = RoutingState.reconciling(saved: s, baseline: baseline, configured: initial)
                if !parts.isEmpty && reconciled != s { configurationEdits = (reconciled, parts) }
            }
        } catch {
            let reason = "\(error)"
            if refuseCorrupt {
                throw StateFileError("the state file \(path) cannot be used (\(reason)); state.on_corrupt is refuse")
            }
            let aside = path + ".corrupt-\(Int(time(nil)))"
            if rename(path, aside) != 0 {
                throw StateFileError("the state file \(path) cannot be used (\(reason)) nor renamed aside: \(String(cString: strerror(errno)))")
            }
            origin = .corrupt(reason: reason, keptAs: aside)
        }
    }

    private static func read(path: String, config: TurnoutConfig) throws
        -> (UInt64, RoutingState, [RoutingState], [String: Any]?)
    {
        guard let data = FileSystem.contents(path) else { throw StateFileError("unreadable") }
        let value: Any
        do {
            value = try JSON.parse(data)
        } catch {
            throw StateFileError("not a JSON object: \(error)")
        }
        guard let object = value as? [String: Any] else { throw StateFileError("not a JSON object") }
        guard JSON.integer(object["version"]) == 1 else { throw StateFileError("unknown version") }
        guard let g = JSON.integer(object["generation"]), g > 0 else { throw StateFileError("bad generation") }
        guard let current = object["state"] as? [String: Any] else { throw StateFileError("missing state") }
        let state = try RoutingState.fromDurableJSON(current, config: config)
        var history: [RoutingState] = []
        for item in object["history"] as? [[String: Any]] ?? [] {
            // A past state that no longer fits the configuration cannot be rolled back to; skip it.
            if let s = try? RoutingState.fromDurableJSON(item, config: config) { history.append(s) }
        }
        guard object["configured"] == nil || object["configured"] is [String: Any] else {
            throw StateFileError("bad \"configured\"")
        }
        return (UInt64(g), state, history, object["configured"] as? [String: Any])
    }

    /// Makes `next` the current state at `generation`, pushing the current one on the
    /// history (or popping it, for a rollback), and writes it durably. On failure nothing
    /// changes, in memory or on disk.
    @discardableResult
    public func commit(_ next: RoutingState, generation newGeneration: UInt64, isRollback: Bool) throws -> String? {
        var newHistory = history
        if isRollback {
            newHistory.removeLast()
        } else {
            newHistory.append(state)
            if newHistory.count > historyLimit { newHistory.removeFirst(newHistory.count - historyLimit) }
        }
        let warning = try write(generation: newGeneration, state: next, history: newHistory)
        generation = newGeneration
        state = next
        history = newHistory
        return warning
    }

    /// Makes `configurationEdits` the current state at the next generation, the state the
    /// file held going on the history (so `rollback` returns to it), and writes it durably.
    /// Returns what `commit` returns.
    @discardableResult
    public func applyConfigurationEdits() throws -> String? {
        guard let edits = configurationEdits else { return nil }
        let warning = try commit(edits.state, generation: generation + 1, isRollback: false)
        configurationEdits = nil
        return warning
    }

    /// Writes the current values (e.g. the configuration's, on first start), with the
    /// configuration they were read under.
    public func persistCurrent() throws {
        try write(generation: generation, state: state, history: history)
    }

    @discardableResult
    private func write(generation: UInt64, state: RoutingState, history: [RoutingState]) throws -> String? {
        let object: [String: Any] = [
            "version": 1, "generation": Int(generation), "state": state.durableJSON(),
            "history": history.map { $0.durableJSON() }, "configured": configured.durableJSON(),
        ]
        let bytes = try JSON.serialize(object, sortedKeys: true)
        return try DurableFile.replace(path: path, with: bytes + [0x0A])
    }
}

/// Atomic, durable file replacement and appends.
enum DurableFile {
    /// temp file → write → fsync → rename → fsync(directory). Throws when the file was not
    /// replaced; returns a warning when it was but the folder could not be synced.
    @discardableResult
    static func replace(path: String, with bytes: [UInt8]) throws -> String? {
        let parent = FileSystem.parentDirectory(path)
        let dir = parent.isEmpty ? "." : parent
        let temp = path + ".tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 { throw StateFileError("cannot create \(temp): \(String(cString: strerror(errno)))") }
        do {
            try writeAll(fd, bytes, what: temp)
            if fsync(fd) != 0 { throw StateFileError("fsync \(temp): \(String(cString: strerror(errno)))") }
            close(fd)
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
        if rename(temp, path) != 0 {
            let e = errno
            unlink(temp)
            throw StateFileError("rename to \(path): \(String(cString: strerror(e)))")
        }
        // The new file is in place: from here the change is made. A failed fsync of the
        // folder cannot undo that; it is reported, and the rename is retried on the next save.
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { return "cannot open \(dir) to fsync it: \(String(cString: strerror(errno)))" }
        defer { close(dfd) }
        if fsync(dfd) != 0 { return "fsync \(dir): \(String(cString: strerror(errno)))" }
        return nil
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], what: String) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StateFileError("write \(what): \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }
}

/// The append-only audit log: one JSON object per line, synced before the change is
/// acknowledged. Control-thread only.
public final class AuditLog {
    public let path: String
    private let fd: Int32

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if fd < 0 { throw StateFileError("cannot open the audit log \(path): \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    /// Appends one record (adds `time`) and syncs it.
    public func append(_ record: [String: Any]) throws {
        var record = record
        record["time"] = AuditLog.timestamp()
        let bytes = try JSON.serialize(record, sortedKeys: true)
        try DurableFile.writeAll(fd, bytes + [0x0A], what: path)
        if fdatasync(fd) != 0 { throw StateFileError("fdatasync \(path): \(String(cString: strerror(errno)))") }
    }

    /// The last `limit` records, oldest first.
    public func tail(_ limit: Int) -> [[String: Any]] {
        guard let data = FileSystem.contents(path) else { return [] }
        var out: [[String: Any]] = []
        for line in data.split(separator: 0x0A).suffix(limit) {
            if let object = (try? JSON.parse(Array(line))) as? [String: Any] { out.append(object) }
        }
        return out
    }

    /// The time now in UTC with milliseconds: `2025-01-31T23:59:59.123Z`.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return timestamp(seconds: ts.tv_sec, milliseconds: Int(ts.tv_nsec / 1_000_000))
    }

    /// `seconds` since the epoch (UTC) and `milliseconds` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    static func timestamp(seconds: time_t, milliseconds: Int) -> String {
        var t = seconds
        var tm = tm()
        gmtime_r(&t, &tm)
        func digits(_ n: Int32, _ width: Int) -> String { Text.zeroPadded(Int(n), width: width) }
        return "\(digits(tm.tm_year + 1900, 4))-\(digits(tm.tm_mon + 1, 2))-\(digits(tm.tm_mday, 2))"
            + "T\(digits(tm.tm_hour, 2)):\(digits(tm.tm_min, 2)):\(digits(tm.tm_sec, 2))"
            + ".\(Text.zeroPadded(milliseconds, width: 3))Z"
    }
}
