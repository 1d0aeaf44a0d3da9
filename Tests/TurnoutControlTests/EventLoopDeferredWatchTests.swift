import CTurnoutSys
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import TurnoutCore

// A handler can be in the loop's table without its fd in epoll (`attach`), and be watched
// later, at once (`watch`) or after a delay (`watchSoon`): client connections that finish
// without waiting for their fd then cost no epoll_ctl.

/// Counts its events; stops the loop at the first one when asked to.
private final class Recorder: EventHandler {
    unowned let loop: EventLoop
    var events = 0
    var stopsLoop = false
    var heardAt: UInt64 = 0

    init(fd: Int32, loop: EventLoop) {
        self.loop = loop
        super.init(fd: fd)
    }

    override func handleEvent(_ events: UInt32) {
        self.events += 1
        heardAt = Clock.nowMilliseconds()
        if stopsLoop { loop.isRunning = false }
    }
}

/// A timer-only handler (no fd) that stops the loop when its timer expires.
private final class Stopper: EventHandler {
    unowned let loop: EventLoop

    init(loop: EventLoop) {
        self.loop = loop
        super.init(fd: -1)
    }

    override func handleTimeout() { loop.isRunning = false }
}

private func readableEventFD() -> Int32 {
    let fd = eventfd(1, cturnout_EFD_NONBLOCK_CLOEXEC)
    #expect(fd >= 0)
    return fd
}

private let edge = cturnout_EPOLLIN | cturnout_EPOLLET

@Test func anAttachedHandlerHearsNothingUntilWatchedAndThenHearsWhatWasReadyBefore() throws {
    let loop = try EventLoop()
    let stopper = Stopper(loop: loop)
    let shortly = loop.makeTimerList(durationMs: 30)
    let h = Recorder(fd: readableEventFD(), loop: loop)
    loop.attach(h)
    #expect(!h.isWatched)
    loop.armTimer(stopper, list: shortly)
    loop.run()
    #expect(h.events == 0, "an fd that is not in epoll raised an event")

    try loop.watch(h, events: edge)
    #expect(h.isWatched)
    try loop.watch(h, events: edge)  // a second watch is a no-op, not EEXIST
    loop.isRunning = true
    loop.armTimer(stopper, list: shortly)
    loop.run()
    #expect(h.events == 1, "readiness from before the watch was not reported")
    loop.close(h)
    loop.releaseRetired()
}

@Test func watchSoonAddsTheFdAfterTheDeferralEvenWhenNothingElseWakesTheLoop() throws {
    let loop = try EventLoop()
    let stopper = Stopper(loop: loop)
    loop.armTimer(stopper, list: loop.makeTimerList(durationMs: 5000))  // a failing test still ends
    let h = Recorder(fd: readableEventFD(), loop: loop)
    h.stopsLoop = true
    loop.attach(h)
    let asked = Clock.nowMilliseconds()
    loop.watchSoon(h, events: edge)
    loop.watchSoon(h, events: edge)  // asking twice defers once
    loop.run()
    #expect(h.events == 1)
    #expect(h.isWatched)
    let waited = h.heardAt - asked
    // Not before the deferral (less one millisecond of clock granularity), and the idle
    // wait was shortened for it: without that it would block for the 1 s default.
    #expect(waited + 1 >= EventLoop.deferredWatchMs, "watched after \(waited) ms")
    #expect(waited < 900, "watched only after \(waited) ms: the wait was not shortened")
    loop.close(h)
    loop.cancelTimer(stopper)
    loop.releaseRetired()
}

@Test func aHandlerClosedBeforeItsDeferredWatchIsFreedAtOnceAndOneWatchedIsLeftAlone() throws {
    let loop = try EventLoop()
    let stopper = Stopper(loop: loop)
    weak var closedOne: Recorder?
    let watchedOne = Recorder(fd: readableEventFD(), loop: loop)
    do {
        let h = Recorder(fd: readableEventFD(), loop: loop)
        loop.attach(h)
        loop.watchSoon(h, events: edge)
        loop.close(h)
        closedOne = h
    }
    loop.releaseRetired()
    #expect(closedOne == nil, "the deferred-watch list kept a closed handler alive")
    loop.attach(watchedOne)
    loop.watchSoon(watchedOne, events: edge)
    try loop.watch(watchedOne, events: edge)
    loop.armTimer(stopper, list: loop.makeTimerList(durationMs: Int(EventLoop.deferredWatchMs) + 40))
    loop.run()  // the deferred watch falls due: neither entry may be acted on
    #expect(watchedOne.events == 1, "watched twice or not at all")
    loop.close(watchedOne)
    loop.releaseRetired()
}

@Test func aDeferredWatchPendingWhenTheLoopStopsDoesNotKeepItsHandlerAlive() throws {
    let loop = try EventLoop()
    let stopper = Stopper(loop: loop)
    weak var pending: Recorder?
    do {
        let h = Recorder(fd: readableEventFD(), loop: loop)
        loop.attach(h)
        loop.watchSoon(h, events: edge)
        pending = h
    }
    loop.armTimer(stopper, list: loop.makeTimerList(durationMs: 5))
    loop.run()
    #expect(pending?.isWatched == false)
    // The owner's clean-up after `run`, as a worker's: close what is left, release it.
    loop.close(pending!)
    loop.releaseRetired()
    #expect(pending == nil, "the deferred-watch list still held the handler")
}
