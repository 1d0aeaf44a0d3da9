import Testing
@testable import TurnoutCore
import TurnoutHTTP

// An exchange goes back to its pool after every request: `reset` must return it to a new
// exchange's state while keeping (not reallocating) the storage it has grown.

@Test func exchangeValuesHoldNoReferencesSoTheirResetReleasesNothing() {
    #expect(_isPOD(ExchangeValues.self))
}

@Test func aResetExchangeIsLikeANewOneAndKeepsItsStorage() throws {
    var ex = ExchangeState(maxTrailerBytes: 777, allocated: true)
    let fresh = ExchangeState(maxTrailerBytes: 777, allocated: true)

    // Use it as one request would.
    let request = Array("POST /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-hop\r\nContent-Length: 3\r\n\r\n".utf8)
    try request.withUnsafeBytes { try HTTP1Parser.parseRequest($0, limits: HTTPHeadLimits(), into: &ex.head) }
    let response = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: y-hop\r\n\r\n".utf8)
    try response.withUnsafeBytes {
        try HTTP1Parser.parseResponse($0, requestMethod: .post, limits: HTTPHeadLimits(), into: &ex.response)
    }
    #expect(ex.head.headers.count == 3 && ex.head.connectionTokens.count == 1)
    #expect(ex.response.headers.count == 2 && ex.response.connectionTokens.count == 1)
    ex.tunnelHead = request
    ex.v.isHeadParsed = true
    ex.v.requestRemaining = 3
    ex.v.isRatePaused = false
    ex.v.status = 200
    ex.v.bytesOut = 99
    ex.v.hasRetried = true
    ex.v.responseMode = .length
    let headCapacity = ex.head.headers.capacity
    let responseCapacity = ex.response.headers.capacity

    ex.reset()

    #expect(ex.head.headers.isEmpty && ex.head.connectionTokens.isEmpty)
    #expect(ex.response.headers.isEmpty && ex.response.connectionTokens.isEmpty)
    #expect(ex.head.headers.capacity == headCapacity && headCapacity >= 32)
    #expect(ex.response.headers.capacity == responseCapacity && responseCapacity >= 32)
    #expect(ex.head.framing == .none && ex.head.hostIndex == -1 && ex.head.headLength == 0)
    #expect(ex.response.status == 0 && ex.response.framing == .none)
    #expect(ex.tunnelHead.isEmpty)
    #expect(ex.requestIDBytes.count == 32)
    #expect(ex.v.isHeadParsed == fresh.v.isHeadParsed)
    #expect(ex.v.requestRemaining == 0 && ex.v.status == 0 && ex.v.bytesOut == 0 && !ex.v.hasRetried)
    #expect(ex.v.isRatePaused, "the body rate is timed from the first body byte again")
    #expect(ex.v.responseMode == .none)
    #expect(ex.v.requestChunked.maxTrailerBytes == 777 && ex.v.responseChunked.maxTrailerBytes == 777)
}
