/// The pipe between instances (PROTOCOL.md 8). Messages are opaque bytes on named channels;
/// the kernel encodes and decodes envelopes, a bus only moves them.
public protocol MessageBus: AnyObject, Sendable {
    /// Starts delivering messages of the protocol's channels to `receive` (from any thread).
    /// `ready` is called once every subscription is active, or with the error that stopped it.
    func start(receive: @escaping @Sendable (_ channel: String, _ message: [UInt8]) -> Void,
               ready: @escaping @Sendable (Result<Void, BusError>) -> Void)
    /// As `start(receive:ready:)`, but the messages that arrived together (a Redis bus: every
    /// message one read of its subscription parsed) are handed over as one batch, in order,
    /// never empty. A server runs a batch in one loop turn and writes its fan-outs together,
    /// one write per recipient, as it does for the messages of one client read; one by one, a
    /// burst of recorded history messages cost several writes per recipient (bench/redis.md).
    /// By default every message is a batch of its own.
    func start(receiveBatch: @escaping @Sendable (_ messages: [BusMessage]) -> Void,
               ready: @escaping @Sendable (Result<Void, BusError>) -> Void)
    /// Publishes without waiting; never blocks the caller on the network.
    func publish(channel: String, message: [UInt8])
    /// Stops receiving and releases connections.
    func close()
}

extension MessageBus {
    public func start(receiveBatch: @escaping @Sendable (_ messages: [BusMessage]) -> Void,
                      ready: @escaping @Sendable (Result<Void, BusError>) -> Void) {
        start(receive: { receiveBatch([BusMessage(channel: $0, message: $1)]) }, ready: ready)
    }
}

/// One message a bus received, with the channel it came on.
public struct BusMessage: Sendable, Equatable {
    public var channel: String
    public var message: [UInt8]

    public init(channel: String, message: [UInt8]) {
        self.channel = channel
        self.message = message
    }
}

public struct BusError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
