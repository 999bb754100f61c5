import Foundation
import Switchboard
import SwitchboardCrypto
import TestSupport
import Testing
@testable import SwitchboardServe

/// A running ServeApp on a free port with a tokens file (alice, bob), stopped by `stop()`.
final class RunningApp: @unchecked Sendable {
    let app: ServeApp
    let port: Int
    private let dir: TempDir

    init(_ yaml: String = "", environment: [String: String] = [:]) throws {
        dir = try TempDir()
        try dir.write("tokens.yaml", "alice-token: alice\nbob-token: bob\n")
        let file = try dir.write("serve.yaml", "listen:\n  port: 0\nauth:\n  tokens_file: tokens.yaml\n" + yaml)
        let config = try ConfigLoader.load(path: file, environment: environment)
        app = try ServeApp(config: config, logger: Logger(level: .error))
        port = try app.start()
    }

    /// A client that has received `connected`.
    func login(_ token: String, data: [(String, JSONValue)] = []) throws -> (WSClient, JSONValue?) {
        let client = try WSClient(port: port)
        try client.send("authenticate", .object(JSONObject([("token", .string(token))] + data)))
        return (client, try client.receive(event: "connected"))
    }

    /// Joins `room` and waits until the join is applied: joins run through validateRoomFn
    /// asynchronously, so the client probes the room until its own probe comes back.
    func join(_ client: WSClient, _ room: String) throws {
        try client.send("join", ["rooms": [.string(room)]])
        for _ in 0..<200 {
            try client.send("send", ["room": .string(room), "event": "probe", "data": 0])
            while let message = try client.nextMessage() {
                if message.event == "probe" { return }
                if message.event == "error", message.data == ["message": .string("Not in room \(room)")] { break }
            }
        }
        throw TestFailure("the join of \(room) was never applied")
    }

    func stop() async {
        await app.shutdown()
        dir.remove()
    }
}

