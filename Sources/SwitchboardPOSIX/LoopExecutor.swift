import SwitchboardDriverSupport

/// The name this module gave the loop executor before it moved to SwitchboardDriverSupport.
public typealias LoopExecutor = LoopTaskExecutor

extension LoopTaskExecutor {
    /// Jobs run on `loop`'s thread: queued with `runSoon` when enqueued from that thread (no
    /// lock, no wake-up), posted from any other.
    public convenience init(loop: EventLoop) {
        self.init(execute: { work in
            if loop.isLoopThread { loop.runSoon(work) } else { loop.post(work) }
        })
    }
}

/// Runs Swift concurrency jobs on `loop`'s thread, as `LoopTaskExecutor(loop:)` does, for
/// `POSIXDriver`'s hook tasks. A job enqueued on the loop's thread goes into the loop's own
/// queue as it is (`EventLoop.runSoon(job:on:)`): `LoopTaskExecutor` wraps each job in a
/// closure, one allocation per job (a hook task resumed, an await that came back). From any
/// other thread a job is posted as before.
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let loop: EventLoop

    public init(loop: EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if loop.isLoopThread {
            loop.runSoon(job: job, on: asUnownedTaskExecutor())
        } else {
            loop.post { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
        }
    }
}
