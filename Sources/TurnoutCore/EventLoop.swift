import CTurnoutSys
#if canImport(Glibc)
import Glibc
#endif

/// Something registered with an `EventLoop`: one file descriptor and what to do when it
/// is ready or its timer expires. Subclasses override `handleEvent` and `handleTimeout`.
///
/// All state is owned by the loop's thread. Public so the control plane can run its own
/// loop (admin socket, signals) with the same machinery.
open class EventHandler {
    /// The descriptor this handler owns; -1 once closed.
    public internal(set) var fd: Int32
    /// Slot in the loop's table and its generation: epoll data carries both, so an event
    /// for a slot that was reused after close is recognised as stale and dropped.
    var slot: UInt32 = UInt32.max
    var slotGeneration: UInt32 = 0

    // Timer list membership (intrusive; see `TimerList`).
    var timerDeadline: UInt64 = 0
    var timerList: Int = -1
    var timerPrev: TimerLink?
    var timerNext: TimerLink?
    /// True while queued in the loop's ready queue.
    var isQueued = false
    /// True once the fd is in epoll (`watch`); an attached handler may not be yet.
    public internal(set) var isWatched = false
    /// Its entry in the loop's deferred-watch list (`watchSoon`), or -1.
    var watchEntry = -1
    var isWatchPending: Bool { watchEntry >= 0 }

    public init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        assert(fd < 0, "EventHandler released without closing fd \(fd)")
    }

    /// Readiness from epoll (a set of EPOLL* bits).
    open func handleEvent(_ events: UInt32) {}

    /// The handler's timer expired.
    open func handleTimeout() {}

    /// The handler asked to run again (fairness: it stopped with work left).
    open func handleReady() {}

    /// A deferred `watchSoon` could not add the fd to epoll (the handler would never hear
    /// from it again). The default closes the handler.
    open func handleWatchFailure(_ error: IOError, loop: EventLoop) {
        loop.close(self)
    }
}

/// A list of handlers whose timers all have the same duration. Appending at the tail
/// keeps the list sorted by deadline, so arming, re-arming and cancelling are O(1) and
/// only each list's head needs checking. There is one list per timeout kind.
struct TimerList {
    var head: TimerLink?
    var tail: TimerLink?
    var durationMs: UInt64
}

/// A link in a timer list: an unretained reference (a handler leaves its list before it
/// is released: `deregister` cancels the timer). Links are followed through
/// `_withUnsafeGuaranteedRef`, so walking and relinking the lists costs no retain or
/// release, which `unowned(unsafe)` optionals bound to strong locals did on every arm,
/// cancel and expiry check.
typealias TimerLink = Unmanaged<EventHandler>

