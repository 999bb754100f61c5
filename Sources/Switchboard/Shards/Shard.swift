import SwitchboardBus
import SwitchboardKernel

/// One event loop of a server (`ServerOptions.loops`): a driver and the engine, with its
/// kernel, that runs on the driver's loop. The shard's clients are those its listener
/// accepted; their state lives in its kernel alone, read and written on its loop alone.
final class Shard: @unchecked Sendable {
    let driver: any Driver
    let engine: Engine

    /// An input handed to another loop (an application delivery, or a message a client of
    /// this loop published), with the moment it entered (0: untimed).
    struct HandOff: Sendable {
        let input: KernelInput
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

    /// Inputs another loop made in one of its turns, performed here in order, their fan-outs
    /// written together (`Engine.inputQueued`).
    func post(_ batch: [HandOff]) {
        execute { engine in
            for handOff in batch {
                engine.inputQueued(handOff.input)
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
