import TurnoutHTTP
import TurnoutRouting
#if canImport(Glibc)
import Glibc
#endif

/// What one access-log line says about one exchange. Byte views are valid only during
/// the `write` call.
struct AccessLogRecord {
    var client: IPAddressText
    var clientPort: UInt16
    var method: UnsafeRawBufferPointer?
    var target: UnsafeRawBufferPointer?
    var version: HTTPVersion
    var status: Int
    var pool: [UInt8]?
    /// Why the pool was chosen (`weight`, `header`, `cookie`, `sticky`, `fallback`).
    var reason: RoutingReason?
    var member: [UInt8]?
    var bytesIn: Int64
    var bytesOut: Int64
    var durationNanos: UInt64
    var requestID: UnsafeRawBufferPointer
    var note: StaticString
}

/// A worker's access log: lines are formatted into a buffer and written once per loop
/// iteration (or when the buffer fills), in writes of whole lines of at most 4 KiB so
/// lines from several workers never interleave, even on a pipe.
///
/// Loop-thread only.
final class AccessLogWriter {
    let fd: Int32
    let format: AccessLogSettings.Format
    private var buffer: [UInt8] = []
    private var cachedSecond: Int = -1
    private var cachedPrefix: [UInt8] = []

    init(fd: Int32, format: AccessLogSettings.Format) {
        self.fd = fd
        self.format = format
        buffer.reserveCapacity(64 * 1024)
        cachedPrefix.reserveCapacity(32)
    }

    var isEnabled: Bool { fd >= 0 }