/// One epoll instance driven by one thread: readiness dispatch, timers, a ready queue
/// for handlers that yielded, and an eventfd to be woken from other threads.
public final class EventLoop {
    // Loop-thread only, unless marked otherwise.
    let epollFD: Int32
    /// The registered handlers, each held +1 (retained at registration). Events are
    /// dispatched through unretained references: a handler is never freed during an
    /// iteration, because deregistering moves its reference to `retired`, which is
    /// released only after the iteration. So a handler that closes itself (or another)
    /// in its callback stays valid until the callback returns, and dispatch costs no
    /// retain and release per event.
    private var handlers: [Unmanaged<EventHandler>?] = []
    private var retired: [Unmanaged<EventHandler>] = []
    private var generations: [UInt32] = []
    private var freeSlots: [UInt32] = []
    private var events: UnsafeMutablePointer<epoll_event>
    private let maxEvents = 256
    /// The timer lists, in a fixed block rather than an Array: arming and cancelling write
    /// list heads and tails several times per request, and each write through an Array
    /// would check the array's uniqueness first.
    private let timerLists: UnsafeMutablePointer<TimerList>
    private var timerListCount = 0
    private static let maxTimerLists = 32
    /// No armed timer expires before this (a lower bound: cancelling leaves it alone).
    /// `expireTimers` looks at the lists only once it has passed, then makes it exact.
    private var earliestDeadline = UInt64.max
    private var ready: [EventHandler] = []
    private var readySwap: [EventHandler] = []
    /// `watchSoon` requests, oldest first, from `watchHead` on: each handler, its events and
    /// when it asked (loop time, ms).
    private var watchPending: [EventHandler?] = []
    private var watchPendingEvents: [UInt32] = []
    private var watchPendingSince: [UInt64] = []
    private var watchHead = 0
    /// How long `watchSoon` defers: a deferred fd is in epoll at most about this long after it
    /// asked (waits are shortened to keep that true on an idle loop).
    public static let deferredWatchMs: UInt64 = 50
    /// Cached monotonic time, refreshed after each wait.
    public private(set) var now: UInt64 = Clock.nowMilliseconds()
    private(set) var nowNanos: UInt64 = Clock.nowNanoseconds()
    /// Work to run after each loop iteration (log flushing, mailbox).
    public var afterIteration: () -> Void = {}
    public var isRunning = true
    /// Polling before a blocking wait (off unless the owner sets a bound).
    public var busyPoll = BusyPollWindow(maxNs: 0)
    /// Waits answered while polling, and waits that could sleep (a timeout other than 0); for the admin API's
    /// statistics.
    public private(set) var polledWaits: UInt64 = 0
    public private(set) var blockingWaits: UInt64 = 0

    public init() throws {
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        if fd < 0 { throw IOError("epoll_create1", errno: errno) }
        epollFD = fd
        events = .allocate(capacity: maxEvents)
        timerLists = .allocate(capacity: EventLoop.maxTimerLists)
        handlers.reserveCapacity(1024)
        retired.reserveCapacity(64)
        ready.reserveCapacity(64)
        readySwap.reserveCapacity(64)
    }

    deinit {
        releaseRetired()
        for case let h? in handlers { h.release() }
        events.deallocate()
        timerLists.deinitialize(count: timerListCount)
        timerLists.deallocate()
        Syscall.close(epollFD)
    }

    var registeredCount: Int { handlers.count - freeSlots.count }

    /// Adds a timer list for a fixed duration and returns its index.
    public func makeTimerList(durationMs: Int) -> Int {
        precondition(timerListCount < EventLoop.maxTimerLists, "more timer lists than EventLoop.maxTimerLists")
        (timerLists + timerListCount).initialize(to: TimerList(head: nil, tail: nil, durationMs: UInt64(max(1, durationMs))))
        timerListCount += 1
        return timerListCount - 1
    }

    // MARK: Registration

    /// Registers `handler.fd` for `events` (edge-triggered unless the caller passes otherwise):
    /// `attach` and `watch` in one step.
    public func register(_ handler: EventHandler, events: UInt32) throws(IOError) {
        attach(handler)
        do {
            try watch(handler, events: events)
        } catch {
            detach(handler)
            throw error
        }
    }

    /// Takes the handler into the loop's table (held +1; its timers work, events for it are
    /// dispatched once it is watched) without adding its fd to epoll. A handler that finishes
    /// without ever waiting for its fd costs no `epoll_ctl` at all; `watch` or `watchSoon`
    /// adds the fd when it has to wait.
    public func attach(_ handler: EventHandler) {
        precondition(handler.slot == UInt32.max, "handler attached twice")
        let slot: UInt32
        let reference = Unmanaged.passRetained(handler)
        if let s = freeSlots.popLast() {
            slot = s
            handlers[Int(s)] = reference
        } else {
            slot = UInt32(handlers.count)
            handlers.append(reference)
            generations.append(0)
        }
        generations[Int(slot)] &+= 1
        handler.slot = slot
        handler.slotGeneration = generations[Int(slot)]
    }

