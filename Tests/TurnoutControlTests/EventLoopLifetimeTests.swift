import CTurnoutSys
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import TurnoutCore

// The loop dispatches events through unretained references; what keeps a handler valid
// while its callback runs is that the loop frees no handler before the iteration ends.

/// Closes itself in its event callback and records whether it had been freed by then.
private final class SelfClosingHandler: EventHandler {
    nonisolated(unsafe) static var deinits = 0
    nonisolated(unsafe) static var deinitsSeenAfterClose = -1
    unowned let loop: EventLoop

    init(fd: Int32, loop: EventLoop) {
        self.loop = loop
        super.init(fd: fd)
    }

    deinit { SelfClosingHandler.deinits += 1 }

    override func handleEvent(_ events: UInt32) {
        let loop = self.loop
        loop.close(self)
        // Only globals from here on: if the close had freed this handler, `self` would dangle.
        SelfClosingHandler.deinitsSeenAfterClose = SelfClosingHandler.deinits
        loop.isRunning = false
    }
}

@Test func aHandlerThatClosesItselfStaysValidUntilTheIterationEndsAndIsFreedThen() throws {
    let loop = try EventLoop()
    SelfClosingHandler.deinits = 0
    SelfClosingHandler.deinitsSeenAfterClose = -1
    weak var watched: SelfClosingHandler?
    do {
        let fd = eventfd(1, cturnout_EFD_NONBLOCK_CLOEXEC)  // readable at once
        #expect(fd >= 0)
        let h = SelfClosingHandler(fd: fd, loop: loop)
        try loop.register(h, events: cturnout_EPOLLIN)
        watched = h
    }
    #expect(watched != nil, "the loop's table holds the handler")
    loop.run()
    #expect(SelfClosingHandler.deinitsSeenAfterClose == 0, "freed inside its own callback")
    #expect(SelfClosingHandler.deinits == 1, "not freed after the iteration")
    #expect(watched == nil)
}

@Test func handlersClosedAfterRunReturnsAreFreedByReleaseRetired() throws {
    let loop = try EventLoop()
    weak var watched: EventHandler?
    do {
        let fd = eventfd(0, cturnout_EFD_NONBLOCK_CLOEXEC)
        let h = EventHandler(fd: fd)
        try loop.register(h, events: cturnout_EPOLLIN)
        watched = h
    }
    loop.close(watched!)
    #expect(watched != nil, "kept until the owner releases what it retired")
    loop.releaseRetired()
    #expect(watched == nil)
}

/// Yields (re-queues itself from its ready callback, as a connection with work left does)
/// and stops the loop there, so the loop ends with it still queued.
private final class QueuedAtStopHandler: EventHandler {
    unowned let loop: EventLoop

    init(fd: Int32, loop: EventLoop) {
        self.loop = loop
        super.init(fd: fd)
    }

    override func handleEvent(_ events: UInt32) {
        loop.enqueueReady(self)
    }

    override func handleReady() {
        loop.enqueueReady(self)
        loop.isRunning = false
    }
}

@Test func aHandlerStillQueuedWhenTheLoopStopsIsNotKeptAliveByTheQueue() throws {
    let loop = try EventLoop()
    weak var watched: QueuedAtStopHandler?
    do {
        let fd = eventfd(1, cturnout_EFD_NONBLOCK_CLOEXEC)
        let h = QueuedAtStopHandler(fd: fd, loop: loop)
        try loop.register(h, events: cturnout_EPOLLIN)
        watched = h
    }
    loop.run()
    // The owner's clean-up after `run`, as a worker's: close what is left, release it.
    loop.close(watched!)
    loop.releaseRetired()
    #expect(watched == nil, "the ready queue still held the handler")
}
