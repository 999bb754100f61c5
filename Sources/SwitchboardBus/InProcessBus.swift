import Synchronization

/// The embedded default: instances in one process share a `Hub`; one instance alone needs
/// no Redis at all. A published message reaches every other attached bus (with Redis the
/// publisher hears itself and drops its own server id; here it is never sent back).
public final class InProcessBus: MessageBus {
    /// Where in-process buses meet. `InProcessBus()` gets a private hub.
    public final class Hub: Sendable {
        let subscribers = Mutex<[ObjectIdentifier: @Sendable (String, [UInt8]) -> Void]>([:])
        public init() {}

        func publish(channel: String, message: [UInt8], from publisher: ObjectIdentifier) {
            let receivers = subscribers.withLock { $0.filter { $0.key != publisher }.map(\.value) }
            for receive in receivers { receive(channel, message) }
        }
    }

    public let hub: Hub

    public init(hub: Hub = Hub()) { self.hub = hub }

    public func start(receive: @escaping @Sendable (String, [UInt8]) -> Void,
                      ready: @escaping @Sendable (Result<Void, BusError>) -> Void) {
        hub.subscribers.withLock { $0[ObjectIdentifier(self)] = receive }
        ready(.success(()))
    }

    public func publish(channel: String, message: [UInt8]) {
        hub.publish(channel: channel, message: message, from: ObjectIdentifier(self))
    }

    public func close() {
        _ = hub.subscribers.withLock { $0.removeValue(forKey: ObjectIdentifier(self)) }
    }
}
