import Synchronization

/// The server's metrics asked for on one of its loops, where the caller cannot await (an
/// `httpHandler`, such as the public port's `/metrics` of `switchboard serve`): the calling
/// loop's own part read at once, every other loop's read on that loop, the caller waiting.
///
/// No lock is taken on a message's path: only a `/metrics` request posts to the other loops and
/// waits for their answers. Two loops asking at once must not wait for each other (each would
/// hold the other's answer behind its own wait), so one gathers at a time: a loop that finds a
/// gathering under way, or a loop that does not answer within `patience`, is counted from its
/// last answer (`last`), which is at most one request old.
final class LoopMetrics: Sendable {
    private let last: [Slot]
    private let gathering = Atomic<Bool>(false)
    /// How long a loop waits for the others' parts (nanoseconds); they answer in one loop turn.
    private let patience: UInt64 = 250_000_000

    init(loops: Int) {
        last = (0..<loops).map { _ in Slot() }
    }

    /// Every loop's metrics combined, asked for on the loop of shard `here`.
    func combined(asking shards: ShardSet, here: Int) -> ServerMetrics {
        let own = ShardMetrics(shards.all[here].engine)
        last[here].part.withLock { $0 = own }
        let others = shards.all.indices.filter { $0 != here }
        if gathering.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged {
            let answers = Answers(count: others.count)
            for index in others {
                shards.all[index].execute { [last] engine in
                    let part = ShardMetrics(engine)
                    last[index].part.withLock { $0 = part }
                    answers.arrived()
                }
            }
            answers.wait(until: monotonicNanoseconds() + patience)
            gathering.store(false, ordering: .releasing)
        }
        let parts = shards.all.indices.compactMap { index in index == here ? own : last[index].part.withLock { $0 } }
        return ShardMetrics.combined(parts)
    }
}

/// One loop's last answer.
private final class Slot: Sendable {
    let part = Mutex<ShardMetrics?>(nil)
}

/// Counts the other loops' answers; the asking loop waits for all of them, or a deadline.
private final class Answers: @unchecked Sendable {
    private let monitor = ThreadMonitor()
    private var remaining: Int

    init(count: Int) { remaining = count }

    func arrived() {
        monitor.withLock {
            remaining -= 1
            if remaining == 0 { monitor.signal() }
        }
    }

    func wait(until deadline: UInt64) {
        monitor.withLock {
            while remaining > 0 { if !monitor.wait(until: deadline) { return } }
        }
    }
}