    /// Adds an attached handler's fd to epoll for `events`. With edge-triggered events the
    /// fd's current readiness is reported by the next wait, so nothing that happened while it
    /// was unwatched is lost.
    public func watch(_ handler: EventHandler, events: UInt32) throws(IOError) {
        precondition(handler.slot != UInt32.max, "watching a handler that is not attached")
        if handler.isWatched { return }
        var ev = epoll_event()
        ev.events = events
        ev.data.u64 = UInt64(handler.slotGeneration) << 32 | UInt64(handler.slot)
        if epoll_ctl(epollFD, EPOLL_CTL_ADD, handler.fd, &ev) != 0 {
            throw IOError("epoll_ctl(ADD)", errno: errno)
        }
        handler.isWatched = true
        if handler.watchEntry >= 0 {
            watchPending[handler.watchEntry] = nil
            handler.watchEntry = -1
        }
    }

    /// Watches the handler `deferredWatchMs` from now unless it is watched or closed by then.
    /// For a handler that expects to be done before it needs events but must not go unheard if
    /// it is not: a client connection waiting for its upstream, whose hang-up is then noticed
    /// up to that much later, while most such connections close without entering epoll.
    public func watchSoon(_ handler: EventHandler, events: UInt32) {
        if handler.isWatched || handler.isWatchPending || handler.fd < 0 { return }
        handler.watchEntry = watchPending.count
        watchPending.append(handler)
        watchPendingEvents.append(events)
        watchPendingSince.append(now)
    }

    /// Carries out the deferred watches that are due.
    private func watchDeferred() {
        // A failure callback may close handlers and defer others: the count is read afresh.
        var i = watchHead
        while i < watchPending.count && watchPendingSince[i] &+ EventLoop.deferredWatchMs <= now {
            if let h = watchPending[i] {
                watchPending[i] = nil  // the reference goes now; the entry with the batch
                h.watchEntry = -1
                if h.fd >= 0 && !h.isWatched {
                    do {
                        try watch(h, events: watchPendingEvents[i])
                    } catch {
                        h.handleWatchFailure(error, loop: self)
                    }
                }
            }
            i += 1
        }
        let count = watchPending.count
        if i == count {
            watchPending.removeAll(keepingCapacity: true)
            watchPendingEvents.removeAll(keepingCapacity: true)
            watchPendingSince.removeAll(keepingCapacity: true)
            watchHead = 0
        } else {
            // The entries done are removed a batch at a time.
            watchHead = i
            if watchHead >= 256 && watchHead * 2 >= count {
                watchPending.removeSubrange(0..<watchHead)
                watchPendingEvents.removeSubrange(0..<watchHead)
                watchPendingSince.removeSubrange(0..<watchHead)
                for h in watchPending { h?.watchEntry -= watchHead }
                watchHead = 0
            }
        }
    }

    private func dropDeferredWatches() {
        for h in watchPending[watchHead...] { h?.watchEntry = -1 }
        watchPending.removeAll()
        watchPendingEvents.removeAll()
        watchPendingSince.removeAll()
        watchHead = 0
    }

    /// Undoes `attach` for a handler whose fd never entered epoll.
    private func detach(_ handler: EventHandler) {
        if let reference = handlers[Int(handler.slot)] { reference.release() }
        handlers[Int(handler.slot)] = nil
        freeSlots.append(handler.slot)
        handler.slot = UInt32.max
    }

    /// Changes the event mask of a registered handler.
    func modify(_ handler: EventHandler, events: UInt32) throws(IOError) {
        var ev = epoll_event()
        ev.events = events
        ev.data.u64 = UInt64(handler.slotGeneration) << 32 | UInt64(handler.slot)
        if epoll_ctl(epollFD, EPOLL_CTL_MOD, handler.fd, &ev) != 0 {
            throw IOError("epoll_ctl(MOD)", errno: errno)
        }
    }

