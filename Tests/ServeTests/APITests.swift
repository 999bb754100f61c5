import Foundation
import Switchboard
import TestSupport
import Testing
@testable import SwitchboardServe

/// A ServeApp on free ports with the server API on, and a client of that API that checks every
/// answer against docs/api.yaml. Clients are in the room `news` from login (a default room):
/// a join is applied through the app's relay, which needs a thread of the concurrency pool,
/// and these tests block pool threads as they wait for frames, as ServeAppTests do in parallel.
final class APIApp: @unchecked Sendable {
    static let key = "test-api-key-0123456789abcdef"
    static let newsRoom = "rooms:\n  default: [news]\n"
    let running: RunningApp
    let apiPort: Int
    let document: APIDocument

    /// `yaml` continues the `api` section. `onInternalListener`: `api.listen: internal`, the
    /// API on the internal listener (a free port) rather than on a port of its own.
    init(_ yaml: String = "", environment: [String: String] = [:], onInternalListener: Bool = false,
         rooms: String = newsRoom, document: APIDocument) throws {
        var environment = environment
        environment["SWITCHBOARD_API_KEY"] = Self.key
        let section = onInternalListener ? "internal:\n  port: 0\napi:\n  listen: internal\n" : "api:\n  port: 0\n"
        running = try RunningApp(rooms + section + yaml, environment: environment)
        guard let port = running.app.apiPort else { throw TestFailure("the API did not start") }
        apiPort = port
        self.document = document
    }

    /// One request; the answer is checked against docs/api.yaml (`template` is the documented path).
    /// `documented: false` for answers the document cannot list (a method an endpoint lacks).
    @discardableResult
    func call(_ method: String, _ path: String, template: String? = nil, body: String? = nil,
              key: String? = APIApp.key, headers: [String] = [], documented: Bool = true,
              sourceLocation: SourceLocation = #_sourceLocation) throws -> (status: Int, json: JSONValue, reply: HTTPReply) {
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let key { request += "Authorization: Bearer \(key)\r\n" }
        for header in headers { request += header + "\r\n" }
        if let body { request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        request += "\r\n" + (body ?? "")
        let reply = try rawHTTP(port: UInt16(apiPort), request: request, timeout: 5)
        #expect(reply.headers["content-type"] == "application/json", sourceLocation: sourceLocation)
        if documented {
            let problems = document.problems(method, template ?? path, status: reply.status, body: reply.body)
            #expect(problems.isEmpty, "\(problems)", sourceLocation: sourceLocation)
        }
        return (reply.status, try JSONValue.parse(reply.body), reply)
    }

    /// A client that has received `connected`, and its id.
    func login(_ token: String) throws -> (WSClient, String) {
        let (client, connected) = try running.login(token)
        guard let id = connected?["id"]?.stringValue else { throw TestFailure("connected without an id") }
        return (client, id)
    }

    func stop() async { await running.stop() }
}

@Suite(.serialized) struct APITests {
    static let redisServer = ServeAppTests.redisServer

    /// The error's `code` and `field`.
    static func error(_ json: JSONValue) -> (String?, String?) {
        (json["error"]?["code"]?.stringValue, json["error"]?["field"]?.stringValue)
    }

    /// The seam another HTTP front (an internal listener) would mount: `handle` alone, no socket.
    @Test func theRouterAnswersARequestValue() async throws {
        let server = try Server(options: ServerOptions(), hooks: Hooks(authenticate: { _ in nil }))
        let router = APIRouter(server: server, key: Array(APIApp.key.utf8), maxBody: 64)
        let auth = [("Authorization", "Bearer \(APIApp.key)")]
        #expect(APIRouter.owns("/api/v1/stats") && !APIRouter.owns("/api/v10") && !APIRouter.owns("/metrics"))
        let early = await router.handle(APIRequest(method: "GET", path: "/api/v1/stats", headers: auth))
        #expect(early.status == 503 && early.body["error"]?["code"] == "unavailable")  // not started yet
        #expect(await router.handle(APIRequest(method: "GET", path: "/api/v1/stats")).status == 401)
        #expect(await router.handle(APIRequest(method: "GET", path: "/api/v1/nothing", headers: auth)).status == 404)
        let large = APIRequest(method: "POST", path: "/api/v1/publish", headers: auth, body: Array(repeating: 0x20, count: 65))
        #expect(await router.handle(large).status == 413)
        let badPath = await router.handle(APIRequest(method: "GET", path: "/api/v1/rooms/%zz/members", headers: auth))
        #expect(badPath.status == 400 && badPath.body["error"]?["code"] == "invalid_path")
    }

