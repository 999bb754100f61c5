import Foundation
import NIOCore

/// The way onto an `NIODriver`'s EventLoop from any thread, with the driver's life around it:
/// work before `run()` waits here (nothing may run before it), work after `run()` has returned
/// is dropped (NIO prints an error for work sent to a loop that was shut down, and means to
/// trap). Hook tasks reach the loop through it too, so a hook answering after the server
/// stopped is dropped quietly. Its own object, so that the driver's `LoopTaskExecutor` can
/// hold it without holding the driver.
final class NIOLoopGate: @unchecked Sendable {
    let eventLoop: EventLoop
    private let condition = NSCondition()
    private var open = false
    private var stopRequested = false
    private var closed = false
    private var pending: [@Sendable () -> Void] = []

    init(eventLoop: EventLoop) { self.eventLoop = eventLoop }

    /// Queues `work` on the loop. The lock held while `openUnlessStopped()` hands the waiting
    /// works over keeps one thread's works in order across that moment.
    func execute(_ work: @escaping @Sendable () -> Void) {
        // Under the lock: `close()` then cannot slip between the check and the hand-over.
        condition.withLock {
            if open {
                eventLoop.execute(work)
            } else if !closed {
                pending.append(work)
            }
        }
    }

    /// `run()` begins: the waiting works go to the loop. False when `stop()` came first.
    func openUnlessStopped() -> Bool {
        condition.withLock {
            guard !stopRequested else { return false }
            open = true
            for work in pending { eventLoop.execute(work) }
            pending = []
            return true
        }
    }

    func stop() {
        condition.withLock {
            stopRequested = true
            condition.broadcast()
        }
    }

    func waitForStop() {
        condition.withLock { while !stopRequested { condition.wait() } }
    }

    /// `run()` ends: from now on work is dropped.
    func close() {
        condition.withLock {
            open = false
            closed = true
            pending = []
        }
    }
}
