import Foundation
import Switchboard
import TestSupport
import Testing
@testable import SwitchboardServe

/// History with `switchboard serve` (`rooms.history*`): two instances on one real
/// redis-server, messages sent on one, read back on the other by a member's `history` query
/// and by the server API's `GET /api/v1/rooms/{room}/history`; and one instance in memory.
@Suite(.serialized) struct HistoryServeTests {
    static let redisServer = ServeAppTests.redisServer
    static let template = "/api/v1/rooms/{room}/history"

    /// Joins a room with history: its answer is `joined`, whose data is returned.
    static func join(_ client: WSClient, _ room: String) throws -> JSONValue {
        try client.send("join", ["room": .string(room)])
        guard let joined = try client.receive(event: "joined") else { throw TestFailure("joined without data") }
        return joined
    }

    /// The next message whose event is `event`, whole (a room message's `room`, `offset` and
    /// `epoch` follow its `data`).
    static func whole(_ client: WSClient, _ event: String) throws -> JSONValue {
        while let message = try client.nextMessage() {
            if message.event == event { return try JSONValue.parse(message.raw) }
        }
        throw TestFailure("closed before a '\(event)' event")
    }

    /// Asks `history` with `query` (its `data`); the answer's data.
    static func ask(_ client: WSClient, _ query: JSONValue) throws -> JSONValue {
        try client.send("history", query)
        return try whole(client, "history")["data"] ?? .null
    }

    /// The offsets of an answer's messages.
    static func offsets(_ answer: JSONValue) -> [Int] {
        (answer["messages"]?.arrayValue ?? []).compactMap { if case .number(let number)? = $0["offset"] { number.int } else { nil } }
    }

    /// What the clients of the two-instance test saw, read off the concurrency pool (a join and
    /// a room send go through the app's relay, which needs a pool thread).
    struct Seen: Sendable {
        var joined: JSONValue = .null
        var bobJoined: JSONValue = .null
        var last: JSONValue = .null
        var answers: [String: JSONValue] = [:]
        var errors: [String: JSONValue] = [:]
    }

    @Test(.enabled(if: redisServer != nil, "redis-server is not installed"))
    func aMessageSentOnOneInstanceIsReadOnTheOther() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let environment = ["SWITCHBOARD_REDIS_URL": "redis://127.0.0.1:\(redis.port)"]
        let rooms = "rooms:\n  default: [news]\n  history: [\"chat:*\"]\n  history_size: 5\n"
        let document = try APIDocument()
        let b = try APIApp(environment: environment, rooms: rooms, document: document)
        defer { Task { await b.stop() } }
        let a = try RunningApp(rooms, environment: environment)
        defer { Task { await a.stop() } }

        let seen = try await offThePool { () -> Seen in
            var seen = Seen()
            let (alice, _) = try a.login("alice-token")
            let (bob, _) = try b.login("bob-token")
            defer { alice.close(); bob.close() }
            seen.joined = try Self.join(alice, "chat:1")
            seen.bobJoined = try Self.join(bob, "chat:1")
            let epoch = seen.joined["epoch"]?.stringValue ?? ""
            // Seven messages from alice on A; bob hears the last on B, so every one is recorded.
            for index in 1...7 {
                try alice.send("send", ["room": "chat:1", "event": "chat", "data": .number(JSONNumber(index))])
            }
            for _ in 1...7 { seen.last = try Self.whole(bob, "chat") }
            let since = { (offset: Int, epoch: String) -> JSONValue in ["offset": .number(JSONNumber(offset)), "epoch": .string(epoch)] }
            let queries: [(String, JSONValue)] = [
                ("all", ["room": "chat:1"]),
                ("limit 2", ["room": "chat:1", "limit": 2]),
                ("limit 500", ["room": "chat:1", "limit": 500]),
                ("limit 0", ["room": "chat:1", "limit": 0]),
                ("since 4 limit 2", ["room": "chat:1", "limit": 2, "since": since(4, epoch)]),
                ("since 7", ["room": "chat:1", "since": since(7, epoch)]),
                ("since 1", ["room": "chat:1", "since": since(1, epoch)]),
                ("since another epoch", ["room": "chat:1", "limit": 1, "since": since(4, "nope")]),
            ]
            for (name, query) in queries { seen.answers[name] = try Self.ask(bob, query) }
            for room in ["chat:2", "news"] {
                try bob.send("history", ["room": .string(room)])
                seen.errors[room] = try bob.receive(event: "error") ?? .null
            }
            return seen
        }
        let epoch = try #require(seen.joined["epoch"]?.stringValue)
        #expect(seen.joined["offset"] == 0)
        #expect(seen.bobJoined["epoch"] == .string(epoch))
        #expect(seen.last["offset"] == 7 && seen.last["epoch"] == .string(epoch) && seen.last["room"] == "chat:1")

