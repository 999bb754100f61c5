import Foundation
import Switchboard
import TestSupport
import Testing
@testable import SwitchboardServe

/// Issue 18, proxy hooks end to end: a real `ServeApp` on a free port, real WebSocket clients,
/// and a real HTTP backend (`ProxyBackend`, python3) answering connect, join, rpc, publish and
/// disconnect. The failure paths (a 500, a body that is not JSON, a wrong field type, a backend
/// that never answers) each reach the client as the spec's error.
@Suite(.serialized) struct ProxyHookTests {
    /// Keeps a client (and so its connection) open past the blocking part of a test.
    struct Kept: @unchecked Sendable {
        let client: WSClient
    }

    /// The close frame after a refused login: the error's message and the close code.
    static func refusal(_ client: WSClient) throws -> (String?, UInt16?) {
        let error = try client.receive(event: "error")
        while try client.nextMessage() != nil {}
        return (error?["message"]?.stringValue, client.closeCode)
    }

    static func login(_ running: RunningApp, _ token: String) throws -> WSClient {
        let client = try WSClient(port: running.port)
        try client.send("authenticate", ["token": .string(token)])
        return client
    }

    @Test func theBackendChoosesTheUserAndSeesTheConnection() async throws {
        let backend = try await ProxyBackend.start()
        defer { backend.stop() }
        let running = try RunningApp(backend.config())
        defer { Task { await running.stop() } }
        let (hello, sent, kept) = try await offThePool {
            // The upgrade carries a header the config forwards and one it does not.
            let connection = try TCPConnection(port: UInt16(running.port))
            let key = randomWebSocketKey()
            let request = upgradeRequest(port: UInt16(running.port), key: key)
                .replacingOccurrences(of: "\r\n\r\n", with: "\r\nX-Tenant: acme\r\nX-Secret: no\r\n\r\n")
            try connection.write(Array(request.utf8))
            let client = try WSClient(connection: connection, port: UInt16(running.port), key: key, timeout: 5)
            try client.send("authenticate", ["token": "user:alice", "extra": 1])
            return (try client.receive(event: "connected"), try backend.calls("connect").last, Kept(client: client))
        }
        defer { kept.client.close() }
        #expect(hello?["userId"] == "alice")
        #expect(sent?["clientId"] == hello?["id"])
        #expect(sent?["remoteAddress"] == "127.0.0.1")
        #expect(sent?["headers"] == ["x-tenant": "acme"])
        #expect(sent?["data"] == ["token": "user:alice", "extra": 1])
        // The metadata the backend answered is the client's (what presence and the API show),
        // and so are its rooms, but for the one the room name rule refuses.
        let id = try #require(hello?["id"]?.stringValue)
        let client = try await running.app.server.client(id: id)
        #expect(client?.metadata == ["plan": "pro"])
        #expect(client?.rooms == [id, "lounge", "ws-default", "ws-notification"].sorted())
    }

    @Test func aRefusalAndEveryBadAnswerCloseWithTheSpecCodes() async throws {
        let backend = try await ProxyBackend.start()
        defer { backend.stop() }
        let running = try RunningApp(backend.config(timeout: "300ms"))
        defer { Task { await running.stop() } }
        let outcomes = try await offThePool {
            try ["deny", "boom", "garbage", "wrong-type"].map { token in try Self.refusal(Self.login(running, token)) }
        }
        #expect(outcomes[0] == ("Authentication failed", 4003))
        for (token, outcome) in zip(["boom", "garbage", "wrong-type"], outcomes.dropFirst()) {
            #expect(outcome == ("Authentication error", 4003), "\(token)")
        }
        #expect(running.app.counters.authFailed["proxy_refused"] == 1)
        #expect(running.app.counters.authFailed["proxy_failed"] == 3)
        // 500 is retried (connect asks only): three attempts; bad JSON is not a transient failure.
        #expect(try await backend.recorded("connect").filter { $0["data"]?["token"] == "boom" }.count == 3)
        #expect(try await backend.recorded("connect").filter { $0["data"]?["token"] == "garbage" }.count == 1)
    }

    @Test func aBackendThatNeverAnswersTimesOut() async throws {
        let backend = try await ProxyBackend.start()
        defer { backend.stop() }
        let running = try RunningApp(backend.config(timeout: "300ms", retries: 0))
        defer { Task { await running.stop() } }
        let (outcome, elapsed) = try await offThePool {
            let start = Date()
            let outcome = try Self.refusal(Self.login(running, "hang"))
            return (outcome, Date().timeIntervalSince(start))
        }
        #expect(outcome == ("Authentication error", 4003))
        #expect(elapsed >= 0.3 && elapsed < 2, "answered after \(elapsed) s")
    }

