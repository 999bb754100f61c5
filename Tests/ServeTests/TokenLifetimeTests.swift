import Foundation
import Switchboard
import SwitchboardCrypto
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import SwitchboardServe

/// Issue 18 end to end on `switchboard serve` (a real ServeApp on a free port, real sockets):
/// a JWT's `exp` closes the client with 4005 at that instant, `refresh` moves it, and a JWKS
/// served over HTTP rotates without a restart.
@Suite(.serialized) struct TokenLifetimeTests {
    static let secret = "token-lifetime-tests-secret-of-32+bytes"
    static let config = "  jwt:\n    hs256_secret: \(secret)\n"

    static var nowMilliseconds: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// An HS256 token for `user` that expires at `exp` (Unix seconds).
    static func token(_ user: String, exp: Int64) -> String {
        JWTSigner.hs256(payload: ["sub": .string(user), "exp": .number(JSONNumber(exp))], secret: Array(secret.utf8))
    }

    /// The next Unix second at least `seconds` ahead: `exp` is whole seconds, and the test needs
    /// the instant to be at least that far away.
    static func expiry(inAtLeast seconds: Int64) -> Int64 { (nowMilliseconds + 999) / 1000 + seconds }

    /// The close frame's code and reason, or what came instead.
    static func close(of frame: Frame) -> String {
        if case .close(let code, let reason) = frame { "close \(code.map(String.init) ?? "-") \(reason)" } else { "\(frame)" }
    }

    // Each test's waiting runs on a thread of its own (`offThePool`): blocked in the cooperative
    // pool for seconds it would stall the hooks of the ServeApps other suites run meanwhile.

    @Test func aTokenClosesWith4005AtItsExp() async throws {
        let running = try RunningApp(Self.config)
        defer { Task { await running.stop() } }
        let exp = Self.expiry(inAtLeast: 2)
        let (user, close, closedAt) = try await offThePool {
            let (client, hello) = try running.login(Self.token("alice", exp: exp))
            // Awaits the close frame itself (no sleep): it must come at exp, not before, and soon after.
            let frame = try client.receive(timeout: 5)
            return (hello?["userId"]?.stringValue, Self.close(of: frame), Self.nowMilliseconds)
        }
        #expect(user == "alice")
        #expect(close == "close 4005 Token expired: reconnect with a new token")
        #expect(closedAt >= exp * 1000 - 5, "closed \(exp * 1000 - closedAt) ms before exp")
        #expect(closedAt < exp * 1000 + 1_000, "closed \(closedAt - exp * 1000) ms after exp")
    }

    @Test func aRefreshBeforeExpKeepsTheClientPastIt() async throws {
        let running = try RunningApp(Self.config)
        defer { Task { await running.stop() } }
        let exp = Self.expiry(inAtLeast: 2)
        let later = exp + 600
        let (refreshed, heard, after, refused) = try await offThePool {
            let (client, _) = try running.login(Self.token("alice", exp: exp))
            try client.send("refresh", ["token": .string(Self.token("alice", exp: later))])
            let refreshed = try client.receive(event: "refreshed")
            // Nothing may arrive until well past the old exp: no close frame, no message.
            let quiet = Double(exp * 1000 - Self.nowMilliseconds) / 1000 + 0.5
            let heard = try client.receiveIfAny(timeout: quiet).map { "\($0)" }
            let after = Self.nowMilliseconds
            // Still open, and answered: a refresh with a bad token is refused, the connection stays.
            try client.send("refresh", ["token": "not a token"])
            return (refreshed, heard, after, try client.receive(event: "error"))
        }
        #expect(refreshed == ["expiresAt": .number(JSONNumber(later * 1000))])
        #expect(heard == nil, "the client heard something before the old exp had passed")
        #expect(after > exp * 1000)
        #expect(refused == ["message": "Refresh rejected"])
        #expect(running.app.counters.refreshSucceeded == 1 && running.app.counters.refreshFailed == 1)
    }

    @Test func aRefreshForAnotherUserOrBeforeLoginIsRefused() async throws {
        let running = try RunningApp(Self.config)
        defer { Task { await running.stop() } }
        let (early, mismatch, bob) = try await offThePool {
            let early = try WSClient(port: running.port)
            try early.send("refresh", ["token": .string(Self.token("alice", exp: Self.expiry(inAtLeast: 60)))])
            let (client, _) = try running.login(Self.token("alice", exp: Self.expiry(inAtLeast: 60)))
            try client.send("refresh", ["token": .string(Self.token("mallory", exp: Self.expiry(inAtLeast: 600)))])
            // A tokens-file user has no expiry: its refresh answers `refreshed` without one.
            let (bob, _) = try running.login("bob-token")
            try bob.send("refresh", ["token": "bob-token"])
            return (try early.receive(event: "error"), try client.receive(event: "error"), try bob.receive(event: "refreshed"))
        }
        #expect(early == ["message": "Not authenticated"])
        #expect(mismatch == ["message": "Refresh rejected: token is for another user"])
        #expect(bob == .object(JSONObject([])))
    }
}