    /// Removes the handler from epoll, its timer and the table. Does not close the fd.
    /// `isClosing`: the fd is about to be closed, which removes it from epoll by itself
    /// (every fd here is opened CLOEXEC and never duplicated), so no EPOLL_CTL_DEL call.
    /// Events of this batch still addressed to its slot are dropped by the generation check.
    func deregister(_ handler: EventHandler, isClosing: Bool = false) {
        cancelTimer(handler)
        guard handler.slot != UInt32.max else { return }
        if !isClosing && handler.isWatched {
            var ev = epoll_event()
            _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, handler.fd, &ev)
        }
        handler.isWatched = false
        if handler.watchEntry >= 0 {
            // Not kept for its deferred watch: the entry stays, empty, until it is due.
            watchPending[handler.watchEntry] = nil
            handler.watchEntry = -1
        }
        if let reference = handlers[Int(handler.slot)] { retired.append(reference) }
        handlers[Int(handler.slot)] = nil
        freeSlots.append(handler.slot)
        handler.slot = UInt32.max
    }

    /// Drops the references of handlers deregistered since the last call. `run` calls it
    /// after each iteration; an owner that closes handlers after `run` returns calls it
    /// once it is done (their references would otherwise wait for the loop's deinit).
    public func releaseRetired() {
        if retired.isEmpty { return }
        for h in retired { h.release() }
        retired.removeAll(keepingCapacity: true)
    }

    /// Deregisters and closes the handler's fd.
    public func close(_ handler: EventHandler) {
        guard handler.fd >= 0 else { return }
        deregister(handler, isClosing: true)
        Syscall.close(handler.fd)
        handler.fd = -1
    }

    // MARK: Timers

    /// Arms (or re-arms) the handler's timer on `list`: it fires after the list's duration.
    public func armTimer(_ handler: EventHandler, list: Int) {
        let deadline = now + timerLists[list].durationMs
        if handler.timerList == list && handler.timerDeadline == deadline { return }
        cancelTimer(handler)
        handler.timerList = list
        handler.timerDeadline = deadline
        handler.timerNext = nil
        handler.timerPrev = timerLists[list].tail
        let link = TimerLink.passUnretained(handler)
        if let tail = timerLists[list].tail {
            tail._withUnsafeGuaranteedRef { $0.timerNext = link }
        } else {
            timerLists[list].head = link
        }
        timerLists[list].tail = link
        if deadline < earliestDeadline { earliestDeadline = deadline }
    }

    public func cancelTimer(_ handler: EventHandler) {
        let list = handler.timerList
        guard list >= 0 else { return }
        let prev = handler.timerPrev
        let next = handler.timerNext
        if let prev {
            prev._withUnsafeGuaranteedRef { $0.timerNext = next }
        } else {
            timerLists[list].head = next
        }
        if let next {
            next._withUnsafeGuaranteedRef { $0.timerPrev = prev }
        } else {
            timerLists[list].tail = prev
        }
        handler.timerPrev = nil
        handler.timerNext = nil
        handler.timerList = -1
        handler.timerDeadline = 0
    }

    /// The handler whose timer on `list` expires first (the one armed longest ago).
    public func oldestTimer(on list: Int) -> EventHandler? {
        timerLists[list].head?.takeUnretainedValue()
    }

    private func nextTimeoutMs() -> Int32 {
        if !ready.isEmpty { return 0 }
        var earliest = earliestDeadline
        if watchHead < watchPending.count {
            earliest = min(earliest, watchPendingSince[watchHead] &+ EventLoop.deferredWatchMs)
        }
        if earliest == UInt64.max { return 1000 }
        if earliest <= now { return 0 }
        return Int32(min(earliest - now, 1000))
    }

    private func expireTimers() {
        guard now >= earliestDeadline else { return }
        for i in 0..<timerListCount {
            while let link = timerLists[i].head, link._withUnsafeGuaranteedRef({ $0.timerDeadline <= now }) {
                // A strong reference for the call: the handler may close itself in it.
                let h = link.takeUnretainedValue()
                cancelTimer(h)
                h.handleTimeout()
            }
        }
        var earliest = UInt64.max
        for i in 0..<timerListCount {
            if let deadline = timerLists[i].head?._withUnsafeGuaranteedRef({ $0.timerDeadline }), deadline < earliest {
                earliest = deadline
            }
        }
        earliestDeadline = earliest
    }

    // MARK: Ready queue

    /// Runs `handler.handleReady()` after the current batch of events.
    func enqueueReady(_ handler: EventHandler) {
        if handler.isQueued { return }
        handler.isQueued = true
        ready.append(handler)
    }

    // MARK: Running

    /// One wait for events: at once when work is queued or a timer is due; otherwise, if the busy-poll window is
    /// open, polls for up to that long, then blocks until an event or the earliest timer. Refreshes the cached time.
    private func waitForEvents() -> Int32 {
        let timeout = nextTimeoutMs()
        let capacity = Int32(maxEvents)
        if timeout == 0 || busyPoll.maxNs == 0 {
            let n = cturnout_epoll_wait(epollFD, events, capacity, timeout)
            nowNanos = Clock.nowNanoseconds()
            if timeout != 0 { blockingWaits &+= 1 }
            return n
        }
        if busyPoll.windowNs > 0 {
            let limit = Clock.nowNanoseconds() &+ busyPoll.windowNs
            repeat {
                let n = cturnout_epoll_wait(epollFD, events, capacity, 0)
                nowNanos = Clock.nowNanoseconds()
                if n != 0 {
                    polledWaits &+= 1
                    return n
                }
            } while nowNanos < limit
        } else {
            nowNanos = Clock.nowNanoseconds()
        }
        let before = nowNanos
        let n = cturnout_epoll_wait(epollFD, events, capacity, timeout)
        nowNanos = Clock.nowNanoseconds()
        blockingWaits &+= 1
        busyPoll.slept(nowNanos &- before)
        return n
    }

    /// Runs until `isRunning` is false.
    public func run() {
        while isRunning {
            let n = waitForEvents()
            now = nowNanos / 1_000_000
            if n > 0 {
                for i in 0..<Int(n) {
                    let data = events[i].data.u64
                    let slot = Int(data & 0xFFFF_FFFF)
                    let generation = UInt32(data >> 32)
                    guard slot < handlers.count, generations[slot] == generation, let h = handlers[slot] else { continue }
                    h._withUnsafeGuaranteedRef { $0.handleEvent(events[i].events) }
                }
            } else if n < 0 && errno != EINTR {
                preconditionFailure("epoll_wait failed: errno \(errno)")
            }
            if !ready.isEmpty {
                swap(&ready, &readySwap)
                for h in readySwap {
                    h.isQueued = false
                    if h.fd >= 0 { h.handleReady() }
                }
                readySwap.removeAll(keepingCapacity: true)
            }
            expireTimers()
            if watchHead < watchPending.count { watchDeferred() }
            afterIteration()
            releaseRetired()
        }
        // Stopped: what is still queued or deferred will not run, and the queues' references
        // would keep those handlers (and, through them, their owners) alive.
        for h in ready { h.isQueued = false }
        ready.removeAll()
        dropDeferredWatches()
    }
}

/// Wakes a loop from another thread (eventfd registered level-triggered).
public final class WakeupHandler: EventHandler {
    let onWake: () -> Void

    public init(onWake: @escaping () -> Void) throws {
        let fd = eventfd(0, cturnout_EFD_NONBLOCK_CLOEXEC)
        if fd < 0 { throw IOError("eventfd", errno: errno) }
        self.onWake = onWake
        super.init(fd: fd)
    }

    /// Safe to call from any thread.
    public func wake() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Glibc.write(fd, $0.baseAddress, 8) }
    }

    public override func handleEvent(_ events: UInt32) {
        var value: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &value) { Glibc.read(fd, $0.baseAddress, 8) }
        onWake()
    }
}
