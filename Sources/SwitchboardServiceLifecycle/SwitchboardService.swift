import ServiceLifecycle
import Switchboard

/// A Switchboard `Server` as a ServiceLifecycle `Service`, for apps whose `ServiceGroup` runs
/// their HTTP server, database pools and the gateway side by side.
///
/// `run()` starts the server (binds, subscribes to the bus, runs the loop on its own thread)
/// and then waits. When the group shuts down gracefully (a signal the group owns, or
/// `triggerGracefulShutdown()`), or the task running `run()` is cancelled, the server shuts
/// down gracefully: it stops accepting, closes every client with 1001 and waits for them
/// (bounded by `ServerOptions.shutdownGrace`); then `run()` returns. The service installs no
/// signal handlers: signals belong to the group (`ServiceGroupConfiguration`'s
/// `gracefulShutdownSignals`).
///
/// ```swift
/// let server = try Server(options: options, hooks: hooks, logger: logger)
/// let group = ServiceGroup(configuration: ServiceGroupConfiguration(
///     services: [.init(service: SwitchboardService(server)), .init(service: httpServer)],
///     gracefulShutdownSignals: [.sigterm], logger: logger))
/// try await group.run()
/// ```
public struct SwitchboardService: Service {
    public let server: Server
    private let onListening: @Sendable (Int) -> Void

    /// `onListening` is told the bound port once the server accepts connections (useful with
    /// port 0).
    public init(_ server: Server, onListening: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.server = server
        self.onListening = onListening
    }

    public func run() async throws {
        // `start()` returns once the listener accepts and the bus is subscribed; with a Redis
        // bus that can take a connection attempt, briefly holding this task's thread.
        let port = try server.start()
        onListening(port)
        // Graceful shutdown and cancellation end the same way: the server's own graceful
        // shutdown, so clients always get 1001 rather than a dropped connection.
        do { try await gracefulShutdown() } catch is CancellationError {}
        await server.shutdown()
    }
}
