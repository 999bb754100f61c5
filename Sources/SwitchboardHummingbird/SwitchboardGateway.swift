import HummingbirdCore
import Logging
import NIOCore
import Switchboard
import SwitchboardNIO

/// Switchboard on a path of a Hummingbird 2 application: the app's HTTP/1 server accepts every
/// connection on its one port, and those whose first request is for `ServerOptions.path` become
/// the gateway's (the engine does the upgrade, the framing and the protocol, as on its own
/// listener); every other request goes to the app's router.
///
/// ```swift
/// let gateway = try SwitchboardGateway(options: options, hooks: hooks)
/// let app = Application(
///     router: router,
///     server: gateway.http1(),
///     configuration: .init(address: .hostname("0.0.0.0", port: 8080)))
/// let group = ServiceGroup(configuration: .init(
///     services: [.init(service: app), .init(service: SwitchboardService(gateway.server))],
///     gracefulShutdownSignals: [.sigterm], logger: logger))
/// try await group.run()
/// ```
///
/// EventLoops: the gateway's engine is single-threaded, so it runs on one loop, its own
/// (`init` without `eventLoop`) or one the app gives. The app keeps its group: a connection
/// accepted on another loop stays there, and its reads are handed to the gateway's loop, its
/// writes back (`NIODriver.adopt`). Connections on the gateway's own loop need no hop: an app
/// that wants none runs on it (`eventLoopGroupProvider: .shared(gateway.eventLoop)`).
/// The server's own life is `SwitchboardService` (SwitchboardServiceLifecycle) in the
/// same `ServiceGroup` as the app, after it: a group shuts down in reverse order, so the
/// gateway's clients get 1001 and are closed before the app's server waits for its
/// connections to end (in the app's own `services:` it would be stopped after its server,
/// which would wait for the gateway's connections). `options.host` and `options.port` are not
/// used: the app listens.
public final class SwitchboardGateway: Sendable {
    public let driver: NIODriver
    public let server: Switchboard.Server
    /// The path the gateway serves (`ServerOptions.path`).
    public let path: String

    /// The loop of the gateway's engine; connections the app accepts on it need no hop.
    public var eventLoop: EventLoop { driver.eventLoop }

    /// - Parameter eventLoop: the loop to run on (one of the app's group, say); nil makes one
    ///   of the driver's own.
    public init(options: ServerOptions = ServerOptions(), hooks: Hooks, eventLoop: EventLoop? = nil,
                logger: Logging.Logger = Logging.Logger(label: "switchboard")) throws {
        driver = NIODriver(eventLoop: eventLoop, hooksOnLoop: options.hooksOnLoop, listens: false)
        server = try Switchboard.Server(options: options, hooks: hooks, driver: driver, logger: logger)
        path = options.path
    }

    /// The app's `server:` argument: Hummingbird's HTTP/1 channel with the gateway's path taken
    /// out first.
    public func http1(configuration: HTTP1Channel.Configuration = .init()) -> HTTPServerBuilder {
        let driver = self.driver
        let path = self.path
        return HTTPServerBuilder { responder in
            GatewayHTTP1Channel(http: HTTP1Channel(responder: responder, configuration: configuration), path: path,
                                driver: driver)
        }
    }
}