    @Test func aFlakyBackendIsRetriedForConnect() async throws {
        let backend = try await ProxyBackend.start()
        defer { backend.stop() }
        let running = try RunningApp(backend.config())
        defer { Task { await running.stop() } }
        let hello = try await offThePool { try Self.login(running, "flaky:bob").receive(event: "connected") }
        #expect(hello?["userId"] == "bob")
        #expect(try await backend.recorded("connect").count == 2)
    }

    @Test func joinIsNarrowedByTheBackend() async throws {
        let backend = try await ProxyBackend.start()
        defer { backend.stop() }
        let running = try RunningApp(backend.config())
        defer { Task { await running.stop() } }
        let (denied, failed, rooms, id, kept) = try await offThePool {
            let client = try Self.login(running, "user:alice")
            let id = try client.receive(event: "connected")?["id"]?.stringValue ?? ""
            try client.send("join", ["rooms": ["news", "secret-plans"]])
            let denied = try client.receive(event: "error")
            try client.send("join", ["rooms": ["explode"]])
            let failed = try client.receive(event: "error")
            return (denied, failed, try backend.calls("join"), id, Kept(client: client))
        }
        defer { kept.client.close() }
        #expect(denied == ["message": "Room not allowed", "rooms": ["secret-plans"]])
        #expect(failed == ["message": "Join failed"])
        #expect(rooms.first == ["clientId": .string(id), "userId": "alice", "rooms": ["news", "secret-plans"]])
        let joined = try await running.app.server.client(id: id)?.rooms ?? []
        #expect(joined.contains("news") && !joined.contains("secret-plans") && !joined.contains("explode"))
    }

    @Test func rpcRoundTripsAndFailsWithTheSpecError() async throws {
        let backend = try await ProxyBackend.start()
        defer { backend.stop() }
        let running = try RunningApp(backend.config(timeout: "300ms"))
        defer { Task { await running.stop() } }
        let replies = try await offThePool {
            let client = try Self.login(running, "user:alice")
            _ = try client.receive(event: "connected")
            var replies: [JSONValue?] = []
            for (index, method) in ["echo", "deny", "boom", "garbage", "hang"].enumerated() {
                try client.sendText(JSONValue.object(JSONObject([
                    ("event", "rpc"), ("data", ["method": .string(method), "data": ["n": .number(JSONNumber(index))]]),
                    ("id", .number(JSONNumber(index))),
                ])).serialized())
                replies.append(try client.receive(event: "rpc_reply"))
            }
            return replies
        }
        #expect(replies[0] == ["id": 0, "method": "echo", "result": ["echo": ["n": 0]]])
        #expect(replies[1] == ["id": 1, "method": "deny", "error": "RPC refused"])
        #expect(replies[2] == ["id": 2, "method": "boom", "error": "RPC failed"])
        #expect(replies[3] == ["id": 3, "method": "garbage", "error": "RPC failed"])
        #expect(replies[4] == ["id": 4, "method": "hang", "error": "RPC failed"])
        // An rpc may act: it is never retried, not even after a 500.
        #expect(try await backend.recorded("rpc").filter { $0["method"] == "boom" }.count == 1)
        #expect(try await backend.recorded("rpc").first?["userId"] == "alice")
    }

    @Test func aPublishIsTransformedAndReachesTheRoom() async throws {
        let backend = try await ProxyBackend.start()
        defer { backend.stop() }
        let running = try RunningApp(backend.config())
        defer { Task { await running.stop() } }
        let (publication, own, refused, outside, aliceID) = try await offThePool {
            let alice = try Self.login(running, "user:alice")
            let aliceID = try alice.receive(event: "connected")?["id"]?.stringValue ?? ""
            let bob = try Self.login(running, "user:bob")
            _ = try bob.receive(event: "connected")
            // Both are in the default room `ws-default`.
            try alice.send("publish", ["room": "ws-default", "data": ["text": "hello"]])
            let publication = try bob.receive(event: "publication")
            let own = try alice.receive(event: "publication")
            try alice.send("publish", ["room": "ws-default", "data": ["text": "deny"]])
            let refused = try alice.receive(event: "error")
            try alice.send("publish", ["room": "elsewhere", "data": ["text": "x"]])
            return (publication, own, refused, try alice.receive(event: "error"), aliceID)
        }
        let expected: JSONValue = ["room": "ws-default", "clientId": .string(aliceID), "userId": "alice",
                                   "data": ["text": "HELLO", "checked": true]]
        #expect(publication == expected)
        #expect(own == expected)
        #expect(refused == ["message": "Publish rejected"])
        #expect(outside == ["message": "Not in room"])
        // The room not joined never reached the backend.
        #expect(try await backend.recorded("publish").count == 2)
    }