/// A real HTTP server for the JWKS: python3's http.server on a free port, serving a folder
/// the test rewrites to rotate keys.
final class JWKSServer: @unchecked Sendable {
    let port: Int
    let dir: TempDir
    private let process: Process

    init(initial: String) throws {
        dir = try TempDir()
        port = freePort()
        process = Process()
        try write(initial)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", dir.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Nothing announces that it listens: poll for the file it serves.
        guard pollUntil(timeout: 10, every: 0.05, { (try? self.fetch().status) == 200 }) else {
            stop()
            throw TestFailure("python3 -m http.server did not answer on port \(port)")
        }
    }

    var url: String { "http://127.0.0.1:\(port)/jwks.json" }

    /// Replaces the served set in one rename, so a fetch sees the old file or the new one.
    func write(_ text: String) throws {
        try dir.write("jwks.tmp", text)
        guard rename(dir.path + "/jwks.tmp", dir.path + "/jwks.json") == 0 else { throw TestFailure("rename failed") }
    }

    func fetch() throws -> HTTPReply {
        try rawHTTP(port: UInt16(port), request: "GET /jwks.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", timeout: 2)
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        dir.remove()
    }
}

@Suite(.serialized) struct JWKSRotationTests {
    /// Logs in with `token`: true on `connected`, false on the close that refuses it.
    static func logsIn(_ running: RunningApp, _ token: String) throws -> Bool {
        let client = try WSClient(port: running.port)
        defer { client.close() }
        try client.send("authenticate", ["token": .string(token)])
        while let message = try client.nextMessage() {
            if message.event == "connected" { return true }
        }
        return false  // closed: 4003 after "Authentication failed"
    }

    @Test func keysRotateWithoutARestart() async throws {
        let keys = try JWKSKeys.shared.get()
        let server = try JWKSServer(initial: JWKSKeys.set([JWKSKeys.jwk(keys.rsaA, kid: "a")]))
        defer { server.stop() }
        let running = try RunningApp("  jwt:\n    jwks: \(server.url)\n    jwks_refresh: 200ms\n")
        defer { Task { await running.stop() } }
        let tokenA = try JWKSKeys.token(JWKSKeys.claims("alice"), key: keys.rsaA, alg: "RS256", kid: "a")
        let tokenB = try JWKSKeys.token(JWKSKeys.claims("bob"), key: keys.rsaB, alg: "PS256", kid: "b")

        // The first fetch runs when the server starts; until it lands no JWT is accepted.
        #expect(try await offThePool { pollUntil(timeout: 10, every: 0.05) { (try? Self.logsIn(running, tokenA)) == true } },
                "key A never accepted")
        #expect(try await offThePool { try Self.logsIn(running, tokenB) } == false, "key B accepted before it was published")

        // That refused B loaded the set again for its unknown kid; for the next 10 s only the
        // periodic load (every 200 ms here) can bring a new key in.
        try server.write(JWKSKeys.set([JWKSKeys.jwk(keys.rsaB, kid: "b", alg: "PS256")]))
        #expect(try await offThePool { pollUntil(timeout: 10, every: 0.05) { (try? Self.logsIn(running, tokenB)) == true } },
                "key B never accepted")
        #expect(try await offThePool { try Self.logsIn(running, tokenA) } == false, "key A still accepted after it was rotated out")
        #expect(running.app.counters.authFailed["jwt_unknown_key", default: 0] >= 2)
    }

    /// A token with a kid the set lacks loads the set again at once (not only every
    /// jwks_refresh, here an hour): a key published since the last load works on first use.
    @Test func anUnknownKidLoadsTheSetAgain() async throws {
        let keys = try JWKSKeys.shared.get()
        let server = try JWKSServer(initial: JWKSKeys.set([JWKSKeys.jwk(keys.ed, kid: "ed")]))
        defer { server.stop() }
        let running = try RunningApp("  jwt:\n    jwks: \(server.url)\n    jwks_refresh: 1h\n")
        defer { Task { await running.stop() } }
        let old = try JWKSKeys.token(JWKSKeys.claims("alice"), key: keys.ed, alg: "EdDSA", kid: "ed")
        let new = try JWKSKeys.token(JWKSKeys.claims("bob"), key: keys.ec, alg: "ES256", kid: "ec")
        #expect(try await offThePool { pollUntil(timeout: 10, every: 0.05) { (try? Self.logsIn(running, old)) == true } },
                "the first load never landed")
        try server.write(JWKSKeys.set([JWKSKeys.jwk(keys.ed, kid: "ed"), JWKSKeys.jwk(keys.ec, kid: "ec")]))
        #expect(try await offThePool { try Self.logsIn(running, new) }, "a newly published kid was refused on first use")
    }
}
