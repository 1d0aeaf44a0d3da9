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
    /// Bytes each new pipe is asked to hold (F_SETPIPE_SZ): `slots` pages. What counts is
    /// the slots, since a spliced skb fragment takes one however short it is: the default
    /// pipe's 16 fall just short of a 64 KiB body from the page cache once its first bytes
    /// came with the head (17 fragments seen, so two splices each way instead of one).
    let capacity: Int32
    /// The smallest pipe worth splicing through: the kernel's default of 16 pages. A
    /// smaller one would take a splice call per few pages, more calls than the buffers'
    /// blocks of 4 × `limits.buffer_size`: an unprivileged process whose user holds more pipe
    /// pages than fs.pipe-user-pages-soft gets new pipes of two pages, and fs.pipe-max-size
    /// set below 64 KiB makes its pipes that small. Such a pipe is closed and the body goes
    /// through the buffers.
    let minimumCapacity: Int32
    /// Takes left that do not try to make a pipe, after one came out too small or none
    /// could be made.
    private(set) var refusalsLeft = 0
    /// How many takes after a failed one skip making a pipe: the user's pipe pages go down
    /// only as other transfers end, and each attempt costs up to five system calls.
    static let takesSkippedAfterFailure = 63

    /// `maxFree` 32: the kernel counts an empty pipe's slots against the user's
    /// fs.pipe-user-pages-soft as well, and 32 pooled pipes of 32 pages hold as many as 64
    /// of the default 16 did (1024 pages per worker).
    init(maxFree: Int = 32, slots: Int = 32, minimumSlots: Int = 16) {
        let page = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))
        self.maxFree = maxFree
        self.capacity = Int32(clamping: slots * page)
        self.minimumCapacity = Int32(clamping: minimumSlots * page)
        free.reserveCapacity(maxFree)
    }

    /// Whether `take` may return a pipe: one is pooled, or making one is not being skipped.
    /// While it is false a large response's head is read whole, as for a small one, since its
    /// body will be copied anyway.
    var mayHavePipe: Bool { refusalsLeft == 0 || !free.isEmpty }

    deinit {
        for p in free { close(p) }
    }

    /// A pipe, or nil when none can be made (out of descriptors), only a small one
    /// (`minimumCapacity`), or an earlier take failed fewer than
    /// `takesSkippedAfterFailure` takes ago: the body then goes through the connection's
    /// buffers as usual. A pooled pipe is returned first in any case.
    func take() -> SplicePipe? {
        if let p = free.popLast() { return p }
        if refusalsLeft > 0 {
            refusalsLeft -= 1
            return nil
        }
        var fds: (Int32, Int32) = (-1, -1)
        let size = withUnsafeMutableBytes(of: &fds) { cturnout_pipe_nonblocking($0.baseAddress!.assumingMemoryBound(to: Int32.self), capacity) }
        guard size >= 0 else {
            refusalsLeft = Self.takesSkippedAfterFailure
            return nil
        }
        let pipe = SplicePipe(readFD: fds.0, writeFD: fds.1)
        guard size >= minimumCapacity else {
            close(pipe)
            refusalsLeft = Self.takesSkippedAfterFailure
            return nil
        }
        return pipe
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
