import SwitchboardBus
import SwitchboardKernel

/// The bus of each loop's engine when a server runs several loops.
///
/// A kernel publishes for two reasons. The application asked (`Server.send`, `publish`: a step
/// of an `Engine` delivery): `ShardRouting` gives that publish to the first loop alone, and
/// every other loop its local part, so only the first loop's publish goes on, to the real bus.
/// Or one of this loop's clients did something the other instances must hear of (a `publish`
/// the publish hook allowed, a presence join or leave): the kernel delivered it to its own
/// clients and publishes one envelope. The other instances get it from the real bus, published
/// from this loop's thread (`RedisBus` and `InProcessBus` take publishes from any thread); the
/// other loops of this process are other kernels with the same server id, which drop an
/// envelope of their own id, so they get it as a bus message under a sibling's id
/// (`ShardSet.relay`): each delivers it to its clients as a message from another instance.
///
/// Nothing is received through it: the server subscribes the real bus once and hands its
/// messages to every loop (`Server.bind`).
final class ShardBus: MessageBus, @unchecked Sendable {
    private let real: any MessageBus
    private let index: Int
    /// Set once by the server after the shards are built. Weak: a loop's thread keeps its
    /// engine past the server's release (`Server.runDetached`), and the set goes with the server.
    weak var shards: ShardSet?
    /// This loop's engine; not retained (it owns this bus).
    unowned(unsafe) var engine: Engine?

    init(real: any MessageBus, index: Int) {
        self.real = real
        self.index = index
    }

    func start(receive: @escaping @Sendable (String, [UInt8]) -> Void,
               ready: @escaping @Sendable (Result<Void, BusError>) -> Void) {
        ready(.success(()))
    }

    func publish(channel: String, message: [UInt8]) {
        if engine!.stepDelivers {
            if index == 0 { real.publish(channel: channel, message: message) }
            return
        }
        real.publish(channel: channel, message: message)
        shards?.relay(channel: channel, message: message, from: index)
    }

    func close() {}
}
