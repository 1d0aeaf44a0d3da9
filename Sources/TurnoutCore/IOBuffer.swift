#if canImport(Glibc)
import Glibc
#endif

/// Hands out fixed-size I/O blocks and takes them back, so steady-state proxying
/// allocates no memory. Blocks come in two sizes: `blockSize` for every buffer, and
/// `largeBlockSize` (4 × `blockSize`) for a message that will not fit one: a response or
/// request body too big for one block, or the whole of a medium response or an upload
/// read at once (`ResponseSizeHistory`, `ClientConnection`). Owned by one worker thread;
/// not thread-safe.
///
/// A returned block is kept while fewer are free than are in use, or than a floor
/// (`maxFree` normal blocks, a quarter as many large ones), and freed otherwise. Under
/// load the free list so covers what the number in use swings by, and no exchange
/// mallocs (above the floor, no more is kept free than is in use); once the load has
/// gone, at most the floor stays (4 MiB of each size with 16 KiB blocks).
final class BufferPool {
    let blockSize: Int
    let largeBlockSize: Int
    /// The free blocks of the normal size always kept; large ones: a quarter as many.
    let maxFree: Int
    // Loop-thread only.
    private var free: [UnsafeMutableRawPointer] = []
    private var largeFree: [UnsafeMutableRawPointer] = []
    private var inUse = 0
    private var largeInUse = 0
    /// Blocks of either size that came from malloc rather than the free lists.
    private(set) var allocations = 0

    init(blockSize: Int, maxFree: Int = 256) {
        self.blockSize = blockSize
        self.largeBlockSize = 4 * blockSize
        self.maxFree = maxFree
        free.reserveCapacity(maxFree)
        largeFree.reserveCapacity(maxFree / 4)
    }

    deinit {
        for p in free + largeFree { Glibc.free(p) }
    }

    /// Free blocks held now, normal and large.
    var freeCounts: (normal: Int, large: Int) { (free.count, largeFree.count) }

    func take() -> UnsafeMutableRawPointer {
        inUse += 1
        if let p = free.popLast() { return p }
        return allocate(blockSize)
    }

    func takeLarge() -> UnsafeMutableRawPointer {
        largeInUse += 1
        if let p = largeFree.popLast() { return p }
        return allocate(largeBlockSize)
    }

    /// Takes back a block of either size (told apart by `capacity`).
    func give(_ p: UnsafeMutableRawPointer, capacity: Int) {
        if capacity == largeBlockSize {
            largeInUse -= 1
            if largeFree.count < max(maxFree / 4, largeInUse) { largeFree.append(p) } else { Glibc.free(p) }
        } else {
            give(p)
        }
    }

    func give(_ p: UnsafeMutableRawPointer) {
        inUse -= 1
        if free.count < max(maxFree, inUse) { free.append(p) } else { Glibc.free(p) }
    }

    private func allocate(_ size: Int) -> UnsafeMutableRawPointer {
        allocations += 1
        guard let p = malloc(size) else { preconditionFailure("out of memory for an I/O buffer") }
        return p
    }
}

/// A byte buffer with a read and a write index over memory from a `BufferPool`.
///
/// Memory is attached only while the buffer holds bytes or is about to be read into;
/// an idle connection holds no buffer memory at all. A buffer may grow beyond the
/// pool's block size (up to a caller-given cap) to hold one large message head.
struct IOBuffer {
    private(set) var base: UnsafeMutableRawPointer?
    private(set) var capacity = 0
    private var isPooled = false
    var readIndex = 0
    var writeIndex = 0

    init() {}

    var readableBytes: Int { writeIndex - readIndex }
    var isEmpty: Bool { readIndex == writeIndex }
    var hasMemory: Bool { base != nil }
    var writableBytes: Int { capacity - writeIndex }