        // The member's query on B: the last history_size (5) messages, oldest first, each as
        // the room delivered it.
        let all = try #require(seen.answers["all"])
        #expect(all["room"] == "chat:1" && all["epoch"] == .string(epoch) && all["offset"] == 7)
        #expect(Self.offsets(all) == [3, 4, 5, 6, 7])
        #expect(all["messages"]?[4] == seen.last)
        #expect(all["messages"]?[0]?["data"]?["data"] == 3 && all["messages"]?[0]?["data"]?["from"] == "alice")
        #expect(all["reason"] == nil)
        // limit, and limit past history_size (capped).
        #expect(Self.offsets(seen.answers["limit 2"] ?? .null) == [6, 7])
        #expect(Self.offsets(seen.answers["limit 500"] ?? .null) == [3, 4, 5, 6, 7])
        #expect(Self.offsets(seen.answers["limit 0"] ?? .null) == [] && seen.answers["limit 0"]?["offset"] == 7)
        // since: the first `limit` after it; one no longer kept, or of another epoch, says why.
        let paged = seen.answers["since 4 limit 2"] ?? .null
        #expect(Self.offsets(paged) == [5, 6] && paged["offset"] == 7 && paged["reason"] == nil)
        #expect(Self.offsets(seen.answers["since 7"] ?? .null) == [])
        let tooOld = seen.answers["since 1"] ?? .null
        #expect(tooOld["reason"] == "offset_too_old" && Self.offsets(tooOld) == [3, 4, 5, 6, 7])
        let otherEpoch = seen.answers["since another epoch"] ?? .null
        #expect(otherEpoch["reason"] == "epoch_changed" && Self.offsets(otherEpoch) == [7])
        // Who may ask: a member of a room with history.
        #expect(seen.errors["chat:2"] == ["message": "Not in room"])
        #expect(seen.errors["news"] == ["message": "History not enabled for room"])