@Suite(.serialized) struct ServeAppTests {
    @Test func httpEndpoints() async throws {
        let running = try RunningApp()
        let health = try http(port: running.port, path: "/healthz")
        #expect(health.status == 200 && health.body == "ok\n")
        let metrics = try http(port: running.port, path: "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        let parsed = try Exposition(metrics.body)
        #expect(parsed.samples["switchboard_clients{state=\"authenticated\"}"] == 0)
        #expect(parsed.samples["switchboard_connections"] == 1)   // this request
        // The process families, read from /proc/self of this (test) process.
        #expect(parsed.samples["process_resident_memory_bytes"].map { $0 > 0 } == true)
        #expect(parsed.samples["process_open_fds"].map { $0 >= 3 } == true)
        #expect(parsed.types["switchboard_hook_duration_seconds"] == "histogram")
        let page = try http(port: running.port, path: "/")
        #expect(page.status == 200 && page.headers["content-type"] == "text/html; charset=utf-8")
        #expect(page.body.contains("const WS_PATH = \"/ws\", SERVER_ENCRYPTION = \"off\", DEV_TOKEN = \"\""))
        #expect(try http("POST", port: running.port, path: "/metrics").status == 405)
        #expect(try http(port: running.port, path: "/nope").status == 404)
        await running.stop()
        #expect(running.app.healthy.ok == false)
    }

    @Test func roomsDirectAndErrors() async throws {
        let running = try RunningApp("rooms:\n  allow_prefixes: [public-]\n")
        defer { Task { await running.stop() } }
        let (alice, aliceHello) = try running.login("alice-token")
        let (bob, _) = try running.login("bob-token")
        #expect(aliceHello?["userId"] == "alice")
        let aliceID = try #require(aliceHello?["id"]?.stringValue)

        try alice.send("join", ["rooms": ["public-a", "secret", "user:alice"]])
        #expect(try alice.receive(event: "error") == ["message": "Room not allowed", "rooms": ["secret"]])
        try running.join(alice, "public-a")
        try running.join(alice, "user:alice")
        try running.join(bob, "public-a")

        try alice.send("send", ["room": "public-a", "event": "chat", "data": ["text": "hi"]])
        #expect(try bob.receive(event: "chat") == ["from": "alice", "clientId": .string(aliceID), "room": "public-a", "data": ["text": "hi"]])
        try alice.send("send", ["room": "public-b", "event": "chat", "data": 1])
        #expect(try alice.receive(event: "error") == ["message": "Not in room public-b"])
        try alice.send("direct", ["userId": "bob", "event": "dm", "data": "psst"])
        #expect(try bob.receive(event: "dm") == ["from": "alice", "clientId": .string(aliceID), "data": "psst"])
        try alice.send("broadcast", ["event": "all", "data": 1])
        #expect(try alice.receive(event: "error") == ["message": "Broadcast is disabled"])
        try alice.send("send", ["room": "public-a", "event": "connected", "data": 1])
        #expect(try alice.receive(event: "error") == ["message": "Invalid message: send needs {room, event, data}"])
        #expect(running.app.counters.customEvents["invalid"] == 2)
        #expect(running.app.counters.roomsDenied == 1)
    }

    @Test func abuseLimits() async throws {
        let running = try RunningApp("""
            abuse:
              max_clients_per_user: 1
              messages_per_second: 1
            rooms:
              max_per_client: 1
            messages:
              broadcast: true
            """)
        defer { Task { await running.stop() } }
        let (alice, _) = try running.login("alice-token")
        let second = try WSClient(port: running.port)
        try second.send("authenticate", ["token": "alice-token"])
        #expect(try second.receive(event: "error") == ["message": "Authentication failed"])
        #expect(try second.nextMessage() == nil && second.closeCode == 4003)
        #expect(running.app.counters.authFailed["too_many_clients"] == 1)

        try alice.send("join", ["rooms": ["a", "b"]])
        #expect(try alice.receive(event: "error") == ["message": "Too many rooms", "rooms": ["b"]])

        try alice.send("broadcast", ["event": "one", "data": 1])
        try alice.send("broadcast", ["event": "two", "data": 2])
        // "one" comes back through the bus, the error for "two" is written at once: when both
        // frames arrive in one read, the error comes first. Either order is right.
        var answers: [String: JSONValue?] = [:]
        while answers.count < 2, let message = try alice.nextMessage() {
            if message.event == "one" || message.event == "error" { answers[message.event] = message.data }
        }
        #expect(answers["one"]??["from"] == "alice")
        #expect(answers["error"] == ["message": "Rate limit exceeded"])
        #expect(running.app.counters.rateLimited == 1)
    }

    @Test func connectionsPerIPAndMessagesBeforeAuthAreCapped() async throws {
        let running = try RunningApp("abuse:\n  max_connections_per_ip: 2\n  max_messages_before_auth: 2\n")
        defer { Task { await running.stop() } }
        let (first, _) = try running.login("alice-token")
        let second = try WSClient(port: running.port)
        // A third connection from 127.0.0.1 is closed at accept: the upgrade never succeeds.
        #expect(throws: (any Error).self) { try WSClient(port: running.port) }
        // The second client floods before authenticating: the third message closes it with 4008.
        try second.send("heartbeat", nil)
        try second.send("heartbeat", nil)
        try second.send("heartbeat", nil)
        #expect(try second.nextMessage() == nil && second.closeCode == 4008)
        // The authenticated client is unaffected.
        try first.send("heartbeat", nil)
        #expect(running.app.server.port != nil)
    }

    @Test func developmentModeSignsADemoToken() async throws {
        let config = try ConfigLoader.load(bytes: Array("listen:\n  port: 0\n".utf8), file: "t.yaml", baseDirectory: ".", environment: [:])
        let app = try ServeApp(config: config, logger: Logger(level: .error))
        let port = try app.start()
        let token = try #require(app.developmentToken)
        let client = try WSClient(port: port)
        try client.send("authenticate", ["token": .string(token)])
        #expect(try client.receive(event: "connected")?["userId"] == "demo")
        #expect(try http(port: port, path: "/").body.contains(token))
        await app.shutdown()
    }

    @Test func requiredEncryption() async throws {
        let running = try RunningApp("encryption: required\n")
        defer { Task { await running.stop() } }
        func encryptedLogin(_ token: String) throws -> (WSClient, EncryptionSession) {
            let keys = try P256KeyPair.generate()
            let (client, hello) = try running.login(token, data: [("publicKey", .string(keys.publicKeyBase64))])
            let session = try EncryptionSession.client(keyPair: keys, serverPublicKeyBase64: hello?["serverPublicKey"]?.stringValue ?? "",
                                                       saltBase64: hello?["salt"]?.stringValue ?? "")
            return (client, session)
        }
        let (alice, aliceSession) = try encryptedLogin("alice-token")
        let (bob, bobSession) = try encryptedLogin("bob-token")
        let inner = OutboundEnvelope.encode(event: "direct", data: ["userId": "bob", "event": "chat", "data": "secret"])
        let (iv, ct) = aliceSession.encryptEnvelope(json: inner)
        try alice.send("encrypted", ["iv": .string(iv), "ct": .string(ct)])
        let sealed = try #require(try bob.receive(event: "encrypted"))
        let plain = try bobSession.decrypt(ivBase64: sealed["iv"]?.stringValue ?? "", ctBase64: sealed["ct"]?.stringValue ?? "")
        let message = try JSONValue.parse(plain)
        #expect(message["event"] == "chat")
        #expect(message["data"]?["data"] == "secret")
        #expect(message["data"]?["from"] == "alice")

        try bob.send("encrypted", ["iv": "AAAAAAAAAAAAAAAA", "ct": "AAAAAAAAAAAAAAAAAAAAAAAA"])
        let error = try #require(try bob.receive(event: "encrypted"))
        let errorText = try bobSession.decrypt(ivBase64: error["iv"]?.stringValue ?? "", ctBase64: error["ct"]?.stringValue ?? "")
        #expect(try JSONValue.parse(errorText) == ["event": "error", "data": ["message": "Cannot decrypt message"]])

        let plainClient = try WSClient(port: running.port)
        try plainClient.send("authenticate", ["token": "alice-token"])
        #expect(try plainClient.receive(event: "error") == ["message": "Encryption handshake failed"])
        #expect(try plainClient.nextMessage() == nil && plainClient.closeCode == 4004)
    }

    @Test func unreadableTLSFilesAreNamedAtTheirKeys() throws {
        var config = ServeConfig()
        config.tls = TLSFiles(certificate: "/nonexistent/c.pem", privateKey: "/nonexistent/k.pem")
        config.locations["tls.cert"] = ConfigLocation(file: "x.yaml", line: 3)
        config.locations["tls.key"] = ConfigLocation(file: "x.yaml", line: 4)
        do {
            _ = try ServeApp(config: config, logger: Logger(level: .error))
            Issue.record("expected an error")
        } catch let error as ConfigErrors {
            #expect(error.errors.map(\.description) == [
                "x.yaml:3: tls.cert: cannot read /nonexistent/c.pem (No such file or directory)",
                "x.yaml:4: tls.key: cannot read /nonexistent/k.pem (No such file or directory)",
            ])
        }
    }

    static let curl = ["/usr/bin/curl", "/usr/local/bin/curl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(.enabled(if: curl != nil, "curl is not installed"))
    func servesHTTPSWithTheConfiguredCertificate() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", dir.path + "/key.pem", "-out", dir.path + "/cert.pem", "-subj", "/CN=127.0.0.1", "-days", "1"])
        let running = try RunningApp("tls:\n  cert: \(dir.path)/cert.pem\n  key: \(dir.path)/key.pem\n")
        defer { Task { await running.stop() } }
        let answer = try run([Self.curl!, "-sk", "https://127.0.0.1:\(running.port)/healthz"]).output
        #expect(String(decoding: answer, as: UTF8.self) == "ok\n")
    }

    static let redisServer = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(.enabled(if: redisServer != nil, "redis-server is not installed"))
    func emitReachesAClientThroughRedis() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let redisPort = redis.port
        // start() returns once every Redis subscription is confirmed (it retries until Redis answers).
        let running = try RunningApp(environment: ["SWITCHBOARD_REDIS_URL": "redis://127.0.0.1:\(redisPort)"])
        defer { Task { await running.stop() } }
        #expect(try http(port: running.port, path: "/healthz").status == 200)
        let (alice, _) = try running.login("alice-token")
        try running.join(alice, "news")
        let arguments = ["--redis", "redis://127.0.0.1:\(redisPort)", "--type", "room", "--target", "news",
                         "--event", "headline", "--data", #"{"text":"hello"}"#]
        var reported = ""
        #expect(EmitCommand.main(arguments, context: CLIContext(environment: [:], out: { reported += $0 })) == 0)
        #expect(reported == "ws:room:news: received by 1 Redis subscriber\n")
        #expect(try alice.receive(event: "headline") == ["text": "hello"])
        let metrics = try Exposition(try http(port: running.port, path: "/metrics").body)
        #expect(metrics.samples["switchboard_redis_connected"] == 1)
    }
}