    /// Two instances on one real redis-server: a publication the backend allowed on one
    /// reaches a member of the room on the other (a `room` envelope on the bus).
    @Test(.enabled(if: ServeAppTests.redisServer != nil, "redis-server is not installed"))
    func aPublishCrossesInstancesThroughRedis() async throws {
        let backend = try await ProxyBackend.start()
        defer { backend.stop() }
        // Started off the cooperative pool: each waits for redis-server, then for its subscriptions.
        let redis = try await offThePool { try RedisServer() }
        defer { redis.stop() }
        let environment = ["SWITCHBOARD_REDIS_URL": "redis://127.0.0.1:\(redis.port)"]
        let config = backend.config()
        let first = try await offThePool { try RunningApp(config, environment: environment) }
        defer { Task { await first.stop() } }
        let second = try await offThePool { try RunningApp(config, environment: environment) }
        defer { Task { await second.stop() } }
        let (publication, aliceID) = try await offThePool {
            let bob = try Self.login(second, "user:bob")
            _ = try bob.receive(event: "connected")
            let alice = try Self.login(first, "user:alice")
            let aliceID = try alice.receive(event: "connected")?["id"]?.stringValue ?? ""
            try alice.send("publish", ["room": "lounge", "data": ["text": "across"]])
            _ = try alice.receive(event: "publication")  // delivered here first, then published
            return (try bob.receive(event: "publication"), aliceID)
        }
        #expect(publication == ["room": "lounge", "clientId": .string(aliceID), "userId": "alice",
                                "data": ["text": "ACROSS", "checked": true]])
    }

    @Test func aDisconnectIsNotifiedWithoutHoldingTheClose() async throws {
        let backend = try await ProxyBackend.start()
        defer { backend.stop() }
        let running = try RunningApp(backend.config())
        defer { Task { await running.stop() } }
        let id = try await offThePool {
            let client = try Self.login(running, "user:carol")
            let id = try client.receive(event: "connected")?["id"]?.stringValue ?? ""
            try client.sendClose()
            while try client.nextMessage() != nil {}
            // The backend hears of it (an event this test can only poll for: the notice is fire and forget).
            guard pollUntil(timeout: 5, every: 0.02, { (try? backend.calls("disconnect").isEmpty) == false }) else {
                throw TestFailure("no disconnect notice reached the backend")
            }
            return id
        }
        #expect(try await backend.recorded("disconnect") == [["clientId": .string(id), "userId": "carol"]])
        // A client the backend refused was never admitted: no notice for it.
        try await offThePool { _ = try Self.refusal(Self.login(running, "deny")) }
        #expect(try await backend.recorded("disconnect").count == 1)
    }

    @Test func configCheckValidatesTheURLs() {
        func errors(_ yaml: String) -> [String] {
            do {
                _ = try ConfigLoader.load(bytes: Array(yaml.utf8), file: "test.yaml", baseDirectory: ".", environment: [:])
                return []
            } catch {
                return error.errors.map(\.description)
            }
        }
        #expect(errors("proxy:\n  rpc:\n    url: http://127.0.0.1:9000/rpc\n  timeout: 2s\n") == [])
        #expect(errors("proxy:\n  rpc:\n    url: ftp://backend/rpc\n").joined().contains("proxy.rpc.url"))
        #expect(errors("proxy:\n  connect:\n    url: http:///connect\n").joined().contains("has no host"))
        #expect(errors("proxy:\n  join:\n    url: http://backend:99999/join\n").joined().contains("bad port"))
        #expect(errors("proxy:\n  forward_headers: [cookie]\n").joined().contains("proxy.connect.url"))
        let config = try? ConfigLoader.load(bytes: Array("proxy:\n  publish:\n    url: https://b/p\n    timeout: 250ms\n".utf8),
                                           file: "test.yaml", baseDirectory: ".", environment: ["SWITCHBOARD_PROXY_RETRIES": "0"])
        #expect(config?.proxy.timeout(.publish) == 250 && config?.proxy.timeout(.rpc) == 1_000)
        #expect(config?.proxy.attempts(.connect) == 1 && config?.proxy.attempts(.publish) == 1)
    }
}