    /// Readable bytes as a raw buffer (valid until the next mutation).
    var readable: UnsafeRawBufferPointer {
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + readIndex, count: writeIndex - readIndex)
    }

    /// Bytes from `from` to the write index.
    func bytes(from: Int) -> UnsafeRawBufferPointer {
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + from, count: writeIndex - from)
    }

    /// Attaches a pooled block if the buffer has none: a large one with `large` (for a read
    /// expected to need one).
    mutating func attach(_ pool: BufferPool, large: Bool = false) {
        if base == nil {
            base = large ? pool.takeLarge() : pool.take()
            capacity = large ? pool.largeBlockSize : pool.blockSize
            isPooled = true
            readIndex = 0
            writeIndex = 0
        }
    }

    /// Returns the memory to the pool; the buffer must be empty.
    mutating func release(_ pool: BufferPool) {
        guard let b = base else { return }
        if isPooled { pool.give(b, capacity: capacity) } else { free(b) }
        base = nil
        capacity = 0
        readIndex = 0
        writeIndex = 0
        isPooled = false
    }

    /// Releases the memory if nothing is buffered.
    mutating func releaseIfEmpty(_ pool: BufferPool) {
        if readIndex == writeIndex { release(pool) }
    }

    /// Moves bytes from `keepFrom` (≤ readIndex) to the front; returns how far they moved.
    @discardableResult
    mutating func compact(keepFrom: Int) -> Int {
        guard let base, keepFrom > 0 else { return 0 }
        let count = writeIndex - keepFrom
        if count > 0 { memmove(base, base + keepFrom, count) }
        readIndex -= keepFrom
        writeIndex -= keepFrom
        return keepFrom
    }

    /// Removes `[start, end)` (which must end at the read index) by moving the readable
    /// bytes down to `start`.
    mutating func removeBytes(from start: Int, upTo end: Int) {
        guard let base, end > start else { return }
        precondition(end == readIndex, "only consumed bytes can be removed")
        let count = writeIndex - end
        if count > 0 { memmove(base + start, base + end, count) }
        readIndex = start
        writeIndex = start + count
    }

    /// Moves the contents into a large pooled block (same indexes), when this buffer is a
    /// pooled block of the normal size. Views into the old block are invalid afterwards.
    mutating func enlarge(_ pool: BufferPool) {
        guard let base, isPooled, capacity == pool.blockSize else { return }
        let p = pool.takeLarge()
        if writeIndex > 0 { memcpy(p, base, writeIndex) }
        pool.give(base)
        self.base = p
        capacity = pool.largeBlockSize
    }

    /// Grows the capacity to at least `newCapacity`, preserving contents.
    mutating func grow(to newCapacity: Int, pool: BufferPool) {
        guard newCapacity > capacity else { return }
        guard let p = malloc(newCapacity) else { preconditionFailure("out of memory for an I/O buffer") }
        if let base {
            memcpy(p, base, writeIndex)
            if isPooled { pool.give(base, capacity: capacity) } else { free(base) }
        }
        base = p
        capacity = newCapacity
        isPooled = false
    }

    /// Appends bytes; the caller has checked `writableBytes`. Inlined, with short copies
    /// done in place (see `copyBytes`): writing a head appends about 40 pieces, most of
    /// them a few bytes long (`": "`, `"\r\n"`, a field name).
    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let base, let src = bytes.baseAddress else { return }
        let n = bytes.count
        precondition(n <= capacity - writeIndex, "IOBuffer overflow")
        IOBuffer.copyBytes(to: base + writeIndex, from: src, count: n)
        writeIndex += n
    }

    @inline(__always)
    mutating func append(_ s: StaticString) {
        append(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// Copies `count` bytes between buffers that do not overlap. Up to 32 bytes with
    /// (possibly overlapping) unaligned loads and stores of the first and the last bytes;
    /// longer copies go to `memcpy`, whose call costs more than a short copy itself.
    @inline(__always)
    static func copyBytes(to dst: UnsafeMutableRawPointer, from src: UnsafeRawPointer, count n: Int) {
        switch n {
        case 0:
            return
        case 1:
            dst.storeBytes(of: src.load(as: UInt8.self), as: UInt8.self)
        case 2...3:
            copyEnds(UInt16.self, to: dst, from: src, count: n)
        case 4...7:
            copyEnds(UInt32.self, to: dst, from: src, count: n)
        case 8...16:
            copyEnds(UInt64.self, to: dst, from: src, count: n)
        case 17...32:
            copyEnds(UInt64.self, to: dst, from: src, count: 16)
            copyEnds(UInt64.self, to: dst + (n - 16), from: src + (n - 16), count: 16)
        default:
            memcpy(dst, src, n)
        }
    }

    /// Copies `count` bytes (between one and two `T`s) as the first and the last `T`.
    @inline(__always)
    private static func copyEnds<T: FixedWidthInteger>(
        _: T.Type, to dst: UnsafeMutableRawPointer, from src: UnsafeRawPointer, count n: Int
    ) {
        let size = MemoryLayout<T>.size
        let head = src.loadUnaligned(as: T.self)
        let tail = src.loadUnaligned(fromByteOffset: n - size, as: T.self)
        dst.storeBytes(of: head, as: T.self)
        dst.storeBytes(of: tail, toByteOffset: n - size, as: T.self)
    }

    mutating func append(byte: UInt8) {
        precondition(writeIndex < capacity, "IOBuffer overflow")
        base!.storeBytes(of: byte, toByteOffset: writeIndex, as: UInt8.self)
        writeIndex += 1
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Appends a non-negative integer in decimal; the caller has checked `writableBytes`.
    /// Counts the digits first, then writes them from the last one back, in place (a status
    /// code and a `Content-Length` go into every response head).
    mutating func appendDecimal(_ value: Int64) {
        precondition(value >= 0, "appendDecimal of a negative value")
        var v = UInt64(value)
        var digits = 1
        var bound: UInt64 = 10
        while digits < 19 && v >= bound {
            digits += 1
            bound &*= 10
        }
        precondition(digits <= capacity - writeIndex, "IOBuffer overflow")
        let p = base! + writeIndex
        var i = digits
        repeat {
            i -= 1
            let (q, r) = v.quotientAndRemainder(dividingBy: 10)
            p.storeBytes(of: UInt8(truncatingIfNeeded: r) &+ 0x30, toByteOffset: i, as: UInt8.self)
            v = q
        } while i > 0
        writeIndex += digits
    }

    mutating func appendHex(_ value: Int) {
        let hex: StaticString = "0123456789abcdef"
        var shift = 60
        var started = false
        while shift >= 0 {
            let d = (value >> shift) & 0xF
            if d != 0 || started || shift == 0 {
                append(byte: hex.utf8Start[d])
                started = true
            }
            shift -= 4
        }
    }
}

