// One test per condition of the seed error table (Tests/Data/seed-errors.tsv), against the fixture binary.
import Foundation
import Switchboard
import SwitchboardCrypto
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Every end-to-end suite runs one test at a time: they spawn processes and measure timers.
@Suite(.serialized) struct EndToEnd {}

extension EndToEnd {
    @Suite("Seed error table") struct SeedErrors {
        /// The seed conditions the tests below cover. A condition added to the table without a
        /// test here fails `everyConditionHasATest`.
        static let tested: Set<String> = [
            "invalid-message-format", "already-authenticated", "not-authenticated", "authentication-failed",
            "authentication-error", "encryption-handshake-failed", "encryption-without-handshake", "auth-timeout",
            "auth-in-progress-timeout", "heartbeat-timeout", "shutdown", "invalid-redis-connection", "upgrade-failed",
        ]

        @Test("Every condition of the seed table has a test here")
        func everyConditionHasATest() throws {
            let conditions = try SeedCondition.all()
            #expect(conditions.count == 13)
            #expect(Set(conditions.map(\.id)) == Self.tested)
        }

        @Test("\"Invalid message format\": non-JSON gets an error event; the connection stays open")
        func invalidMessageFormat() throws {
            let message = try SeedCondition.named("invalid-message-format").message
            try withFixture { server in
                let client = try server.client()
                for text in ["not json", #"{"event":"#, "{event:'x'}", ""] {
                    try client.sendText(text)
                    try client.expectError(message)
                }
                try client.sendBinary(Array("{oops".utf8))
                try client.expectError(message)
                _ = try client.authenticate(token: "user:a")
                try client.sendText("]")
                try client.expectError(message)
                try client.expectEcho(object([("still", "open")]))
            }
        }

        @Test("\"Already authenticated\": authenticate after connected")
        func alreadyAuthenticated() throws {
            let message = try SeedCondition.named("already-authenticated").message
            try withFixture { server in
                let (client, _) = try server.authenticatedClient(token: "user:a")
                try client.sendAuthenticate(token: "user:b")
                try client.expectError(message)
                try client.expectEcho(object([("still", "authenticated")]))
            }
        }

        @Test("\"Already authenticated\": authenticate while authenticating")
        func alreadyAuthenticatedWhileAuthenticating() throws {
            let message = try SeedCondition.named("already-authenticated").message
            try withFixture { server in
                let client = try server.client()
                try client.sendAuthenticate(token: "slow:400:user:a")
                try client.sendAuthenticate(token: "user:b")
                try client.expectError(message)
                let info = try client.expectConnected()
                #expect(info.userID == "a")
            }
        }

