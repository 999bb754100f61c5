import Logging
import Switchboard
import TestSupport
import Synchronization
import Testing

/// A `Server` given the app's swift-log `Logging.Logger` logs through its handler, and lines
/// about a client carry that client's ids as metadata.
@Suite struct LoggerMetadataTests {
    struct HookFailed: Error {}

    @Test func aHookFailureLineCarriesTheClientsIDsAndACloseCarriesItsCode() async throws {
        let hookLine = AsyncSignal<CapturedLine>()
        let closeLine = AsyncSignal<CapturedLine>()
        let logger = Logging.Logger(label: "app", factory: { _ in
            CapturingLogHandler { line in
                if line.message.hasPrefix("messageHandler threw") { hookLine.send(line) }
                if line.message.hasPrefix("closing") { closeLine.send(line) }
            }
        })
        var hooks = Hooks(authenticate: { _ in AuthResult(userID: "user-7") })
        hooks.messageHandler = { _ in throw HookFailed() }
        let server = try Server(options: ServerOptions(), hooks: hooks, logger: logger)
        let port = try server.start()
        let client = try WSClient(port: UInt16(port))
        defer { client.close() }
        try client.send("authenticate", ["type": "Bearer", "token": "t"])
        let connected = try client.receiveJSON()
        let clientID = try #require(connected.data?["id"]?.stringValue)

        try client.send("chat", ["text": "hello"])
        let line = await hookLine.value
        #expect(line.level == .warning)
        #expect(line.metadata["client_id"] == .string(clientID))
        #expect(line.metadata["user_id"] == .string("user-7"))
        #expect(!line.message.contains(clientID), "the id is metadata, not part of the text")

        let shutdown = Task { await server.shutdown() }
        try client.expectClose(code: 1001, reason: nil)
        client.close()
        await shutdown.value
        let close = await closeLine.value
        #expect(close.metadata["client_id"] == .string(clientID))
        #expect(close.metadata["close_code"] == .stringConvertible(UInt16(1001)))
    }

    @Test func aStringSinkGetsTheMetadataAppendedToTheText() {
        let lines = Mutex<[String]>([])
        let logger = Switchboard.Logger(level: .debug, sink: { _, line in lines.withLock { $0.append(line) } })
        logger.write(.warning, "hook threw", metadata: ["client_id": "c1", "user_id": "u1"])
        logger.write(.debug, "plain")
        #expect(lines.withLock { $0 } == ["hook threw [client_id=c1 user_id=u1]", "plain"])
    }
}
