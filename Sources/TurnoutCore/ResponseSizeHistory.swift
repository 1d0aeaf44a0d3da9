/// How large a pool member's recent responses were: the last eight, as three sizes.
///
/// How a response is best read depends on its size, which is known only from its head:
/// - **small**, head and body within one connection buffer: one read into one buffer;
/// - **medium**, more than one buffer but a body below the splice line (two buffers) plus
///   `smallFirstRead`: one read into a large block, so the whole response takes one `recv`
///   and one send instead of two each (it is copied through user space, which below the
///   line costs less than a splice);
/// - **large**, a Content-Length body at or above that: a small first read,
///   just the head and a little more, so nearly all of the body goes through the pipe
///   instead of being copied in and out of user space.
/// So the first read of a response head follows what the member sent lately: small when
/// at least half of its last eight responses were large, into a large block when at least
/// half were medium. A wrong guess costs one more `recv` (a medium response read into one
/// buffer, or read small), a copy of what the first read took of a large body (a large
/// response read whole), or a large block held through a small response's exchange.
///
/// Plain value, loop-thread only (one per member per worker).
struct ResponseSizeHistory {
    /// The three sizes a response is recorded as.
    enum Size {
        case small, medium, large
    }

    private var large: UInt8 = 0
    private var medium: UInt8 = 0

    /// Records one response.
    mutating func record(_ size: Size) {
        large = large << 1 | (size == .large ? 1 : 0)
        medium = medium << 1 | (size == .medium ? 1 : 0)
    }

    /// True when at least four of the last eight responses were large.
    var expectsLarge: Bool { large.nonzeroBitCount >= 4 }

    /// True when at least four of the last eight responses were medium (and fewer than
    /// four large).
    var expectsMedium: Bool { medium.nonzeroBitCount >= 4 && !expectsLarge }

    /// Bytes the first read of a response head asks for when a large one is expected:
    /// 4 KiB, enough for the heads of nearly all responses (a longer head takes more reads
    /// of this size until it is complete).
    static let smallFirstRead = 4096
}