        // The server API on B answers the same, for the fleet.
        let api = try b.call("GET", "/api/v1/rooms/chat%3A1/history", template: Self.template)
        #expect(api.status == 200 && api.json["scope"] == "fleet")
        #expect(api.json["messages"] == all["messages"] && api.json["epoch"] == .string(epoch) && api.json["offset"] == 7)
        let apiPaged = try b.call("GET", "/api/v1/rooms/chat%3A1/history?limit=2&since=4&epoch=\(epoch)", template: Self.template)
        #expect(Self.offsets(apiPaged.json) == [5, 6] && apiPaged.json["reason"] == nil)
        let apiOld = try b.call("GET", "/api/v1/rooms/chat%3A1/history?since=1&epoch=\(epoch)", template: Self.template)
        #expect(apiOld.json["reason"] == "offset_too_old")
        #expect(Self.offsets(try b.call("GET", "/api/v1/rooms/chat%3A1/history?limit=1", template: Self.template).json) == [7])
        // A room without history, and bad parameters.
        let none = try b.call("GET", "/api/v1/rooms/news/history", template: Self.template)
        #expect(none.status == 404 && APITests.error(none.json) == ("history_not_enabled", "room"))
        for (query, field) in [("limit=-1", "limit"), ("limit=many", "limit"), ("since=3", "since"), ("epoch=\(epoch)", "epoch"),
                               ("since=x&epoch=e", "since"), ("lmit=3", "lmit")] {
            let bad = try b.call("GET", "/api/v1/rooms/chat%3A1/history?\(query)", template: Self.template)
            #expect(bad.status == 400 && APITests.error(bad.json) == ("invalid_field", field), "\(query): \(bad.json)")
        }
        #expect(document.wasAnswered("GET \(Self.template)", status: 200))
    }

    /// A history store that cannot be read (its Redis killed after the join): the member's
    /// answer has the reason `unavailable` and nothing else, the server API says 503.
    @Test(.enabled(if: redisServer != nil, "redis-server is not installed"))
    func aStoreThatCannotBeReadIsSaid() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let rooms = "rooms:\n  default: [news]\n  history: [lobby]\n"
        let app = try APIApp(environment: ["SWITCHBOARD_REDIS_URL": "redis://127.0.0.1:\(redis.port)"], rooms: rooms,
                             document: try APIDocument())
        defer { Task { await app.stop() } }
        let (joined, answer) = try await offThePool { () -> (JSONValue, JSONValue) in
            let (alice, _) = try app.login("alice-token")
            defer { alice.close() }
            let joined = try Self.join(alice, "lobby")
            redis.kill9()
            return (joined, try Self.ask(alice, ["room": "lobby"]))
        }
        #expect(joined["epoch"] != nil)  // it could be read before
        #expect(answer == ["room": "lobby", "messages": [], "reason": "unavailable"])
        let api = try app.call("GET", "/api/v1/rooms/lobby/history", template: Self.template)
        #expect(api.status == 503 && APITests.error(api.json) == ("history_unavailable", nil))
    }

    /// The endpoint's query string: percent-decoded, `+` a space, the last of a repeated name;
    /// one that is not UTF-8 is refused before any endpoint runs.
    @Test func theQueryStringIsDecoded() throws {
        #expect(try APIRouter.parameters("limit=2&epoch=a%2Bb+c&since=1&since=3&flag")
            == ["limit": "2", "epoch": "a+b c", "since": "3", "flag": ""])
        #expect(try APIRouter.parameters("") == [:])
        #expect(throws: APIError(status: 400, code: "invalid_query", message: "the query string is not valid percent-encoded UTF-8")) {
            try APIRouter.parameters("epoch=%zz")
        }
    }

    /// Without Redis the history is the instance's own memory (`"scope": "instance"`).
    @Test func oneInstanceKeepsHistoryInMemory() async throws {
        let rooms = "rooms:\n  default: [news]\n  history: [lobby]\n"
        let app = try APIApp(rooms: rooms, document: try APIDocument())
        defer { Task { await app.stop() } }
        let (joined, note, answer, forged) = try await offThePool { () -> (JSONValue, JSONValue, JSONValue, JSONValue?) in
            let (alice, _) = try app.login("alice-token")
            defer { alice.close() }
            let joined = try Self.join(alice, "lobby")
            try alice.send("send", ["room": "lobby", "event": "note", "data": "hi"])
            let note = try Self.whole(alice, "note")
            let answer = try Self.ask(alice, ["room": "lobby"])
            // No client may send others a `history` (or `joined`) of its own making.
            try alice.send("send", ["room": "lobby", "event": "history", "data": ["room": "lobby", "messages": []]])
            return (joined, note, answer, try alice.receive(event: "error"))
        }
        #expect(note["offset"] == 1 && note["epoch"] == joined["epoch"])
        #expect(answer["messages"] == [note] && answer["offset"] == 1)
        #expect(forged?["message"]?.stringValue?.hasPrefix("Invalid message") == true)
        let api = try app.call("GET", "/api/v1/rooms/lobby/history", template: Self.template)
        #expect(api.json["messages"] == [note] && api.json["scope"] == "instance")
        let published = try app.call("POST", "/api/v1/publish", body: #"{"type":"room","target":"lobby","event":"joined"}"#)
        #expect(published.status == 400 && APITests.error(published.json) == ("invalid_field", "event"))
    }
}
