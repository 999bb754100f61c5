@testable import Switchboard
import Synchronization
import Testing

/// `HookTaskPool` on an executor whose jobs wait until the test runs them, in order, on its own
/// thread: what the loop does with `runSoon`, one turn at a time.
@Suite("Hook task pool")
struct HookTaskPoolTests {
    final class QueuedExecutor: TaskExecutor, @unchecked Sendable {
        private let jobs = Mutex<[UnownedJob]>([])

        func enqueue(_ job: consuming ExecutorJob) {
            let job = UnownedJob(job)
            jobs.withLock { $0.append(job) }
        }

        /// Runs every queued job, and the jobs they queue, in order.
        func runAll() {
            while let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
    }

    @Test func operationsStartInSpawnOrderOnParkedTasksFirst() {
        let executor = QueuedExecutor()
        let pool = HookTaskPool(executor: executor)
        let started = Mutex<[String]>([])
        pool.spawn { started.withLock { $0.append("a") } }
        #expect(started.withLock { $0 }.isEmpty)  // queued, not run inside spawn
        executor.runAll()
        #expect(pool.waiting == 1)

        pool.spawn { started.withLock { $0.append("b") } }  // the parked task
        #expect(pool.waiting == 0)
        pool.spawn { started.withLock { $0.append("c") } }  // a new one
        executor.runAll()
        #expect(started.withLock { $0 } == ["a", "b", "c"])
        #expect(pool.waiting == 2)
    }

    @Test func aSuspendedOperationHoldsNoOneUp() {
        let executor = QueuedExecutor()
        let pool = HookTaskPool(executor: executor)
        let started = Mutex<[String]>([])
        let gate = Mutex<UnsafeContinuation<Void, Never>?>(nil)
        pool.spawn {
            await withUnsafeContinuation { continuation in gate.withLock { $0 = continuation } }
            started.withLock { $0.append("slow done") }
        }
        pool.spawn { started.withLock { $0.append("fast") } }
        executor.runAll()
        #expect(started.withLock { $0 } == ["fast"])
        #expect(pool.waiting == 1)

        gate.withLock { $0 }!.resume()
        executor.runAll()
        #expect(started.withLock { $0 } == ["fast", "slow done"])
        #expect(pool.waiting == 2)
    }

    @Test func closeEndsTheParkedTasksAndTheyReleaseThePool() {
        let executor = QueuedExecutor()
        weak var released: HookTaskPool?
        do {
            let pool = HookTaskPool(executor: executor)
            released = pool
            pool.spawn {}
            pool.spawn {}
            executor.runAll()
            #expect(pool.waiting == 2)
            pool.close()
            executor.runAll()
            #expect(pool.waiting == 0)
            pool.spawn {}  // after close: runs, then ends instead of parking
            executor.runAll()
            #expect(pool.waiting == 0)
        }
        #expect(released == nil)
    }
}