        @Test("\"Not authenticated\": other events before authenticate and while authenticating")
        func notAuthenticated() throws {
            let message = try SeedCondition.named("not-authenticated").message
            try withFixture { server in
                let client = try server.client()
                for text in [#"{"event":"join","data":{"rooms":["public-a"]}}"#, #"{"event":"leave","data":{"rooms":["public-a"]}}"#,
                             #"{"event":"echo","data":1}"#, #"{"event":"to-room","data":{"room":"ws-default","data":1}}"#,
                             #"{"event":"anything"}"#] {
                    try client.sendText(text)
                    try client.expectError(message)
                }
                try client.sendAuthenticate(token: "slow:400:user:a")
                try client.sendText(#"{"event":"echo","data":2}"#)
                try client.expectError(message)
                _ = try client.expectConnected()
                try client.expectEcho(3)
            }
        }

        @Test("\"Authentication failed\": authenticateFn returned null/false -> error event, close 4003",
              arguments: ["reject", "false"])
        func authenticationFailed(token: String) throws {
            let seed = try SeedCondition.named("authentication-failed")
            try withFixture { server in
                let client = try server.client()
                try client.sendAuthenticate(token: token)
                try client.expectError(seed.message)
                try client.expectClose(code: UInt16(try seed.requiredCode()), reason: "Authentication failed")
            }
        }

        @Test("\"Authentication error\": authenticateFn threw -> error event, close 4003 \"Authentication failed\"")
        func authenticationError() throws {
            let seed = try SeedCondition.named("authentication-error")
            try withFixture { server in
                let client = try server.client()
                try client.sendAuthenticate(token: "throw")
                try client.expectError(seed.message)
                try client.expectClose(code: UInt16(try seed.requiredCode()), reason: "Authentication failed")
            }
        }

        @Test("\"Encryption handshake failed\": handshakeFn returned null -> error event, close 4004")
        func encryptionHandshakeFailed() throws {
            let seed = try SeedCondition.named("encryption-handshake-failed")
            let code = UInt16(try seed.requiredCode())
            let notOnCurve = Base64.encode([0x04] + [UInt8](repeating: 0, count: 64))
            let tooShort = Base64.encode([UInt8](repeating: 0x04, count: 64))
            let cases: [(String, JSONValue?)] = [
                ("not base64", "not base64 !!"), ("64 bytes", .string(tooShort)),
                ("point not on the curve", .string(notOnCurve)), ("not a string", 5), ("missing", nil),
            ]
            try withFixture(["--require-encryption"]) { server in
                for (name, key) in cases {
                    let client = try server.client()
                    try client.sendAuthenticate(token: "user:a", extra: key.map { [("publicKey", $0)] } ?? [])
                    let message = try client.receiveJSON()
                    #expect(message.event == "error" && message.data == object([("message", .string(seed.message))]),
                            "publicKey \(name): got \(message)")
                    try client.expectClose(code: code, reason: "Encryption required")
                }
            }
        }

        @Test("Close 4004 without an error event: requireEncryption but no handshakeFn")
        func encryptionRequiredWithoutHandshake() throws {
            let code = UInt16(try SeedCondition.named("encryption-without-handshake").requiredCode())
            try withFixture(["--require-encryption", "--no-handshake"]) { server in
                let client = try server.client()
                let key = try P256KeyPair.generate()
                try client.sendAuthenticate(token: "user:a", extra: [("publicKey", .string(key.publicKeyBase64))])
                try client.expectClose(code: code, reason: "Encryption required")
            }
        }

