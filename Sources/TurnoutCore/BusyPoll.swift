/// How long an event loop polls without sleeping before it blocks in `epoll_wait`: an adaptive window in the
/// manner of the kernel's `haltpoll` cpuidle governor.
///
/// Sleeping costs a context switch and, on a virtual machine whose vCPU then halts, a wake-up through the
/// hypervisor when the next event comes; under load that round trip leaves the CPU idle between events that are
/// only microseconds apart. Polling for a short while first avoids it, at the price of the CPU time spent polling.
/// The window adapts so that the price is paid only where it buys something: it opens (to `startNs`, then doubling up
/// to `maxNs`) each time the loop slept no longer than `maxNs`, and halves, closing below `startNs`, each time it
/// slept longer. A loop whose events are further apart than `maxNs` never polls; an idle proxy costs nothing.
public struct BusyPollWindow: Equatable, Sendable {
    /// The configured upper bound; 0 turns polling off.
    public let maxNs: UInt64
    /// The current window: poll this long before blocking (0: block at once).
    public private(set) var windowNs: UInt64 = 0

    /// The first window opened after a short sleep: a tenth of the bound, at least 1 µs.
    public var startNs: UInt64 { max(maxNs / 10, 1_000) }

    public init(maxNs: UInt64) {
        self.maxNs = maxNs
    }

    /// Records a blocking wait that lasted `sleptNs` (after the window, if any, found nothing).
    public mutating func slept(_ sleptNs: UInt64) {
        guard maxNs > 0 else { return }
        if sleptNs <= maxNs {
            windowNs = windowNs == 0 ? min(startNs, maxNs) : min(windowNs &* 2, maxNs)
        } else {
            let halved = windowNs / 2
            windowNs = halved < startNs ? 0 : halved
        }
    }
}
