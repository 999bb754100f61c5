/// Runs Swift concurrency jobs on an event loop's thread. A task started with this executor
/// preference (`Task(executorPreference:)`) runs its non-isolated code between the loop's
/// events: no thread hop, and when it is started from the loop, no lock and no wake-up.
/// Code isolated to an actor still runs on that actor.
public final class LoopExecutor: TaskExecutor, @unchecked Sendable {
    private let loop: EventLoop

    public init(loop: EventLoop) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if loop.isLoopThread {
            loop.runSoon { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
        } else {
            loop.post { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
        }
    }
}
