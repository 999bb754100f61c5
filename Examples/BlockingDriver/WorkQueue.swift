import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `BlockingDriver`'s loop: work posted from any thread, run in order by the thread that
/// calls `next` (the one in `Driver.run()`), waking for timers at a monotonic deadline.
final class WorkQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var work: [@Sendable () -> Void] = []
    private var stopped = false
    private var thread: pthread_t?

    func post(_ item: @escaping @Sendable () -> Void) {
        condition.withLock {
            work.append(item)
            condition.signal()
        }
    }

    func stop() {
        condition.withLock {
            stopped = true
            condition.signal()
        }
    }

    /// Whether the caller is the thread running the loop.
    var isCurrent: Bool {
        guard let thread = condition.withLock({ self.thread }) else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    /// The work queued so far (waiting for some, or until `deadline` on the monotonic
    /// millisecond scale); nil once stopped.
    func next(deadline: Int64?) -> [@Sendable () -> Void]? {
        condition.lock()
        defer { condition.unlock() }
        thread = pthread_self()
        while work.isEmpty, !stopped {
            guard let deadline else {
                condition.wait()
                continue
            }
            let wait = deadline - BlockingDriver.monotonic()
            if wait <= 0 { break }
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(wait) / 1000))
        }
        if stopped { return nil }
        defer { work.removeAll() }
        return work
    }
}