    @Test func theAPIIsOffWithoutAKey() async throws {
        let running = try RunningApp("api:\n  port: 0\n")
        #expect(running.app.apiPort == nil)
        await running.stop()
    }

    @Test func aShortKeyIsRefusedAtItsKey() throws {
        let config = try ConfigLoader.load(path: nil, environment: ["SWITCHBOARD_API_KEY": "short"])
        #expect(throws: ConfigErrors.self) { _ = try ServeApp(config: config, logger: Logger(level: .error)) }
        #expect(throws: ConfigErrors.self) { _ = try ConfigCheck.load(path: nil, environment: ["SWITCHBOARD_API_KEY": "short"]) }
    }

    @Test func publishAndPresenceAnswerAsDocumented() async throws {
        let document = try APIDocument()
        let api = try APIApp(document: document)
        defer { Task { await api.stop() } }
        let (alice, aliceID) = try api.login("alice-token")

        let stats = try api.call("GET", "/api/v1/stats")
        #expect(stats.status == 200)
        #expect(stats.json["clients"]?["authenticated"] == 1)
        #expect(try api.call("GET", "/api/v1/users/alice/clients", template: "/api/v1/users/{userId}/clients").json["clients"]
                == [.string(aliceID)])
        #expect(try api.call("GET", "/api/v1/rooms/news/members", template: "/api/v1/rooms/{room}/members").json["members"]
                == [.string(aliceID)])
        // Path segments are percent-decoded: `a%2Fb` is the one room `a/b`.
        #expect(try api.call("GET", "/api/v1/rooms/a%2Fb/members", template: "/api/v1/rooms/{room}/members").json["room"] == "a/b")
        let info = try api.call("GET", "/api/v1/clients/\(aliceID)", template: "/api/v1/clients/{clientId}")
        #expect(info.json["userId"] == "alice")
        #expect(info.json["rooms"]?.arrayValue?.contains("news") == true)
        let unknown = try api.call("GET", "/api/v1/clients/nobody", template: "/api/v1/clients/{clientId}")
        #expect(unknown.status == 404 && Self.error(unknown.json) == ("not_found", "clientId"))

