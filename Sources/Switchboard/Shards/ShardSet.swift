import SwitchboardKernel
import Synchronization

/// The shards of one server and how the application's work reaches them.
///
/// ## Several loops
///
/// A client lives on the shard that accepted it. What the application asks for is made to
/// look as it does with one loop:
///
/// - A delivery to a room, a user or everyone (`Server.send...`, `broadcast`) reaches every
///   shard; each kernel delivers to its own clients and encodes the frame once for them. One
///   to a client reaches its shard alone (its id names it). Only the first shard publishes
///   on the bus (`ShardRouting`; the others' bus is a `LocalOnlyBus`), so the other instances
///   get one envelope, as from a server with one loop.
/// - Order: from a thread off the loops, a delivery is queued on every shard before the call
///   returns, so one caller's deliveries reach each shard, and each client, in the order made.
///   From a hook on a shard's loop it is performed there at once (the `Engine` re-entry
///   contract) and handed to the others, in the order made, with the rest of that loop turn's
///   deliveries (`handOff`). No lock is taken beyond each shard's own queue
///   (`Driver.execute`), once per loop turn.
/// - A message from the bus goes to every shard (`Server.bind`): one subscription per process.
/// - Queries and metrics ask every shard and combine the answers.
final class ShardSet: @unchecked Sendable {
    let all: [Shard]
    private let routing: ShardRouting

    init(_ shards: [Shard], serverID: String) {
        precondition(!shards.isEmpty)
        all = shards
        routing = ShardRouting(count: shards.count, serverID: serverID)
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
        if all.count == 1 { return deliver(delivery, on: all[0], here: all[0].driver.inLoop, entered: entered) }
        let here = current
        for (index, shard) in all.enumerated() {
            guard let part = routing.part(of: delivery, forShard: index) else { continue }
            if let here, shard !== here {
                handOff(part, entered: entered, from: here, to: index)
            } else {
                deliver(part, on: shard, here: shard === here, entered: entered)
            }
        }
    }

    /// Queues `delivery` for shard `index`, to be handed over with the others made on this
    /// loop in this turn: one queue hand-off per loop and turn rather than one per delivery,
    /// so that the receiving loop writes many messages to a recipient at once, as the loop
    /// that read them does. Performed one by one, a fan-out spread over two loops cost 1.4 to
    /// 1.7 times the instructions per delivery of one loop (`scripts/callgrind fanout`).
    private func handOff(_ delivery: Delivery, entered: UInt64, from origin: Shard, to index: Int) {
        if origin.outgoing.isEmpty { origin.outgoing = Array(repeating: [], count: all.count) }
        origin.outgoing[index].append(Shard.HandOff(delivery: delivery, entered: entered))
        guard !origin.handOffQueued else { return }
        origin.handOffQueued = true
        // On the loop, `execute` runs the work later in this turn, after the events at hand.
        origin.driver.execute { [self] in
            origin.handOffQueued = false
            for target in all.indices where !origin.outgoing[target].isEmpty {
                let batch = origin.outgoing[target]
                origin.outgoing[target] = []
                all[target].post(batch)
            }
        }
    }

    /// On the calling loop, at once (the `Engine` re-entry contract); on another, queued.
    @inline(__always)
    private func deliver(_ delivery: Delivery, on shard: Shard, here: Bool, entered: UInt64) {
        guard here else { return shard.post(delivery, entered: entered) }
        shard.engine.deliverNow(delivery)
        if entered != 0 { shard.engine.stats.fanOutQueued(enteredAt: entered) }
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
