// An existing Hummingbird 2 app with Switchboard added on /ws of its own port: the README's
// and docs/drivers.md's example, built by `make test`. Run it with
// `swift run hummingbird-gateway` and connect a WebSocket client to ws://127.0.0.1:8080/ws.
import Hummingbird
import Logging
import ServiceLifecycle
import Switchboard
import SwitchboardHummingbird
import SwitchboardServiceLifecycle

let logger = Logger(label: "app")

// The app as it was: its router and routes.
let router = Router()
router.get("health") { _, _ in "ok" }

// The gateway: its hooks, and the path it takes over on the app's port.
var options = ServerOptions()
options.path = "/ws"
var hooks = Hooks(authenticate: { data in
    // A real app checks a session or a JWT here.
    guard let user = data["token"]?.stringValue, !user.isEmpty else { return nil }
    return AuthResult(userID: user)
})
let gateway = try SwitchboardGateway(options: options, hooks: hooks, logger: logger)

// The app keeps its EventLoops (Hummingbird's default: one per core); the gateway's engine
// runs on a loop of its own, and connections to /ws are handed to it from the app's loops.
let app = Application(
    router: router,
    server: gateway.http1(),  // Hummingbird's HTTP/1 channel, with /ws handed to the gateway
    configuration: .init(address: .hostname("127.0.0.1", port: 8080)),
    logger: logger)

// One lifecycle: the gateway after the app, so a shutdown closes its clients (1001) first.
let services = ServiceGroup(configuration: .init(
    services: [.init(service: app), .init(service: SwitchboardService(gateway.server))],
    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
try await services.run()