        @Test("Close 4001: no authenticate within authTimeout (heartbeats do not count)")
        func initialAuthTimeout() throws {
            let code = UInt16(try SeedCondition.named("auth-timeout").requiredCode())
            try withFixture(["--auth-timeout-ms", "300"]) { server in
                let start = ContinuousClock.now
                let silent = try server.client()
                let chatty = try server.client()
                try chatty.send("heartbeat")
                try chatty.sendText(#"{"event":"join"}"#)
                try chatty.expectError("Not authenticated")
                try silent.expectClose(code: code, reason: "Authentication timeout", timeout: 3)
                let elapsed = ContinuousClock.now - start
                #expect(elapsed >= .milliseconds(290), "closed after \(elapsed), before authTimeout 300 ms")
                try chatty.expectClose(code: code, reason: "Authentication timeout", timeout: 3)
            }
        }

        @Test("Close 4001: authenticateFn still running after authTimeout * 3")
        func authInProgressTimeout() throws {
            let code = UInt16(try SeedCondition.named("auth-in-progress-timeout").requiredCode())
            try withFixture(["--auth-timeout-ms", "300"]) { server in
                let client = try server.client()
                let start = ContinuousClock.now
                try client.sendAuthenticate(token: "slow:2000:user:a")
                try client.expectClose(code: code, reason: "Authentication timeout", timeout: 3)
                let elapsed = ContinuousClock.now - start
                #expect(elapsed >= .milliseconds(850), "closed after \(elapsed); the in-progress timer is 900 ms")
                #expect(elapsed < .milliseconds(1900), "closed after \(elapsed); expected about 900 ms")
            }
        }

        @Test("Close 4001: handshakeFn still running after authTimeout * 3")
        func handshakeInProgressTimeout() throws {
            let code = UInt16(try SeedCondition.named("auth-in-progress-timeout").requiredCode())
            try withFixture(["--auth-timeout-ms", "300", "--require-encryption"]) { server in
                let client = try server.client()
                let start = ContinuousClock.now
                try client.sendAuthenticate(token: "user:a", extra: [("publicKey", "slow:2000")])
                try client.expectClose(code: code, reason: "Authentication timeout", timeout: 3)
                let elapsed = ContinuousClock.now - start
                #expect(elapsed >= .milliseconds(850), "closed after \(elapsed); the in-progress timer is 900 ms")
                #expect(elapsed < .milliseconds(1900), "closed after \(elapsed); expected about 900 ms")
            }
        }

        @Test("Close 4002: an authenticated client silent for heartbeatTimeout; heartbeats keep another alive")
        func heartbeatTimeout() throws {
            let code = UInt16(try SeedCondition.named("heartbeat-timeout").requiredCode())
            try withFixture(["--heartbeat-interval-ms", "100", "--heartbeat-timeout-ms", "300"]) { server in
                let (silent, info) = try server.authenticatedClient(token: "user:s")
                let connectedAt = ContinuousClock.now
                let (beating, _) = try server.authenticatedClient(token: "user:b")
                var heartbeats = 0
                var frame: Frame?
                while frame == nil {
                    frame = try silent.receiveIfAny(timeout: 0.1)
                    try beating.send("heartbeat")
                    heartbeats += 1
                    guard ContinuousClock.now - connectedAt < .seconds(3) else { break }
                }
                let elapsed = ContinuousClock.now - connectedAt
                #expect(frame == .close(code: code, reason: "Heartbeat timeout"))
                #expect(elapsed >= .milliseconds(250), "closed \(elapsed) after connected; heartbeatTimeout is 300 ms")
                try server.waitForLine(prefix: "DISCONNECTED \(info.id) s")
                #expect(heartbeats >= 3)
                try beating.expectEcho("alive")
            }
        }

        @Test("Close 4002 counts from connected, not from the authenticate message (slow login)")
        func heartbeatTimeoutAfterSlowLogin() throws {
            let code = UInt16(try SeedCondition.named("heartbeat-timeout").requiredCode())
            try withFixture(["--heartbeat-interval-ms", "100", "--heartbeat-timeout-ms", "300"]) { server in
                let client = try server.client()
                try client.sendAuthenticate(token: "slow:700:user:a")
                _ = try client.expectConnected()
                let connectedAt = ContinuousClock.now
                try client.expectClose(code: code, reason: "Heartbeat timeout", timeout: 3)
                let elapsed = ContinuousClock.now - connectedAt
                #expect(elapsed >= .milliseconds(250), "closed \(elapsed) after connected; heartbeatTimeout is 300 ms")
            }
        }

        @Test("Close 1001 on SIGTERM/SIGINT: every client closed, callbacks run, exit code 0",
              arguments: [SIGTERM, SIGINT])
        func shutdown(signal: Int32) throws {
            let code = UInt16(try SeedCondition.named("shutdown").requiredCode())
            try withFixture { server in
                let (user, userInfo) = try server.authenticatedClient(token: "user:a")
                let (anonymous, anonymousInfo) = try server.authenticatedClient(token: "anon")
                let unauthenticated = try server.client()
                try unauthenticated.sendText(#"{"event":"join"}"#)
                try unauthenticated.expectError("Not authenticated")
                #expect(try server.waitForLine(prefix: "CONNECTED \(userInfo.id)") == "CONNECTED \(userInfo.id) a")
                #expect(try server.waitForLine(prefix: "CONNECTED \(anonymousInfo.id)") == "CONNECTED \(anonymousInfo.id) -")

                server.send(signal: signal)
                for (name, client) in [("user:a", user), ("anon", anonymous), ("unauthenticated", unauthenticated)] {
                    do {
                        try client.expectClose(code: code, reason: "Server shutting down", timeout: 3)
                    } catch {
                        throw E2EError("\(name) client after signal \(signal): \(error); stdout: \(server.stdoutLines);"
                            + " stderr: \(server.stderrText.debugDescription)")
                    }
                }
                let status = server.waitForExit(timeout: 5)
                #expect(status == 0, "exit status; stderr: \(server.stderrText)")
                let lines = server.stdoutLines
                #expect(lines.contains("DISCONNECTED \(userInfo.id) a"), "stdout: \(lines)")
                #expect(lines.contains("DISCONNECTED \(anonymousInfo.id) -"), "stdout: \(lines)")
            }
        }

        @Test("\"Invalid redis connection!\": --redis \"\" is a start-up error, exit 1")
        func invalidRedisConnection() throws {
            let message = try SeedCondition.named("invalid-redis-connection").message
            let result = try Fixture.runToExit(["--redis", ""])
            #expect(result.status == 1)
            #expect(result.stderr.contains(message), "stderr: \(result.stderr.debugDescription)")
            #expect(!result.stdout.contains { $0.hasPrefix("LISTENING") }, "stdout: \(result.stdout)")
        }

        @Test("\"Invalid authenticateFn to setup WebSocket server!\": no authenticateFn, exit 1")
        func invalidAuthenticateFn() throws {
            let result = try Fixture.runToExit(["--no-authenticate"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("Invalid authenticateFn to setup WebSocket server!"),
                    "stderr: \(result.stderr.debugDescription)")
            #expect(!result.stdout.contains { $0.hasPrefix("LISTENING") }, "stdout: \(result.stdout)")
        }

        @Test("\"WebSocket upgrade failed\": a bad upgrade request gets HTTP 500 with exactly that body")
        func upgradeFailed() throws {
            let seed = try SeedCondition.named("upgrade-failed")
            let status = try seed.requiredCode()
            let key = randomWebSocketKey()
            let requests: [(String, String)] = [
                ("Sec-WebSocket-Key not 16 bytes",
                 "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n"),
                ("Sec-WebSocket-Key not base64",
                 "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\nSec-WebSocket-Version: 13\r\n\r\n"),
                ("no Sec-WebSocket-Key",
                 "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"),
                ("POST",
                 "POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"),
                ("no Connection: Upgrade",
                 "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n"),
            ]
            try withFixture { server in
                for (name, request) in requests {
                    let reply = try rawHTTP(port: server.port, request: request)
                    #expect(reply.status == status, "\(name): \(reply)")
                    #expect(reply.body == seed.message, "\(name): \(reply)")
                }
                let (client, _) = try server.authenticatedClient()
                try client.expectEcho("served")
            }
        }

        @Test("426 Upgrade Required for a missing or unsupported Sec-WebSocket-Version")
        func upgradeRequired() throws {
            let key = randomWebSocketKey()
            let requests: [(String, String)] = [
                ("no version", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\n\r\n"),
                ("version 8", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 8\r\n\r\n"),
            ]
            try withFixture { server in
                for (name, request) in requests {
                    let reply = try rawHTTP(port: server.port, request: request)
                    #expect(reply.status == 426, "\(name): \(reply)")
                    #expect(reply.headers["sec-websocket-version"] == "13", "\(name): \(reply)")
                }
            }
        }

        @Test("404 for another path and for plain HTTP")
        func notFound() throws {
            let key = randomWebSocketKey()
            try withFixture { server in
                let requests: [(String, String)] = [
                    ("upgrade on /other", upgradeRequest(port: server.port, path: "/other", key: key)),
                    ("upgrade on /ws/extra", upgradeRequest(port: server.port, path: "/ws/extra", key: key)),
                    ("plain GET /", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                    ("plain GET /ws", "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"),
                ]
                for (name, request) in requests {
                    let reply = try rawHTTP(port: server.port, request: request)
                    #expect(reply.status == 404, "\(name): \(reply)")
                }
                #expect(throws: E2EError.self) { try WSClient(port: server.port, path: "/other") }
            }
        }
    }
}
