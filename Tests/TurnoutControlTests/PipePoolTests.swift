import Glibc
import Testing
@testable import TurnoutCore

/// F_GETPIPE_SZ (F_LINUX_SPECIFIC_BASE + 8): GNU-only, so Glibc does not show it to Swift.
private let getPipeSize: Int32 = 1032

private func pipeSize(_ fd: Int32) -> Int32 { fcntl(fd, getPipeSize) }

private func inode(_ fd: Int32) -> UInt {
    var st = stat()
    guard fstat(fd, &st) == 0 else { return 0 }
    return UInt(st.st_ino)
}

private func closePipe(_ p: SplicePipe) {
    _ = close(p.readFD)
    _ = close(p.writeFD)
}

/// fs.pipe-max-size: above it only a privileged process may grow a pipe.
private func pipeMaxSize() -> Int32 {
    guard let f = fopen("/proc/sys/fs/pipe-max-size", "r") else { return .max }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 32)
    guard fgets(&line, 32, f) != nil else { return .max }
    return Int32(String(cString: line).filter(\.isNumber)) ?? .max
}

@Test func pipePoolMakesPipesOfThirtyTwoPages() throws {
    let pool = PipePool()
    let page = Int32(sysconf(Int32(_SC_PAGESIZE)))
    #expect(pool.capacity == 32 * page)
    #expect(pool.minimumCapacity == 16 * page)
    #expect(pool.mayHavePipe)
    let p = try #require(pool.take())
    defer { closePipe(p) }
    // Unprivileged, the kernel grows a pipe only up to fs.pipe-max-size (1 MiB by default,
    // more than 32 pages of 4 KiB).
    let expected = geteuid() == 0 ? pool.capacity : min(pool.capacity, max(pool.minimumCapacity, pipeMaxSize()))
    #expect(pipeSize(p.writeFD) == expected)
    #expect(pipeSize(p.readFD) == expected)
}

@Test func pipePoolReusesAnEmptyPipeButNotOneThatHoldsBytes() throws {
    let pool = PipePool(maxFree: 4)
    let a = try #require(pool.take())
    pool.give(a, isEmpty: true)
    let again = try #require(pool.take())
    #expect(again.readFD == a.readFD && again.writeFD == a.writeFD)
    let givenInode = inode(again.readFD)
    pool.give(again, isEmpty: false)  // closed, not pooled: the next take makes a new one
    let fresh = try #require(pool.take())
    // Descriptor numbers may be reused; the pipe's inode tells pipes apart.
    #expect(inode(fresh.readFD) != givenInode)
    #expect(pipeSize(fresh.writeFD) == pool.capacity)
    closePipe(fresh)
}

@Test func pipePoolRefusesASmallPipeAndSkipsTheNextTakesBeforeTryingAgain() throws {
    // A pool whose minimum is above what it asks for gets a pipe the kernel made smaller
    // than it accepts, as an unprivileged user over fs.pipe-user-pages-soft would.
    let pool = PipePool(slots: 16, minimumSlots: 32)
    #expect(pool.mayHavePipe)
    #expect(pool.take() == nil)
    #expect(pool.refusalsLeft == PipePool.takesSkippedAfterFailure)
    #expect(!pool.mayHavePipe)  // heads of large responses are read whole meanwhile
    for left in (0..<PipePool.takesSkippedAfterFailure).reversed() {
        #expect(pool.take() == nil)
        #expect(pool.refusalsLeft == left)
    }
    // The next take tries again (and is refused again, which starts a new count).
    #expect(pool.mayHavePipe)
    #expect(pool.take() == nil)
    #expect(pool.refusalsLeft == PipePool.takesSkippedAfterFailure)

    // A pipe given back is used first even while takes are being skipped.
    let ok = PipePool()
    let p = try #require(ok.take())
    pool.give(p, isEmpty: true)
    #expect(pool.mayHavePipe)
    let reused = try #require(pool.take())
    #expect(reused.readFD == p.readFD)
    #expect(pool.refusalsLeft == PipePool.takesSkippedAfterFailure)
    closePipe(reused)
}
