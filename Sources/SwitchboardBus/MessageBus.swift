/// The pipe between instances (PROTOCOL.md 8). Messages are opaque bytes on named channels;
/// the kernel encodes and decodes envelopes, a bus only moves them.
public protocol MessageBus: AnyObject, Sendable {
    /// Starts delivering messages of the protocol's channels to `receive` (from any thread).
    /// `ready` is called once every subscription is active, or with the error that stopped it.
    func start(receive: @escaping @Sendable (_ channel: String, _ message: [UInt8]) -> Void,
               ready: @escaping @Sendable (Result<Void, BusError>) -> Void)
    /// Publishes without waiting; never blocks the caller on the network.
    func publish(channel: String, message: [UInt8])
    /// Stops receiving and releases connections.
    func close()
}

public struct BusError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