/// `loops: 2`: the relay checks a sender's rooms on whichever loop holds it. Nested in the
/// serialized `ServeAppTests`: run beside one of them, each test blocks a pool thread in a
/// socket read while its app's relay task waits for one, and on two cores neither goes on
/// (both time out, on main too).
extension ServeAppTests {
    @Suite struct Loops {
        @Test func roomSendsFromBothLoopsReachEveryMember() async throws {
            let running = try RunningApp("loops: 2\nrooms:\n  allow_prefixes: [public-]\n")
            defer { Task { await running.stop() } }
            var clients: [(WSClient, String)] = []
            for index in 0..<64 {
                let (client, hello) = try running.login(index % 2 == 0 ? "alice-token" : "bob-token")
                clients.append((client, try #require(hello?["id"]?.stringValue)))
                let perLoop = try await running.app.server.queryEach { $0.authenticatedCount }
                if clients.count >= 4, perLoop.allSatisfy({ $0 > 0 }) { break }
            }
            let loops = try await running.app.server.queryEach { kernel in
                Set(kernel.clientHandles.compactMap { kernel.client($0)?.id })
            }
            #expect(loops.count == 2 && loops.allSatisfy { !$0.isEmpty }, "clients on one loop only")
            for (client, _) in clients { try running.join(client, "public-a") }
            for (sender, senderID) in clients {
                try sender.send("send", ["room": "public-a", "event": "chat", "data": .string(senderID)])
                for (receiver, _) in clients {
                    #expect(try receiver.receive(event: "chat")?["data"] == .string(senderID))
                }
            }
            try clients[0].0.send("send", ["room": "public-b", "event": "chat", "data": 1])
            #expect(try clients[0].0.receive(event: "error") == ["message": "Not in room public-b"])
        }
    }
}
