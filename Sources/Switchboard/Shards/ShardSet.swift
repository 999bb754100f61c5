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
///   on the bus (`ShardRouting`; the others' `ShardBus` drops an application's publish), so the other instances
///   get one envelope, as from a server with one loop.
/// - Order: from a thread off the loops, a delivery is queued on every shard before the call
///   returns, so one caller's deliveries reach each shard, and each client, in the order made.
///   From a hook on a shard's loop it is performed there at once (the `Engine` re-entry
///   contract) and handed to the others, in the order made, with the rest of that loop turn's
///   deliveries (`handOff`). No lock is taken beyond each shard's own queue
///   (`Driver.execute`), once per loop turn.
/// - What a shard's client makes the kernel publish (a hook-allowed `publish`, a presence join
///   or leave) goes on the real bus from that shard and, as a bus message from a sibling, to
///   the other shards (`ShardBus`, `relay`), handed over with the rest of that loop turn's.
/// - A message from the bus goes to every shard (`Server.bind`): one subscription per process.
/// - Queries and metrics ask every shard and combine the answers; so does a client's `presence`
///   query without a presence store (`presence(ofRoom:except:answer:)`).
final class ShardSet: @unchecked Sendable {
    let all: [Shard]
    private let routing: ShardRouting
    private let numberStyle: JSONNumberStyle

    init(_ shards: [Shard], serverID: String, numberStyle: JSONNumberStyle = .exact) {
        precondition(!shards.isEmpty)
        all = shards
        routing = ShardRouting(count: shards.count, serverID: serverID)
        self.numberStyle = numberStyle
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
                handOff(.deliver(part), entered: entered, from: here, to: index)
            } else {
                deliver(part, on: shard, here: shard === here, entered: entered)
            }
        }
    }

    /// `message`, published on the loop of shard `origin` by one of its clients, for every other
    /// shard: under a sibling's server id (`<id>#loop<origin>`), since a kernel drops envelopes
    /// of its own id, and in the hand-off of this loop turn, after the deliveries made before
    /// it. Decoded and encoded once per message, not per shard; only clients' publishes and
    /// presence changes take this path, never a fan-out the application asks for.
    func relay(channel: String, message: [UInt8], from origin: Int) {
        guard case .success(var envelope) = BusEnvelope.decode(message, numbers: numberStyle) else { return }
        envelope.serverID += "#loop\(origin)"
        let input = KernelInput.busMessage(channel: channel, message: envelope.encoded())
        let entered = monotonicNanoseconds()
        for index in all.indices where index != origin {
            handOff(input, entered: entered, from: all[origin], to: index)
        }
    }

    /// The members of `room` on every shard but `origin`, each read on its loop; `answer` runs
    /// on the loop of the last to answer. For a client's `presence` query without a presence
    /// store (with one, every loop's members are in it).
    func presence(ofRoom room: String, except origin: Int,
                  answer: @escaping @Sendable ([PresenceMember]) -> Void) {
        let others = all.indices.filter { $0 != origin }
        guard !others.isEmpty else { return answer([]) }
        let gathered = Gathered(count: others.count)
        for index in others {
            all[index].execute { engine in
                if let members = gathered.add(engine.kernel.localPresence(room)) { answer(members) }
            }
        }
    }

    /// Queues `input` for shard `index`, to be handed over with the others made on this
    /// loop in this turn: one queue hand-off per loop and turn rather than one per delivery,
    /// so that the receiving loop writes many messages to a recipient at once, as the loop
    /// that read them does. Performed one by one, a fan-out spread over two loops cost 1.4 to
    /// 1.7 times the instructions per delivery of one loop (`scripts/callgrind fanout`).
    private func handOff(_ input: KernelInput, entered: UInt64, from origin: Shard, to index: Int) {
        if origin.outgoing.isEmpty { origin.outgoing = Array(repeating: [], count: all.count) }
        origin.outgoing[index].append(Shard.HandOff(input: input, entered: entered))
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

/// Members gathered from several loops, from any thread.
private final class Gathered: Sendable {
    private let state: Mutex<(remaining: Int, members: [PresenceMember])>
    init(count: Int) { state = Mutex((count, [])) }
    /// Adds one loop's members; every loop's once the last has answered, else nil.
    func add(_ members: [PresenceMember]) -> [PresenceMember]? {
        state.withLock { state in
            state.members += members
            state.remaining -= 1
            return state.remaining == 0 ? state.members : nil
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
