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
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    /// Guarded by `mutex`.
    private var jobs: [UnownedJob] = []
    private var finished = false

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pthread_mutex_lock(&mutex)
        jobs.append(job)
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    /// Runs `body` to its end on the calling thread and returns its value.
    func run<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let result = Mutex<T?>(nil)
        Task(executorPreference: self) {
            let value = await body()
            result.withLock { $0 = value }
            self.finish()
        }
        pthread_mutex_lock(&mutex)
        while true {
            while jobs.isEmpty && !finished { pthread_cond_wait(&condition, &mutex) }
            if jobs.isEmpty { break }  // finished, and nothing left to run
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            pthread_mutex_unlock(&mutex)
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
            pthread_mutex_lock(&mutex)
        }
        finished = false
        pthread_mutex_unlock(&mutex)
        return result.withLock { $0! }
    }

    private func finish() {
        pthread_mutex_lock(&mutex)
        finished = true
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }
}
