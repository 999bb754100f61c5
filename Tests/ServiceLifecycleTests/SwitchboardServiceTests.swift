import Logging
import ServiceLifecycle
import Switchboard
import SwitchboardServiceLifecycle
import TestSupport
import Testing

/// `SwitchboardService` in a real `ServiceGroup`, with a real WebSocket client.
@Suite struct SwitchboardServiceTests {
    func makeServer() throws -> Server {
        try Server(options: ServerOptions(), hooks: Hooks(authenticate: { _ in AuthResult(userID: "u1") }),
                   logger: Logging.Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// A client that has authenticated (and read `connected`). Its reads block: they run on a
    /// thread of their own, not on the pool the service group runs on.
    func authenticatedClient(port: Int) async throws -> Handed<WSClient> {
        try await offThePool {
            let client = try WSClient(port: UInt16(port))
            try client.send("authenticate", ["type": "Bearer", "token": "t"])
            guard try client.receiveJSON().event == "connected" else { throw TestFailure("not connected") }
            return Handed(client)
        }
    }

    @Test func gracefulShutdownOfTheGroupClosesClientsWith1001AndEndsRun() async throws {
        let server = try makeServer()
        let listening = AsyncSignal<Int>()
        let runReturned = AsyncSignal<Void>()
        let service = ReportingService(base: SwitchboardService(server, onListening: { listening.send($0) }),
                                       returned: runReturned)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: service)],
            logger: Logging.Logger(label: "group", factory: { _ in SwiftLogNoOpLogHandler() })))

        let groupTask = Task { try await group.run() }
        let port = await listening.value
        let client = try await authenticatedClient(port: port)
        defer { client.value.close() }

        await group.triggerGracefulShutdown()
        try await offThePool {
            try client.value.expectClose(code: 1001, reason: nil)
            client.value.close()  // the server waits (bounded) for the peer to end the TCP connection
        }
        await runReturned.value
        try await groupTask.value  // the group ends, without an error
        #expect(server.port == nil)
    }

    /// With a drain delay the group's shutdown first stops accepting and reports `isDraining`,
    /// while the established client is still served; then it closes with 1001.
    @Test func aDrainDelayKeepsServingEstablishedClientsFirst() async throws {
        let server = try makeServer()
        let listening = AsyncSignal<Int>()
        let base = SwitchboardService(server, drainDelay: .seconds(3), onListening: { listening.send($0) })
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: base)],
            logger: Logging.Logger(label: "group", factory: { _ in SwiftLogNoOpLogHandler() })))

        let groupTask = Task { try await group.run() }
        let port = await listening.value
        let client = try await authenticatedClient(port: port)
        defer { client.value.close() }
        #expect(!base.isDraining)

        await group.triggerGracefulShutdown()
        #expect(await eventually { base.isDraining })
        #expect(await eventually { (try? TCPConnection(port: UInt16(port))) == nil })
        try server.broadcast(event: "during-drain", data: 1)
        #expect(try await offThePool { try client.value.receiveEvent("during-drain") } == 1)
        #expect(server.port == port)  // not shut down yet

        try await offThePool {
            try client.value.expectClose(code: 1001, reason: nil, timeout: 10)
            client.value.close()
        }
        try await groupTask.value
        #expect(server.port == nil)
    }
}

/// Wraps a service to report that its `run()` returned (without throwing).
struct ReportingService<Base: Service>: Service {
    let base: Base
    let returned: AsyncSignal<Void>
    func run() async throws {
        try await base.run()
        returned.send(())
    }
}
