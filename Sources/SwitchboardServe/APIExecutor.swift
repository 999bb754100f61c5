import Switchboard
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs one request's async work (`APIRouter.handle`) on the connection's own thread, which
/// waits for it anyway: the task prefers this executor, so it starts here and every resumption
/// (after a hop to the event loop) comes back here. The API then needs no thread of the
/// concurrency pool, which is as small as the number of cores and which slow hooks or blocked
/// callers may hold: a backend can still publish and disconnect when the pool is busy.
final class APIExecutor: TaskExecutor, @unchecked Sendable {
    private let monitor = ThreadMonitor()
    /// Guarded by `monitor`.
    private var jobs: [UnownedJob] = []
    private var finished = false

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        monitor.withLock {
            jobs.append(job)
            monitor.signal()
        }
    }

    /// Runs `body` to its end on the calling thread and returns its value.
    func run<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let result = Mutex<T?>(nil)
        Task(executorPreference: self) {
            let value = await body()
            result.withLock { $0 = value }
            self.finish()
        }
        monitor.lock()
        while true {
            while jobs.isEmpty && !finished { monitor.wait() }
            if jobs.isEmpty { break }  // finished, and nothing left to run
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            monitor.unlock()
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
            monitor.lock()
        }
        finished = false
        monitor.unlock()
        return result.withLock { $0! }
    }

    private func finish() {
        monitor.withLock {
            finished = true
            monitor.signal()
        }
    }
}
