import CTurnoutSys
#if canImport(Glibc)
import Glibc
#endif

/// A kernel pipe that carries a response body from the upstream socket to the client's
/// with splice(2): the bytes never pass through user space (no read copy, no write copy),
/// and one call moves what a pipe holds (`PipePool.capacity`).
struct SplicePipe {
    let readFD: Int32
    let writeFD: Int32
}

/// The pipes one worker keeps for reuse. Loop-thread only. A pipe comes back only when it
/// is empty; one that still holds bytes (an aborted transfer) is closed instead.
final class PipePool {
    private var free: [SplicePipe] = []
    let maxFree: Int
    /// Bytes each new pipe is asked to hold (F_SETPIPE_SZ). What counts is its slots, one
    /// page each, since a spliced skb fragment takes a slot however short it is: the
    /// default pipe's 16 fall just short of a 64 KiB body from the page cache once its
    /// first bytes came with the head (17 fragments seen, so two splices each way instead
    /// of one). 128 KiB gives 32.
    let capacity: Int32

    init(maxFree: Int = 64, capacity: Int32 = 128 * 1024) {
        self.maxFree = maxFree
        self.capacity = capacity
        free.reserveCapacity(maxFree)
    }

    deinit {
        for p in free { close(p) }
    }

    /// A pipe, or nil when none can be made (out of descriptors): the body then goes
    /// through the connection's buffers as usual.
    func take() -> SplicePipe? {
        if let p = free.popLast() { return p }
        var fds: (Int32, Int32) = (-1, -1)
        let r = withUnsafeMutableBytes(of: &fds) { cturnout_pipe_nonblocking($0.baseAddress!.assumingMemoryBound(to: Int32.self), capacity) }
        guard r == 0 else { return nil }
        return SplicePipe(readFD: fds.0, writeFD: fds.1)
    }

    func give(_ p: SplicePipe, isEmpty: Bool) {
        if isEmpty && free.count < maxFree {
            free.append(p)
        } else {
            close(p)
        }
    }

    private func close(_ p: SplicePipe) {
        Syscall.close(p.readFD)
        Syscall.close(p.writeFD)
    }
}
