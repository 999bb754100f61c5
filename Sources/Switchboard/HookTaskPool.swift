/// The tasks a loop runs its hooks on, each kept for another hook when its own is done.
///
/// A `Task` with an executor preference costs about 4,000 instructions to make and to tear
/// down (`scripts/callgrind connect`: one for authenticate, one for clientConnected, one for
/// clientDisconnected per connection). A task of the pool that has run its operation parks on
/// a continuation instead of ending, and `spawn` resumes a parked task with the next operation;
/// a new task is made only when none is parked. Resuming enqueues the task's next job on the
/// loop's executor exactly where a new task would enqueue its first, so operations start in
/// the order they are spawned, on the loop's thread, as with a task each.
///
/// Loop-confined, no lock: `spawn` is called on the loop, and a task parks from the loop's
/// executor (its preference brings it back there when the operation returns, wherever the
/// operation went). At most `limit` tasks wait; one that finishes beyond that ends. When the
/// loop has stopped, `close` ends the parked tasks (each holds the loop through its executor).
final class HookTaskPool: @unchecked Sendable {
    typealias Operation = @Sendable () async -> Void

    private let executor: any TaskExecutor
    private let limit: Int
    /// Unchecked (loop-confined, no access overlaps another): touched twice per hook call,
    /// a dynamic exclusivity check each otherwise.
    @exclusivity(unchecked) private var parked: [UnsafeContinuation<Operation?, Never>] = []
    @exclusivity(unchecked) private var closed = false

    init(executor: any TaskExecutor, limit: Int = 64) {
        self.executor = executor
        self.limit = limit
    }

    /// How many tasks wait for an operation (for tests).
    var waiting: Int { parked.count }

    /// Runs `operation` on a parked task, or on a new one.
    func spawn(_ operation: @escaping Operation) {
        if let task = parked.popLast() {
            task.resume(returning: operation)
            return
        }
        Task(executorPreference: executor) { [self] in
            var next: Operation? = operation
            while let current = next {
                await current()
                // Parks (written here, not in an async method: each call of one checks the
                // task's executor preference under a lock), or ends when enough tasks wait.
                guard !closed, parked.count < limit else { return }
                next = await withUnsafeContinuation { parked.append($0) }
            }
        }
    }

    /// Ends the parked tasks (resumed with no operation: their jobs go to the loop's queue, to
    /// be run once more), and every task that finishes from now on. On the loop's thread.
    func close() {
        closed = true
        let waiting = parked
        parked = []
        for task in waiting { task.resume(returning: nil) }
    }
}
