/// Whether a pool member's recent responses were large: the last eight, one bit each.
///
/// A response whose body will be spliced (a Content-Length of at least the connection
/// buffer) is best read with a small first read, just the head and a little more, so
/// that nearly all of its body goes through the pipe instead of being copied in and out
/// of user space. A smaller response is best read whole, in one call. Which one comes is
/// known only from the head, so the first read follows what the member sent lately: small
/// when at least half of its last eight responses were large. A wrong guess costs one
/// more `recv` for a response of a few KiB, or a 16 KiB copy for a large one.
///
/// Plain value, loop-thread only (one per member per worker).
struct ResponseSizeHistory {
    private var bits: UInt8 = 0

    /// Records one response: `isLarge` when its body is of the size that is spliced.
    mutating func record(isLarge: Bool) {
        bits = bits << 1 | (isLarge ? 1 : 0)
    }

    /// True when at least four of the last eight responses were large.
    var expectsLarge: Bool { bits.nonzeroBitCount >= 4 }

    /// Bytes the first read of a response head asks for when a large one is expected:
    /// 4 KiB, enough for the heads of nearly all responses (a longer head takes more reads
    /// of this size until it is complete).
    static let smallFirstRead = 4096
}
