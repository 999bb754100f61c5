import ServiceLifecycle
import Switchboard
import Synchronization

/// A Switchboard `Server` as a ServiceLifecycle `Service`, for apps whose `ServiceGroup` runs
/// their HTTP server, database pools and the gateway side by side.
///
/// `run()` starts the server (binds, subscribes to the bus, runs the loop on its own thread)
/// and then waits. When the group shuts down gracefully (a signal the group owns, or
/// `triggerGracefulShutdown()`), or the task running `run()` is cancelled, the server shuts
/// down gracefully: it stops accepting, closes every client with 1001 and waits for them
/// (bounded by `ServerOptions.shutdownGrace`); then `run()` returns.
///
/// With a `drainDelay`, a graceful shutdown drains first: the server stops accepting at once,
/// `isDraining` turns true (answer your readiness probe from it), and established clients are
/// served as usual for the delay, so a load balancer takes the instance out before anyone is
/// disconnected. Cancellation skips the drain. The service installs no
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
    /// How long a graceful shutdown keeps serving established clients after it stops accepting.
    public let drainDelay: Duration
    private let onListening: @Sendable (Int) -> Void
    private let shutdownStarted = ShutdownFlag()

    /// `onListening` is told the bound port once the server accepts connections (useful with
    /// port 0). `drainDelay`: see the type's documentation; zero closes clients at once.
    public init(_ server: Server, drainDelay: Duration = .zero, onListening: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.server = server
        self.drainDelay = drainDelay
        self.onListening = onListening
    }

    /// True from the start of a graceful shutdown (its drain included): a readiness probe
    /// should fail from then on.
    public var isDraining: Bool { shutdownStarted.value.load(ordering: .acquiring) }

    public func run() async throws {
        // `start()` returns once the listener accepts and the bus is subscribed; with a Redis
        // bus that can take a connection attempt, briefly holding this task's thread.
        let port = try server.start()
        onListening(port)
        // Graceful shutdown and cancellation end the same way: the server's own graceful
        // shutdown, so clients always get 1001 rather than a dropped connection.
        var cancelled = false
        do { try await gracefulShutdown() } catch is CancellationError { cancelled = true }
        shutdownStarted.value.store(true, ordering: .releasing)
        if !cancelled, drainDelay > .zero {
            let driver = server.driver
            driver.execute { driver.stopAccepting() }
            // Cancelled meanwhile: the drain ends early.
            try? await Task.sleep(for: drainDelay)
        }
        await server.shutdown()
    }
}

/// Set once a graceful shutdown starts (shared by the copies of the service value).
private final class ShutdownFlag: Sendable {
    let value = Atomic<Bool>(false)
}
