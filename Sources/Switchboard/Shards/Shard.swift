import SwitchboardBus
import SwitchboardKernel

/// One event loop of a server (`ServerOptions.loops`): a driver and the engine, with its
/// kernel, that runs on the driver's loop. The shard's clients are those its listener
/// accepted; their state lives in its kernel alone, read and written on its loop alone.
final class Shard: @unchecked Sendable {
    let driver: any Driver
    let engine: Engine

    /// A delivery handed to another loop, with the moment it entered (0: untimed).
    struct HandOff: Sendable {
        let delivery: Delivery
        let entered: UInt64
    }
    /// On this shard's loop only: deliveries made here for each other shard, handed over
    /// together later in this loop turn (`ShardSet.deliver`).
    var outgoing: [[HandOff]] = []
    /// A hand-off of `outgoing` is queued on this loop.
    var handOffQueued = false

    init(driver: any Driver, engine: Engine) {
        self.driver = driver
        self.engine = engine
    }

    /// Runs `work` with the engine on this shard's loop, after the work queued before it.
    @inline(__always)
    func execute(_ work: @escaping @Sendable (Engine) -> Void) {
        let engine = UncheckedBox(self.engine)
        driver.execute { work(engine.value) }
    }

    /// `delivery` as an input on this shard's loop; `entered` (nanoseconds) times it into the
    /// fan-out histogram, 0 leaves it out.
    func post(_ delivery: Delivery, entered: UInt64) {
        execute { engine in
            // Its frames join the fan-out batch of this loop turn's other queued inputs.
            engine.inputQueued(.deliver(delivery))
            if entered != 0 { engine.stats.fanOutQueued(enteredAt: entered) }
        }
    }

    /// Deliveries another loop made in one of its turns, performed here in order, their
    /// fan-outs written together (`Engine.inputQueued`).
    func post(_ batch: [HandOff]) {
        execute { engine in
            for handOff in batch {
                engine.inputQueued(.deliver(handOff.delivery))
                if handOff.entered != 0 { engine.stats.fanOutQueued(enteredAt: handOff.entered) }
            }
        }
    }

    /// Runs `body` on the loop and returns its answer: at once when called on this loop.
    func ask<T: Sendable>(_ body: @escaping @Sendable (Engine) -> T) async -> T {
        if driver.inLoop { return body(engine) }
        return await withCheckedContinuation { continuation in
            execute { continuation.resume(returning: body($0)) }
        }
    }
}

/// The bus of every shard but the first. The kernel publishes only when the application asks
/// (`Server.send`, `Server.publish`), and `ShardRouting` gives those requests to the first shard
/// alone (the others get their local part): a publish reaching this bus would be a second copy
/// of one the first shard made, and stops here. Nothing is received through it (the server
/// fans the real bus's messages out to every shard).
final class LocalOnlyBus: MessageBus {
    func start(receive: @escaping @Sendable (String, [UInt8]) -> Void,
               ready: @escaping @Sendable (Result<Void, BusError>) -> Void) {
        ready(.success(()))
    }
    func publish(channel: String, message: [UInt8]) {}
    func close() {}
}
