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
