#if canImport(Glibc)
import Glibc
#endif

/// How the bytes of one connection reach its socket.
///
/// The relay logic in `ClientConnection` reads, writes and half-closes only through
/// this type, so a TLS stream (OpenSSL over the same non-blocking fd, reporting "want
/// read/write" as `.wouldBlock`) becomes one more case here without touching the proxy
/// state machine. Today every connection is plain TCP; a single-case enum costs nothing
/// at run time (no existential, no allocation, the switch folds away).
enum Transport {
    /// Bytes go to the kernel socket as they are.
    case plain

    @inline(__always)
    func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) throws(IOError) -> IOResult<Int> {
        switch self {
        case .plain: return try Syscall.receive(fd, buffer, count)
        }
    }

    /// `closesAfter`: these are the last bytes before the connection is closed or
    /// half-closed, so the kernel may keep a short last segment back and send it with the
    /// FIN (one packet, one wake-up of the peer, instead of two).
    @inline(__always)
    func writev(_ fd: Int32, _ iov: UnsafePointer<iovec>, _ count: Int32, closesAfter: Bool = false) throws(IOError)
        -> IOResult<Int>
    {
        switch self {
        case .plain: return try Syscall.send(fd, iov, count, moreFollows: closesAfter)
        }
    }

    /// Whether a read that returned less than asked for leaves nothing readable behind
    /// (true for a kernel socket; TLS may hold decrypted bytes of a record back).
    var isDrainedByShortRead: Bool {
        switch self {
        case .plain: return true
        }
    }

    /// Whether bytes may move between this connection's socket and a pipe with splice(2)
    /// (a TLS stream must go through OpenSSL in user space).
    var canSplice: Bool {
        switch self {
        case .plain: return true
        }
    }

    /// Whether the peer sent bytes that were not read yet (TLS would also count decrypted
    /// bytes it holds).
    @inline(__always)
    func hasUnreadInput(_ fd: Int32) -> Bool {
        switch self {
        case .plain: return Syscall.hasUnreadInput(fd)
        }
    }

    /// Ends the sending direction (TLS would send close_notify first).
    @inline(__always)
    func shutdownWrite(_ fd: Int32) {
        switch self {
        case .plain: Syscall.shutdownWrite(fd)
        }
    }
}
