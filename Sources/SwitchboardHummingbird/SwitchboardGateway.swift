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
///     configuration: .init(address: .hostname("0.0.0.0", port: 8080)),
///     eventLoopGroupProvider: .shared(gateway.eventLoop))
/// let group = ServiceGroup(configuration: .init(
///     services: [.init(service: app), .init(service: SwitchboardService(gateway.server))],
///     gracefulShutdownSignals: [.sigterm], logger: logger))
/// try await group.run()
/// ```
///
/// One EventLoop: the gateway's engine is single-threaded and takes over channels in place, so
/// the app runs on the gateway's loop (`eventLoopGroupProvider: .shared(gateway.eventLoop)`),
/// or the gateway on one loop the app gives (`init(eventLoop:)`) with the app's group of that
/// one loop. The server's own life is `SwitchboardService` (SwitchboardServiceLifecycle) in the
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

    /// The loop of the gateway, on which the app's server must run.
    public var eventLoop: EventLoop { driver.eventLoop }

    /// - Parameter eventLoop: the loop to run on; nil makes one of the driver's own.
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