        // Every kind of publish reaches alice once, in order (the in-process bus does not echo
        // a publish back); exclude keeps a broadcast from her; without `data` there is none.
        let published = try api.call("POST", "/api/v1/publish",
                                     body: #"{"type":"room","target":"news","event":"headline","data":{"text":"hello"}}"#)
        #expect(published.status == 200 && published.json["ok"] == true)
        try api.call("POST", "/api/v1/publish", body: #"{"type":"user","target":"alice","event":"notice","data":1}"#)
        try api.call("POST", "/api/v1/publish", body: #"{"type":"client","target":"\#(aliceID)","event":"direct","data":null}"#)
        try api.call("POST", "/api/v1/publish", body: #"{"type":"broadcast","event":"all","data":"x","exclude":["\#(aliceID)"]}"#)
        try api.call("POST", "/api/v1/publish", body: #"{"type":"broadcast","event":"after"}"#)
        var received: [String] = []
        for _ in 0..<4 { received.append(try alice.nextMessage()?.raw ?? "closed") }
        #expect(received == [#"{"event":"headline","data":{"text":"hello"}}"#, #"{"event":"notice","data":1}"#,
                             #"{"event":"direct","data":null}"#, #"{"event":"after"}"#])
        // Nothing more: a probe published now is the next message.
        try api.call("POST", "/api/v1/publish", body: #"{"type":"client","target":"\#(aliceID)","event":"probe"}"#)
        #expect(try alice.nextMessage()?.event == "probe")

        let exercised = ["POST /api/v1/publish", "GET /api/v1/stats", "GET /api/v1/users/{userId}/clients",
                         "GET /api/v1/rooms/{room}/members", "GET /api/v1/clients/{clientId}"]
        for operation in exercised {
            #expect(document.wasAnswered(operation, status: 200), "\(operation) was not exercised")
        }
        // A new documented operation needs a test here (disconnect has its own below, history
        // in HistoryServeTests).
        #expect(Set(document.operations) == Set(exercised + ["POST /api/v1/disconnect", "GET /api/v1/rooms/{room}/history"]))
        alice.close()
    }

    @Test func badRequestsNameTheirField() async throws {
        let document = try APIDocument()
        let api = try APIApp("  max_body: 1KiB\n", document: document)
        defer { Task { await api.stop() } }
        func refused(_ body: String, _ code: String, _ field: String?, path: String = "/api/v1/publish",
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
            let answer = try api.call("POST", path, body: body, sourceLocation: sourceLocation)
            #expect(answer.status == 400, sourceLocation: sourceLocation)
            #expect(Self.error(answer.json) == (code, field), "\(answer.json.serialized())", sourceLocation: sourceLocation)
        }
        try refused("{", "invalid_json", nil)
        try refused("[1]", "invalid_json", nil)
        try refused(#"{"type":"room","target":"news"}"#, "missing_field", "event")
        try refused(#"{"type":"room","event":"e"}"#, "missing_field", "target")
        try refused(#"{"type":"moon","target":"x","event":"e"}"#, "invalid_field", "type")
        try refused(#"{"type":"room","target":"ws:x","event":"e"}"#, "invalid_field", "target")
        try refused(#"{"type":"room","target":"news","event":"connected"}"#, "invalid_field", "event")
        try refused(#"{"type":"user","target":"alice","event":"e","exclude":["c"]}"#, "invalid_field", "exclude")
        try refused(#"{"type":"room","target":"news","event":"e","exclude":[1]}"#, "invalid_field", "exclude")
        try refused(#"{"type":"broadcast","target":"x","event":"e"}"#, "invalid_field", "target")
        try refused(#"{"type":"room","targte":"news","event":"e"}"#, "invalid_field", "targte")
        try refused(#"{"type":"room","target":"news","event":7}"#, "invalid_field", "event")
        try refused(#"{"type":"room","target":"news"}"#, "invalid_field", "type", path: "/api/v1/disconnect")
        try refused(#"{"type":"user","target":"alice","code":1000}"#, "invalid_field", "code", path: "/api/v1/disconnect")
        try refused(#"{"type":"user","target":"alice","code":4003}"#, "invalid_field", "code", path: "/api/v1/disconnect")
        try refused(#"{"type":"user","code":4010}"#, "missing_field", "target", path: "/api/v1/disconnect")

        // The key: missing, wrong, or another scheme; 401 whatever the path, before anything else.
        for key in [nil, "wrong-key-wrong-key-wrong", APIApp.key + "x"] as [String?] {
            let answer = try api.call("POST", "/api/v1/publish", body: "{}", key: key)
            #expect(answer.status == 401 && Self.error(answer.json).0 == "unauthorized")
            #expect(answer.reply.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        }
        let basic = try api.call("GET", "/api/v1/stats", key: nil, headers: ["Authorization: Basic \(APIApp.key)"])
        #expect(basic.status == 401)

        let wrongMethod = try api.call("GET", "/api/v1/publish", documented: false)
        #expect(wrongMethod.status == 405 && wrongMethod.reply.headers["allow"] == "POST")
        #expect(Self.error(wrongMethod.json).0 == "method_not_allowed")
        #expect(try api.call("POST", "/api/v1/stats", body: "{}", documented: false).reply.headers["allow"] == "GET")
        let tooLarge = try api.call("POST", "/api/v1/publish", body: "{\"data\":\"" + String(repeating: "x", count: 2000) + "\"}")
        #expect(tooLarge.status == 413 && Self.error(tooLarge.json).0 == "payload_too_large")
        let text = try api.call("POST", "/api/v1/publish", body: "{}", headers: ["Content-Type: text/plain"])
        #expect(text.status == 415)
        // Unknown paths are not in the document: checked by hand.
        let reply = try rawHTTP(port: UInt16(api.apiPort), request: "GET /api/v1/nothing HTTP/1.1\r\nAuthorization: Bearer \(APIApp.key)\r\nConnection: close\r\n\r\n")
        #expect(reply.status == 404 && reply.body.contains("\"not_found\""))
        #expect(document.wasAnswered("POST /api/v1/publish", status: 400))
        #expect(document.wasAnswered("POST /api/v1/disconnect", status: 400))
    }

    /// Disconnect closes with the chosen spec code, observed by real WebSocket clients.
    @Test func disconnectClosesWithTheChosenCode() async throws {
        let document = try APIDocument()
        let api = try APIApp(document: document)
        defer { Task { await api.stop() } }
        let (alice, aliceID) = try api.login("alice-token")
        let (bob1, bob1ID) = try api.login("bob-token")
        let (bob2, bob2ID) = try api.login("bob-token")

        let bobs = try api.call("POST", "/api/v1/disconnect", body: #"{"type":"user","target":"bob","code":4011}"#)
        #expect(bobs.status == 200)
        #expect(bobs.json["disconnected"] == .array([bob1ID, bob2ID].sorted().map(JSONValue.string)))
        #expect(bobs.json["code"] == 4011 && bobs.json["reason"] == "Reconnect requested by the server")
        try bob1.expectClose(code: 4011, reason: "Reconnect requested by the server", timeout: 5)
        try bob2.expectClose(code: 4011, reason: "Reconnect requested by the server", timeout: 5)

        let one = try api.call("POST", "/api/v1/disconnect", body: #"{"type":"client","target":"\#(aliceID)"}"#)
        #expect(one.json["disconnected"] == [.string(aliceID)] && one.json["code"] == 4010)
        try alice.expectClose(code: 4010, reason: "Disconnected by the server", timeout: 5)

        let nobody = try api.call("POST", "/api/v1/disconnect", body: #"{"type":"user","target":"bob"}"#)
        #expect(nobody.json["disconnected"] == [])
        #expect(try api.call("GET", "/api/v1/users/bob/clients", template: "/api/v1/users/{userId}/clients").json["clients"] == [])
        #expect(document.wasAnswered("POST /api/v1/disconnect", status: 200))
    }

    /// What the listener refuses before the router sees it: each a JSON error, then a close.
    @Test func malformedHTTPGetsAJSONErrorAndAClose() async throws {
        let api = try APIApp(document: try APIDocument())
        defer { Task { await api.stop() } }
        let port = UInt16(api.apiPort)
        let auth = "Authorization: Bearer \(APIApp.key)\r\n"
        let cases: [(String, Int, String)] = [
            ("GARBAGE\r\n\r\n", 400, "bad_request"),
            ("GET /api/v1/stats HTTP/1.1\r\nno colon here\r\n\r\n", 400, "bad_request"),
            ("POST /api/v1/publish HTTP/1.1\r\n\(auth)Content-Length: 5\r\nContent-Length: 6\r\n\r\n{}", 400, "bad_request"),
            ("POST /api/v1/publish HTTP/1.1\r\n\(auth)Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411, "length_required"),
            ("GET /api/v1/stats HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 20_000) + "\r\n\r\n", 431, "header_too_large"),
            // Too large and without the key: 401, so the size limit tells a stranger nothing.
            ("POST /api/v1/publish HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 401, "unauthorized"),
        ]
        for (request, status, code) in cases {
            let reply = try rawHTTP(port: port, request: request, timeout: 5)
            #expect(reply.status == status, "\(request.prefix(60))")
            #expect(Self.error(try JSONValue.parse(reply.body)).0 == code)
            #expect(reply.headers["connection"] == "close")
        }
    }

    /// Two requests on one connection (HTTP/1.1 keep-alive), then the server closes on `close`.
    @Test func oneConnectionServesSeveralRequests() async throws {
        let document = try APIDocument()
        let api = try APIApp(document: document)
        defer { Task { await api.stop() } }
        let connection = try TCPConnection(port: UInt16(api.apiPort))
        let request = "GET /api/v1/stats HTTP/1.1\r\nAuthorization: Bearer \(APIApp.key)\r\n\r\n"
        var received: [UInt8] = []
        for _ in 0..<2 {
            try connection.write(Array(request.utf8))
            received.removeAll()
            let end = deadline(after: 5)
            while !String(decoding: received, as: UTF8.self).contains("\"scope\":\"instance\"") {
                #expect(try connection.read(into: &received, deadline: end, what: "a stats answer") > 0)
            }
            #expect(String(decoding: received, as: UTF8.self).hasPrefix("HTTP/1.1 200 OK\r\n"))
        }
        connection.close()
    }

    /// A publish made through one instance's API, on its own port or on the internal listener,
    /// reaches a client of another instance through a real redis-server (the bus envelope), for
    /// a room and for a user.
    @Test(.enabled(if: redisServer != nil, "redis-server is not installed"), arguments: [false, true])
    func aPublishReachesAClientOnAnotherInstance(onInternalListener: Bool) async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let environment = ["SWITCHBOARD_REDIS_URL": "redis://127.0.0.1:\(redis.port)"]
        let document = try APIDocument()
        let publisher = try APIApp(environment: environment, onInternalListener: onInternalListener, document: document)
        #expect((publisher.running.app.api == nil) == onInternalListener)  // no port of its own on the internal listener
        defer { Task { await publisher.stop() } }
        let other = try RunningApp(APIApp.newsRoom, environment: environment)
        defer { Task { await other.stop() } }
        let (alice, _) = try other.login("alice-token")

        let answer = try publisher.call("POST", "/api/v1/publish",
                                        body: #"{"type":"room","target":"news","event":"headline","data":{"n":1}}"#)
        #expect(answer.status == 200 && answer.json["serverId"]?.stringValue == publisher.running.app.server.serverID)
        #expect(try alice.receive(event: "headline") == ["n": 1])
        try publisher.call("POST", "/api/v1/publish", body: #"{"type":"user","target":"alice","event":"notice","data":"hi"}"#)
        #expect(try alice.receive(event: "notice") == "hi")
        // Presence is the instance's own: the publisher has no clients.
        #expect(try publisher.call("GET", "/api/v1/users/alice/clients", template: "/api/v1/users/{userId}/clients")
                .json["clients"] == [])
        alice.close()
    }

    /// `rooms.presence` with Redis: the members of a room with presence are those of every
    /// instance (the presence store), with their userId; other rooms stay the instance's own.
    @Test(.enabled(if: redisServer != nil, "redis-server is not installed"))
    func roomMembersWithPresenceCoverEveryInstance() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let environment = ["SWITCHBOARD_REDIS_URL": "redis://127.0.0.1:\(redis.port)"]
        let rooms = "rooms:\n  default: [news]\n  presence: [news]\n"
        let api = try APIApp(environment: environment, rooms: rooms, document: try APIDocument())
        defer { Task { await api.stop() } }
        let other = try RunningApp(rooms, environment: environment)
        defer { Task { await other.stop() } }
        let (alice, connected) = try other.login("alice-token")
        let aliceID = try #require(connected?["id"]?.stringValue)

        // The other instance writes to Redis on its own connection: ask until it landed.
        var answer: JSONValue = .null
        _ = pollUntil(timeout: 5) {
            answer = (try? api.call("GET", "/api/v1/rooms/news/members", template: "/api/v1/rooms/{room}/members").json) ?? .null
            return answer["members"] == [.string(aliceID)]
        }
        #expect(answer["members"] == [.string(aliceID)])
        #expect(answer["scope"] == "fleet")
        #expect(answer["presence"]?[0]?["clientId"] == .string(aliceID))
        #expect(answer["presence"]?[0]?["userId"] == "alice")
        // Alice's own-id room has no presence: this instance's members only (none here).
        let own = try api.call("GET", "/api/v1/rooms/\(aliceID)/members", template: "/api/v1/rooms/{room}/members").json
        #expect(own["members"] == [] && own["scope"] == "instance" && own["presence"] == nil)
        alice.close()
    }
}
