import SwitchboardKernel
import Synchronization

/// The shards of one server and how the application's work reaches them.
///
/// ## Several loops
///
/// A client lives on the shard that accepted it. What the application asks for is made to
/// look as it does with one loop:
///
/// - A delivery (`Server.send...`, `broadcast`, `publish`) reaches every shard as the same
///   `Delivery` input; each kernel delivers to its own clients and encodes the frame once for
///   them. Only the first shard's bus publishes (`LocalOnlyBus`), so the other instances get
///   one envelope, as from a server with one loop.
/// - Order: from a thread off the loops, a delivery is queued on every shard before the call
///   returns, so one caller's deliveries reach each shard, and each client, in the order made.
///   From a hook on a shard's loop it is performed there at once (the `Engine` re-entry
///   contract) and queued on the others in the order made. No lock is taken: each shard's own
///   queue (`Driver.execute`) is the only hand-off.
/// - A message from the bus goes to every shard (`Server.bind`): one subscription per process.
/// - Queries and metrics ask every shard and combine the answers.
final class ShardSet: @unchecked Sendable {
    let all: [Shard]

    init(_ shards: [Shard]) {
        precondition(!shards.isEmpty)
        all = shards
    }

    var first: Shard { all[0] }

    /// The shard whose loop is the calling thread; nil off every loop.
    @inline(__always)
    var current: Shard? {
        if all.count == 1 { return all[0].driver.inLoop ? all[0] : nil }
        return all.first { $0.driver.inLoop }
    }

    /// Performs `delivery` on every shard (see the type's documentation). `timed`: record it in
    /// the fan-out latency histogram (every delivery but one to a single client).
    func deliver(_ delivery: Delivery, timed: Bool) {
        let entered = timed ? monotonicNanoseconds() : 0
        guard let here = current else {
            for shard in all { shard.post(delivery, entered: entered) }
            return
        }
        // A reply to a client of this loop (an echo) is for nobody elsewhere: client ids are
        // unique in the process.
        let elsewhere = all.count > 1 && !Self.isLocal(delivery, on: here.engine.kernel)
        here.engine.deliverNow(delivery)
        if timed { here.engine.stats.fanOutQueued(enteredAt: entered) }
        guard elsewhere else { return }
        for shard in all where shard !== here { shard.post(delivery, entered: entered) }
    }

    private static func isLocal(_ delivery: Delivery, on kernel: Kernel) -> Bool {
        if case .toClient(let id, _, _) = delivery { return kernel.handle(forID: id) != nil }
        return false
    }

    /// `body`'s answer from every shard, in shard order.
    func each<T: Sendable>(_ body: @escaping @Sendable (Engine) -> T) async -> [T] {
        var answers: [T] = []
        answers.reserveCapacity(all.count)
        for shard in all { answers.append(await shard.ask(body)) }
        return answers
    }

    /// Starts a graceful shutdown on every shard at once (each waits up to `shutdownGrace` for
    /// its clients) and returns when all have finished.
    func shutdown() async {
        let remaining = Countdown(all.count)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            for shard in all {
                shard.execute { engine in
                    engine.beginShutdown { if remaining.tick() { continuation.resume() } }
                }
            }
        }
    }
}

/// Counts finished parts down from a number, from any thread.
private final class Countdown: Sendable {
    private let remaining: Atomic<Int>
    init(_ count: Int) { remaining = Atomic(count) }
    /// Counts one down; true for the last.
    func tick() -> Bool { remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 }
}
