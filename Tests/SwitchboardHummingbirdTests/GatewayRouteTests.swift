import Dispatch
import Glibc
import Hummingbird
import Logging
import Switchboard
import SwitchboardHummingbird
import ServiceLifecycle
import SwitchboardServiceLifecycle
import Synchronization
import TestSupport
import Testing

/// Switchboard on a path of a real Hummingbird 2 app: one port, the app's router for its
/// routes, the gateway for `/ws`, both started and stopped by one service group.
@Suite("Switchboard on a Hummingbird app", .serialized)
struct GatewayRouteTests {
    @Test("the app's route and the gateway share the app's port; the gateway authenticates and answers")
    func sharedPort() async throws {
        let serverBox = Mutex<Switchboard.Server?>(nil)
        var hooks = Hooks(authenticate: { data in
            data["token"]?.stringValue == "good" ? AuthResult(userID: "ada") : nil
        })
        hooks.messageHandler = { message in
            guard message.message.event == "echo", let server = serverBox.withLock({ $0 }) else { return }
            try server.sendToClient(message.clientID, event: "echo", data: message.message.data)
        }
        let disconnected = Mutex<[String]>([])
        hooks.clientDisconnected = { client in disconnected.withLock { $0.append(client.userID ?? "-") } }
        let gateway = try SwitchboardGateway(hooks: hooks)
        serverBox.withLock { $0 = gateway.server }

        let router = Router()
        router.get("hello") { _, _ in "hello from the app" }
        let bound = Mutex<Int?>(nil)
        let app = Application(
            router: router,
            server: gateway.http1(),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in bound.withLock { $0 = channel.localAddress?.port } },
            eventLoopGroupProvider: .shared(gateway.eventLoop),
            logger: Logger(label: "test"))

        // The gateway after the app: a group shuts down in reverse order, so the gateway's
        // clients are closed (1001) before the app's server waits for its connections to end.
        let services = ServiceGroup(configuration: .init(services: [app, SwitchboardService(gateway.server)],
                                                         logger: Logger(label: "test")))
        let client = ClientBox()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            let port = try await UInt16(waitFor("the app to listen") { bound.withLock { $0 } })
            try await offThePool {
                let reply = try rawHTTP(port: port, request: "GET /hello HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                #expect(reply.status == 200)
                #expect(reply.body == "hello from the app")

                let ws = try WSClient(port: port)
                try ws.send("authenticate", .object(JSONObject([("token", .string("good"))])))
                let connected = try ws.receiveJSON(timeout: 5)
                #expect(connected.event == "connected")
                #expect(connected.data?["userId"]?.stringValue == "ada")
                try ws.send("echo", .string("through the app's port"))
                #expect(try ws.receiveEvent("echo", timeout: 5) == .string("through the app's port"))

                // A client that goes away without a close frame is seen at once (Hummingbird
                // allows half-closure: the peer's FIN must still end the connection).
                let leaving = try WSClient(port: port)
                try leaving.send("authenticate", .object(JSONObject([("token", .string("good"))])))
                _ = try leaving.receiveJSON(timeout: 5)
                leaving.close()
                let end = ContinuousClock.now + .seconds(5)
                while disconnected.withLock({ $0.isEmpty }), ContinuousClock.now < end { usleep(10_000) }
                #expect(disconnected.withLock { $0 } == ["ada"])

                // The app still answers while a gateway connection is open.
                let again = try rawHTTP(port: port, request: "GET /hello HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                #expect(again.body == "hello from the app")
                client.value = ws
            }
            // One graceful shutdown for both: the gateway's client is told 1001 (going away).
            await services.triggerGracefulShutdown()
            try await offThePool {
                let ws = try #require(client.value)
                try ws.expectClose(code: 1001, reason: nil, timeout: 5, skippingMessages: true)
                ws.close()
            }
            try await group.waitForAll()
        }
    }
}

/// Polls `value` until it is non-nil (the app reports its port from its own task).
func waitFor<T>(_ what: String, timeout: Double = 20, _ value: () -> T?) async throws -> T {
    let end = ContinuousClock.now + .seconds(timeout)
    while ContinuousClock.now < end {
        if let value = value() { return value }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestFailure("timed out waiting for \(what)")
}

/// Runs blocking socket code on a Dispatch thread, so that it does not hold one of the few
/// threads of Swift's pool, which the app's services need meanwhile.
func offThePool(_ body: @escaping @Sendable () throws -> Void) async throws {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
        DispatchQueue.global().async {
            do {
                try body()
                continuation.resume()
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}

/// The WebSocket client, handed from one `offThePool` body to the next (they run one after
/// the other, never at once).
final class ClientBox: @unchecked Sendable {
    var value: WSClient?
}
