import CURing
import Glibc
import Switchboard
import Synchronization

/// How work reaches a `URingDriver`'s loop: `execute` from any thread (under a lock, one
/// eventfd write per batch, read back by a read request in the ring), from the loop itself
/// (no lock, no wake-up), and the stop flag. Its own object so that the hook executor can
/// hold it without holding the driver.
final class Mailbox: @unchecked Sendable {
    let wakeFD: Int32
    let stopRequested = Atomic<Bool>(false)
    /// The thread running the loop; set by `run()` before any work runs.
    private var loopThread: pthread_t?

    private struct Posted {
        var work: [@Sendable () -> Void] = []
        var wakePending = false
    }
    private let posted = Mutex(Posted())
    /// Loop-only: work queued by the loop itself, run later in the same turn.
    @exclusivity(unchecked) var local: [() -> Void] = []
    @exclusivity(unchecked) private var localBatch: [() -> Void] = []
    private var postedBatch: [@Sendable () -> Void] = []

    init() throws(URingUnavailable) {
        let fd = sb_wake_eventfd()
        guard fd >= 0 else { throw URingUnavailable(step: "eventfd", code: -fd) }
        wakeFD = fd
    }

    deinit { Glibc.close(wakeFD) }

    func enterLoop() { loopThread = pthread_self() }

    var isLoopThread: Bool {
        guard let thread = loopThread else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    /// Queues `work` for the loop: always later, never inside this call (see `Driver.execute`).
    func execute(_ work: @escaping @Sendable () -> Void) {
        if isLoopThread {
            local.append(work)
        } else {
            post(work)
        }
    }

    /// From any thread: queued under the lock; the first work of a batch wakes the loop.
    func post(_ work: @escaping @Sendable () -> Void) {
        let needsWake = posted.withLock { queue -> Bool in
            queue.work.append(work)
            if queue.wakePending { return false }
            queue.wakePending = true
            return true
        }
        if needsWake { wake() }
    }

    func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    func requestStop() {
        stopRequested.store(true, ordering: .releasing)
        wake()
    }

    /// Whether `stop()` was called since the last look (consumes the request).
    func takeStopRequest() -> Bool {
        stopRequested.exchange(false, ordering: .acquiringAndReleasing)
    }

    /// Runs the works posted from other threads, calling `after` after each (the loop
    /// delivers the closes and drains they caused).
    func runPosted(_ after: () -> Void) {
        posted.withLock { queue in
            queue.wakePending = false
            swap(&queue.work, &postedBatch)
        }
        for i in postedBatch.indices {
            postedBatch[i]()
            after()
        }
        postedBatch.removeAll(keepingCapacity: true)
    }

    /// Runs the loop's own queued work, including work it queues in turn.
    func runLocal(_ after: () -> Void) {
        while !local.isEmpty {
            swap(&local, &localBatch)
            for i in localBatch.indices {
                localBatch[i]()
                after()
            }
            localBatch.removeAll(keepingCapacity: true)
        }
    }
}
