import Testing
@testable import TurnoutCore

// `IOBuffer.copyBytes` copies short runs with overlapping unaligned loads and stores; every
// length and alignment must give exactly the source bytes and touch nothing past them.

@Test func copyBytesCopiesEveryLengthAtEveryAlignmentAndNothingMore() {
    var generator = SystemRandomNumberGenerator()
    let source = UnsafeMutableRawBufferPointer.allocate(byteCount: 128, alignment: 16)
    let target = UnsafeMutableRawBufferPointer.allocate(byteCount: 128, alignment: 16)
    defer {
        source.deallocate()
        target.deallocate()
    }
    for i in 0..<source.count { source[i] = UInt8.random(in: 0...255, using: &generator) }
    for n in 0...80 {
        for srcOffset in 0..<8 {
            for dstOffset in 0..<8 {
                target.initializeMemory(as: UInt8.self, repeating: 0xEE)
                IOBuffer.copyBytes(
                    to: target.baseAddress! + dstOffset, from: source.baseAddress! + srcOffset, count: n)
                let copied = (0..<n).allSatisfy { target[dstOffset + $0] == source[srcOffset + $0] }
                let before = (0..<dstOffset).allSatisfy { target[$0] == 0xEE }
                let after = (dstOffset + n..<target.count).allSatisfy { target[$0] == 0xEE }
                #expect(copied && before && after, "n=\(n) src+\(srcOffset) dst+\(dstOffset)")
                if !(copied && before && after) { return }
            }
        }
    }
}

@Test func appendedPiecesFollowOneAnother() {
    let pool = BufferPool(blockSize: 4096)
    var buffer = IOBuffer()
    buffer.attach(pool)
    defer { buffer.release(pool) }
    var expected: [UInt8] = []
    let pieces: [StaticString] = ["", "a", ": ", "\r\n", "Host", "Content-Length: ", "X-Forwarded-Proto: http\r\n",
                                  "Transfer-Encoding: chunked\r\nConnection: upgrade\r\nUpgrade: "]
    for piece in pieces {
        buffer.append(piece)
        expected += UnsafeRawBufferPointer(start: piece.utf8Start, count: piece.utf8CodeUnitCount)
    }
    #expect(Array(buffer.bytes(from: 0)) == expected)
}

@Test func appendDecimalWritesEveryDigitCountExactly() {
    let pool = BufferPool(blockSize: 4096)
    var buffer = IOBuffer()
    buffer.attach(pool)
    defer { buffer.release(pool) }
    var values: [Int64] = [0, 1, 7, 200, 404, 65_536, Int64.max, Int64.max - 1]
    var power: Int64 = 1
    for _ in 0..<18 {
        power *= 10
        values += [power - 1, power, power + 1]
    }
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<1_000 { values.append(Int64.random(in: 0...Int64.max, using: &generator)) }
    for value in values {
        buffer.readIndex = 0
        buffer.writeIndex = 0
        buffer.append(byte: 0x3C)
        buffer.appendDecimal(value)
        buffer.append(byte: 0x3E)
        #expect(Array(buffer.readable) == Array("<\(value)>".utf8), "value \(value)")
    }
}

// The pool keeps a returned block while fewer are free than are in use (or than its
// floor), so a load whose number of blocks in use swings mallocs nothing once it has
// reached its peak, and what stays after the load has gone is the floor.

@Test func aPoolUnderASwingingLoadMallocsOnlyUpToItsPeak() {
    let pool = BufferPool(blockSize: 1024, maxFree: 8)  // floors: 8 normal, 2 large
    var held: [UnsafeMutableRawPointer] = []
    var large: [UnsafeMutableRawPointer] = []
    for _ in 0..<100 { held.append(pool.take()) }
    for _ in 0..<40 { large.append(pool.takeLarge()) }
    #expect(pool.allocations == 140)
    for _ in 0..<50 {
        // The number in use swings between 100 and 60 (normal), 40 and 20 (large).
        for _ in 0..<40 { pool.give(held.removeLast()) }
        for _ in 0..<20 { pool.give(large.removeLast(), capacity: pool.largeBlockSize) }
        for _ in 0..<40 { held.append(pool.take()) }
        for _ in 0..<20 { large.append(pool.takeLarge()) }
    }
    #expect(pool.allocations == 140)
    for p in held { pool.give(p) }
    for p in large { pool.give(p, capacity: pool.largeBlockSize) }
    // Returned last, with few in use, the blocks beyond half the peak and the floor went.
    #expect(pool.freeCounts.normal == 50)
    #expect(pool.freeCounts.large == 20)
    #expect(pool.freeCounts.normal <= 100 / 2 && pool.freeCounts.large <= 40 / 2)
}

@Test func aPoolKeepsItsFloorAndFreesTheRest() {
    let pool = BufferPool(blockSize: 1024, maxFree: 8)
    let blocks = (0..<5).map { _ in pool.take() }
    for p in blocks { pool.give(p) }
    #expect(pool.freeCounts.normal == 5)
    let again = (0..<5).map { _ in pool.take() }
    #expect(pool.allocations == 5)
    for p in again { pool.give(p) }
    let large = (0..<3).map { _ in pool.takeLarge() }
    for p in large { pool.give(p, capacity: pool.largeBlockSize) }
    // With 3 in use at the first return, then 2 and 1: kept while fewer were free.
    #expect(pool.freeCounts.large == 2)
}
