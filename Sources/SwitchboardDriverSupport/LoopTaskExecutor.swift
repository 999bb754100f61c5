/// Runs Swift concurrency jobs on a driver's loop. A task started with this executor
/// preference (`Task(executorPreference:)`) runs its non-isolated code between the loop's
/// events, serialised with them: what a driver needs to honour `ServerOptions.hooksOnLoop`
/// (declare `.hooksOnLoop` and start hook tasks with it in `spawn`). Code isolated to an actor
/// still runs on that actor.
///
/// The loop is reached through the driver's own `execute`, which must queue (never run the job
/// inside the call) and may be called from any thread; a job enqueued from the loop then runs
/// later in the same or the next turn, with no thread hop.
public final class LoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let execute: @Sendable (@escaping @Sendable () -> Void) -> Void

    /// `execute` queues its argument on the loop (a driver's `Driver.execute`).
    public init(execute: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void) {
        self.execute = execute
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