    func write(_ r: AccessLogRecord) {
        guard fd >= 0 else { return }
        switch format {
        case .text: writeText(r)
        case .json: writeJSON(r)
        }
        if buffer.count >= 48 * 1024 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { all in
            var start = 0
            while start < all.count {
                // Up to 4 KiB, cut after the last newline inside that window.
                var end = min(start + 4096, all.count)
                if end < all.count {
                    var cut = end
                    while cut > start && all[cut - 1] != 0x0A { cut -= 1 }
                    if cut > start { end = cut }
                }
                var off = start
                while off < end {
                    let n = Glibc.write(fd, all.baseAddress! + off, end - off)
                    if n < 0 {
                        if errno == EINTR { continue }
                        return  // the log is best effort; never block or fail the proxy on it
                    }
                    off += n
                }
                start = end
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    // MARK: Formatting

    private func appendTime() {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let second = ts.tv_sec
        if second != cachedSecond {
            cachedSecond = second
            var t = time_t(second)
            var tmv = tm()
            gmtime_r(&t, &tmv)
            cachedPrefix.removeAll(keepingCapacity: true)
            appendPadded(&cachedPrefix, Int(tmv.tm_year) + 1900, 4)
            cachedPrefix.append(0x2D)
            appendPadded(&cachedPrefix, Int(tmv.tm_mon) + 1, 2)
            cachedPrefix.append(0x2D)
            appendPadded(&cachedPrefix, Int(tmv.tm_mday), 2)
            cachedPrefix.append(0x54)
            appendPadded(&cachedPrefix, Int(tmv.tm_hour), 2)
            cachedPrefix.append(0x3A)
            appendPadded(&cachedPrefix, Int(tmv.tm_min), 2)
            cachedPrefix.append(0x3A)
            appendPadded(&cachedPrefix, Int(tmv.tm_sec), 2)
            cachedPrefix.append(0x2E)
        }
        buffer.append(contentsOf: cachedPrefix)
        appendPadded(&buffer, Int(ts.tv_nsec / 1_000_000), 3)
        buffer.append(0x5A)
    }

    private func appendPadded(_ out: inout [UInt8], _ value: Int, _ width: Int) {
        var digits = width
        var divisor = 1
        while digits > 1 {
            divisor *= 10
            digits -= 1
        }
        var v = value
        while divisor > 0 {
            out.append(UInt8(v / divisor % 10) + 0x30)
            v %= divisor
            divisor /= 10
        }
    }

    private func appendInt(_ value: Int64) {
        if value < 0 {
            buffer.append(0x2D)
            appendInt(-value)
            return
        }
        if value >= 10 { appendInt(value / 10) }
        buffer.append(UInt8(value % 10) + 0x30)
    }

    private func appendMilliseconds(_ nanos: UInt64) {
        let micros = Int64(nanos / 1000)
        appendInt(micros / 1000)
        buffer.append(0x2E)
        appendPadded(&buffer, Int(micros % 1000), 3)
    }

    private func appendStatic(_ s: StaticString) {
        buffer.append(contentsOf: UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// Appends bytes with `"` and `\` escaped and control bytes as \u00XX (JSON-safe).
    private func appendEscaped(_ bytes: UnsafeRawBufferPointer) {
        let hex: StaticString = "0123456789abcdef"
        for b in bytes {
            switch b {
            case 0x22, 0x5C:
                buffer.append(0x5C)
                buffer.append(b)
            case 0..<0x20, 0x7F...:
                appendStatic("\\u00")
                buffer.append(hex.utf8Start[Int(b >> 4)])
                buffer.append(hex.utf8Start[Int(b & 0xF)])
            default:
                buffer.append(b)
            }
        }
    }

    private func appendEscaped(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { appendEscaped($0) }
    }

    private func writeText(_ r: AccessLogRecord) {
        appendTime()
        buffer.append(0x20)
        r.client.withBytes { buffer.append(contentsOf: $0) }
        buffer.append(0x3A)
        appendInt(Int64(r.clientPort))
        appendStatic(" \"")
        if let m = r.method, let t = r.target {
            appendEscaped(m)
            buffer.append(0x20)
            appendEscaped(t)
            appendStatic(r.version == .http11 ? " HTTP/1.1\" " : " HTTP/1.0\" ")
        } else {
            appendStatic("-\" ")
        }
        appendInt(Int64(r.status))
        appendStatic(" pool=")
        if let p = r.pool { buffer.append(contentsOf: p) } else { buffer.append(0x2D) }
        appendStatic(" reason=")
        if let reason = r.reason { appendStatic(reason.staticName) } else { buffer.append(0x2D) }
        appendStatic(" member=")
        if let m = r.member { buffer.append(contentsOf: m) } else { buffer.append(0x2D) }
        appendStatic(" in=")
        appendInt(r.bytesIn)
        appendStatic(" out=")
        appendInt(r.bytesOut)
        appendStatic(" ms=")
        appendMilliseconds(r.durationNanos)
        appendStatic(" rid=")
        if r.requestID.isEmpty { buffer.append(0x2D) } else { appendEscaped(r.requestID) }
        if r.note.utf8CodeUnitCount > 0 {
            appendStatic(" note=\"")
            appendStatic(r.note)
            buffer.append(0x22)
        }
        buffer.append(0x0A)
    }

    private func writeJSON(_ r: AccessLogRecord) {
        appendStatic("{\"time\":\"")
        appendTime()
        appendStatic("\",\"client\":\"")
        r.client.withBytes { buffer.append(contentsOf: $0) }
        appendStatic("\",\"client_port\":")
        appendInt(Int64(r.clientPort))
        appendStatic(",\"method\":")
        if let m = r.method {
            buffer.append(0x22)
            appendEscaped(m)
            buffer.append(0x22)
        } else {
            appendStatic("null")
        }
        appendStatic(",\"path\":")
        if let t = r.target {
            buffer.append(0x22)
            appendEscaped(t)
            buffer.append(0x22)
        } else {
            appendStatic("null")
        }
        appendStatic(",\"protocol\":\"")
        appendStatic(r.version == .http11 ? "HTTP/1.1" : "HTTP/1.0")
        appendStatic("\",\"status\":")
        appendInt(Int64(r.status))
        appendStatic(",\"pool\":")
        if let p = r.pool {
            buffer.append(0x22)
            appendEscaped(p)
            buffer.append(0x22)
        } else {
            appendStatic("null")
        }
        appendStatic(",\"reason\":")
        if let reason = r.reason {
            buffer.append(0x22)
            appendStatic(reason.staticName)
            buffer.append(0x22)
        } else {
            appendStatic("null")
        }
        appendStatic(",\"member\":")
        if let m = r.member {
            buffer.append(0x22)
            buffer.append(contentsOf: m)
            buffer.append(0x22)
        } else {
            appendStatic("null")
        }
        appendStatic(",\"bytes_in\":")
        appendInt(r.bytesIn)
        appendStatic(",\"bytes_out\":")
        appendInt(r.bytesOut)
        appendStatic(",\"duration_ms\":")
        appendMilliseconds(r.durationNanos)
        appendStatic(",\"request_id\":")
        if r.requestID.isEmpty {
            appendStatic("null")
        } else {
            buffer.append(0x22)
            appendEscaped(r.requestID)
            buffer.append(0x22)
        }
        if r.note.utf8CodeUnitCount > 0 {
            appendStatic(",\"note\":\"")
            appendStatic(r.note)
            buffer.append(0x22)
        }
        appendStatic("}\n")
    }
}

