import Dispatch
import Glibc
import Hummingbird
import Logging
import NIOPosix
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

/// An app on a group of several EventLoops: its server accepts connections round-robin over
/// them, so the gateway's are adopted from loops other than its engine's.
@Suite("Switchboard on a Hummingbird app with several EventLoops", .serialized)
struct MultiLoopTests {
    enum GatewayLoop: String, CaseIterable, CustomStringConvertible {
        /// The gateway's own loop, none of the app's: every connection hops.
        case own
        /// One of the app's loops: a third of the connections need no hop.
        case oneOfTheApps
        var description: String { rawValue }
    }

    @Test("clients on every loop of the app authenticate, echo, get a broadcast in order, and 1001 at shutdown",
          arguments: GatewayLoop.allCases)
    func severalLoops(_ placement: GatewayLoop) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
        let serverBox = Mutex<Switchboard.Server?>(nil)
        var hooks = Hooks(authenticate: { data in data["token"].flatMap(\.stringValue).map { AuthResult(userID: $0) } })
        hooks.messageHandler = { message in
            guard message.message.event == "echo", let server = serverBox.withLock({ $0 }) else { return }
            try server.sendToClient(message.clientID, event: "echo", data: message.message.data)
        }
        let gateway = try SwitchboardGateway(hooks: hooks, eventLoop: placement == .own ? nil : group.next())
        serverBox.withLock { $0 = gateway.server }
        let router = Router()
        router.get("hello") { _, _ in "hello from the app" }
        let bound = Mutex<Int?>(nil)
        let app = Application(
            router: router, server: gateway.http1(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in bound.withLock { $0 = channel.localAddress?.port } },
            eventLoopGroupProvider: .shared(group), logger: Logger(label: "test"))
        let services = ServiceGroup(configuration: .init(services: [app, SwitchboardService(gateway.server)],
                                                         logger: Logger(label: "test")))
        let clients = ClientsBox()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await services.run() }
            let port = try await UInt16(waitFor("the app to listen") { bound.withLock { $0 } })
            try await offThePool {
                // Six connections over three loops: two on each.
                for n in 0..<6 {
                    let ws = try WSClient(port: port)
                    try ws.send("authenticate", .object(JSONObject([("token", .string("user\(n)"))])))
                    let connected = try ws.receiveJSON(timeout: 5)
                    #expect(connected.event == "connected" && connected.data?["userId"]?.stringValue == "user\(n)")
                    clients.value.append(ws)
                }
                for (n, ws) in clients.value.enumerated() {
                    let text = String(repeating: "\(n)", count: 100_000)  // several reads and writes each way
                    try ws.send("echo", .string(text))
                    #expect(try ws.receiveEvent("echo", timeout: 5) == .string(text))
                }
                let reply = try rawHTTP(port: port, request: "GET /hello HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                #expect(reply.body == "hello from the app")
            }
            let server = gateway.server
            for n in 1...3 { try server.broadcast(event: "headline", data: .number(JSONNumber(n))) }
            try await offThePool {
                for ws in clients.value {
                    for n in 1...3 {
                        let headline = try ws.receiveEvent("headline", timeout: 5)
                        #expect(headline == .number(JSONNumber(n)))
                    }
                }
            }
            await services.triggerGracefulShutdown()
            try await offThePool {
                for ws in clients.value {
                    try ws.expectClose(code: 1001, reason: nil, timeout: 5, skippingMessages: true)
                    ws.close()
                }
            }
            try await tasks.waitForAll()
        }
        try await group.shutdownGracefully()
    }
}

/// The clients of a test, handed from one `offThePool` body to the next.
final class ClientsBox: @unchecked Sendable {
    var value: [WSClient] = []
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
