import Foundation
import Switchboard
import TestSupport
import Testing
@testable import SwitchboardServe

/// `api.listen: internal`: the server API on the internal listener, beside `/metrics` and the
/// probes, with real sockets: the same key, errors and limits as on its own port, and nothing
/// of it on the public port.
@Suite(.serialized) struct APIOnInternalListenerTests {
    /// The error's `code` and `field`.
    static func error(_ json: JSONValue) -> (String?, String?) { APITests.error(json) }

    /// The error `code` of a raw reply's JSON body.
    static func code(_ reply: HTTPReply) throws -> String? { error(try JSONValue.parse(reply.body)).0 }

    @Test func theAPIAnswersOnTheInternalPortAndNotOnThePublicOne() async throws {
        let document = try APIDocument()
        let api = try APIApp(onInternalListener: true, document: document)
        defer { Task { await api.stop() } }
        let app = api.running.app
        #expect(app.api == nil)  // no port of its own
        #expect(api.apiPort == app.internalPort && api.apiPort != api.running.port)
        let (alice, aliceID) = try api.login("alice-token")

        // A publish through the internal port reaches a real WebSocket client.
        let published = try api.call("POST", "/api/v1/publish",
                                     body: #"{"type":"room","target":"news","event":"headline","data":{"text":"hi"}}"#)
        #expect(published.status == 200 && published.json["ok"] == true)
        #expect(published.reply.headers["cache-control"] == "no-store")
        #expect(try alice.nextMessage()?.raw == #"{"event":"headline","data":{"text":"hi"}}"#)
        #expect(try api.call("GET", "/api/v1/users/alice/clients", template: "/api/v1/users/{userId}/clients")
                .json["clients"] == [.string(aliceID)])

        // The key: 401 without it or with another, as on the API's own port.
        for key in [nil, "wrong-key-wrong-key-wrong"] as [String?] {
            let refused = try api.call("POST", "/api/v1/publish", body: #"{"type":"broadcast","event":"x"}"#, key: key)
            #expect(refused.status == 401 && Self.error(refused.json).0 == "unauthorized")
            #expect(refused.reply.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        }

        // The public port knows nothing of the API, key or not.
        let auth = "Authorization: Bearer \(APIApp.key)\r\n"
        let onPublic = try rawHTTP(port: UInt16(api.running.port),
                                   request: "GET /api/v1/stats HTTP/1.1\r\nHost: a\r\n\(auth)Connection: close\r\n\r\n", timeout: 5)
        #expect(onPublic.status == 404 && onPublic.headers["content-type"] != "application/json")

        // The operator endpoints still share the port.
        let internalPort = try #require(app.internalPort)
        #expect(try http(port: internalPort, path: "/readyz").body == "ok\n")
        #expect(try http(port: internalPort, path: "/metrics").status == 200)

        // Disconnect through the internal port closes with the chosen code.
        let closed = try api.call("POST", "/api/v1/disconnect", body: #"{"type":"client","target":"\#(aliceID)","code":4011}"#)
        #expect(closed.json["disconnected"] == [.string(aliceID)])
        try alice.expectClose(code: 4011, reason: "Reconnect requested by the server", timeout: 5)
        #expect(document.wasAnswered("POST /api/v1/publish", status: 401))
    }

    /// The limits are the API's (`api.max_body`), not the internal listener's 1 MiB, and the
    /// refusals made from the head alone are the API's JSON ones.
    @Test func theLimitsAndErrorsAreTheAPIs() async throws {
        let document = try APIDocument()
        let small = try APIApp("  max_body: 1KiB\n", onInternalListener: true, document: document)
        defer { Task { await small.stop() } }
        let port = UInt16(small.apiPort)
        let auth = "Authorization: Bearer \(APIApp.key)\r\n"

        let tooLarge = try small.call("POST", "/api/v1/publish", body: "{\"data\":\"" + String(repeating: "x", count: 2000) + "\"}")
        #expect(tooLarge.status == 413 && Self.error(tooLarge.json).0 == "payload_too_large")
        // Unread, and 401 first without the key: the limit tells a stranger nothing.
        let stranger = try rawHTTP(port: port, request: "POST /api/v1/publish HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", timeout: 5)
        #expect(try stranger.status == 401 && Self.code(stranger) == "unauthorized")
        let unread = try rawHTTP(port: port, request: "POST /api/v1/publish HTTP/1.1\r\n\(auth)Content-Length: 99999999\r\n\r\n", timeout: 5)
        #expect(unread.status == 413 && unread.headers["content-type"] == "application/json")
        let chunked = try rawHTTP(port: port, request: "POST /api/v1/publish HTTP/1.1\r\n\(auth)Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                                  timeout: 5)
        #expect(try chunked.status == 411 && Self.code(chunked) == "length_required")

        // The rest is the router's, answered as on its own port.
        let field = try small.call("POST", "/api/v1/publish", body: #"{"type":"room","targte":"news","event":"e"}"#)
        #expect(field.status == 400 && Self.error(field.json) == ("invalid_field", "targte"))
        let wrongMethod = try small.call("GET", "/api/v1/publish", documented: false)
        #expect(wrongMethod.status == 405 && wrongMethod.reply.headers["allow"] == "POST")
        #expect(try small.call("POST", "/api/v1/publish", body: "{}", headers: ["Content-Type: text/plain"]).status == 415)
        let nothing = try rawHTTP(port: port, request: "GET /api/v1/nothing HTTP/1.1\r\n\(auth)\r\n", timeout: 5)
        #expect(try nothing.status == 404 && Self.code(nothing) == "not_found")
        #expect(document.wasAnswered("POST /api/v1/publish", status: 413))

        // A larger api.max_body than the listener's own limit is honoured for the API only.
        let large = try APIApp("  max_body: 2MiB\n", onInternalListener: true, document: document)
        defer { Task { await large.stop() } }
        let big = "{\"type\":\"room\",\"target\":\"empty\",\"event\":\"big\",\"data\":\"" + String(repeating: "x", count: 1_500_000) + "\"}"
        #expect(try large.call("POST", "/api/v1/publish", body: big).status == 200)
        let other = try rawHTTP(port: UInt16(large.apiPort), request: "POST /metrics HTTP/1.1\r\nContent-Length: 1500000\r\n\r\n", timeout: 5)
        #expect(other.status == 413)
    }

    // MARK: - Configuration

    @Test func internalNeedsTheInternalListenerAndNoPortOfItsOwn() throws {
        func errors(_ yaml: String, environment: [String: String] = [:]) -> [String] {
            do {
                _ = try ConfigLoader.load(bytes: Array(yaml.utf8), file: "test.yaml", baseDirectory: ".", environment: environment)
                Issue.record("loaded: \(yaml)")
                return []
            } catch {
                return error.errors.map(\.description)
            }
        }
        #expect(errors("api:\n  listen: internal\n") == [
            "test.yaml:2: api.listen: 'internal' needs the internal listener: set internal.port too",
        ])
        #expect(errors("internal:\n  port: 9090\napi:\n  listen: internal\n  host: 0.0.0.0\n  port: 8081\n") == [
            "test.yaml:5: api.host: is not used with api.listen: internal (the API is served on internal.host:internal.port); remove one of them",
            "test.yaml:6: api.port: is not used with api.listen: internal (the API is served on internal.host:internal.port); remove one of them",
        ])
        #expect(errors("api:\n  listen: both\n") == ["test.yaml:2: api.listen: expected one of own, internal, got 'both'"])

        // From the environment as well; `own` (the default) keeps its port.
        let config = try ConfigLoader.load(path: nil, environment: [
            "SWITCHBOARD_API_LISTEN": "internal", "SWITCHBOARD_INTERNAL_PORT": "9090",
        ])
        #expect(config.api.listen == .internalListener && config.internalListener.port == 9090)
        #expect(ServeConfig().api.listen == .ownPort)
        #expect(try ConfigLoader.load(path: nil, environment: ["SWITCHBOARD_API_PORT": "9000"]).api.port == 9000)

        // `switchboard config check` refuses it too, and prints the setting back when valid.
        let environment = ["SWITCHBOARD_API_LISTEN": "internal", "SWITCHBOARD_API_KEY": APIApp.key]
        #expect(throws: ConfigErrors.self) { _ = try ConfigCheck.load(path: nil, environment: environment) }
        let checked = try ConfigCheck.load(path: nil, environment: environment.merging(["SWITCHBOARD_INTERNAL_PORT": "9090"]) { $1 })
        #expect(ConfigRender.yaml(checked, mask: true, sources: true).contains("listen: internal"))
    }
}
