// Gateway-protocol helpers over WSClient (PROTOCOL.md 2-7).
import Foundation
import Switchboard
import TestSupport
import Testing

/// The `connected` event of a client.
struct ConnectedInfo {
    let id: String
    let userID: String?
    let data: JSONValue
}

/// A JSON object value from ordered members.
func object(_ members: [(String, JSONValue)]) -> JSONValue {
    var result = JSONObject()
    for (key, value) in members { result.append(key: key, value: value) }
    return .object(result)
}

extension WSClient {
    /// Sends `authenticate` with `{"type":"Bearer","token":token}` plus `extra` members.
    func sendAuthenticate(token: String, extra: [(String, JSONValue)] = []) throws {
        try send("authenticate", object([("type", "Bearer"), ("token", .string(token))] + extra))
    }

    /// Authenticates and requires `connected` as the next message.
    func authenticate(token: String, extra: [(String, JSONValue)] = [], timeout: Double = 2) throws -> ConnectedInfo {
        try sendAuthenticate(token: token, extra: extra)
        return try expectConnected(timeout: timeout)
    }

    /// The next message must be `connected` with a string `id`.
    func expectConnected(timeout: Double = 2) throws -> ConnectedInfo {
        let message = try receiveJSON(timeout: timeout)
        guard message.event == "connected", let data = message.data, let id = data["id"]?.stringValue else {
            throw E2EError("expected connected {id,...}, got \(message)")
        }
        return ConnectedInfo(id: id, userID: data["userId"]?.stringValue, data: data)
    }

    /// The next message must be `error` `{"message": text}`.
    func expectError(_ text: String, timeout: Double = 2, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let message = try receiveJSON(timeout: timeout)
        #expect(message.event == "error" && message.data == object([("message", .string(text))]),
                "expected error {\"message\":\"\(text)\"}, got \(message)", sourceLocation: sourceLocation)
    }

    /// Sends `echo` with `data` and requires the echo as the next message.
    func expectEcho(_ data: JSONValue, timeout: Double = 2, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try send("echo", data)
        let message = try receiveJSON(timeout: timeout)
        #expect(message.event == "echo" && message.data == data, "expected echo of \(data), got \(message)",
                sourceLocation: sourceLocation)
    }

    func join(_ rooms: [JSONValue]) throws { try send("join", object([("rooms", .array(rooms))])) }
    func leave(_ rooms: [JSONValue]) throws { try send("leave", object([("rooms", .array(rooms))])) }

    /// Asks the fixture to send `room-message` with `data` to `room`.
    func toRoom(_ room: String, _ data: JSONValue) throws {
        try send("to-room", object([("room", .string(room)), ("data", data)]))
    }

    /// The next message must be `room-message` with `data`.
    func expectRoomMessage(_ data: JSONValue, timeout: Double = 2, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let message = try receiveJSON(timeout: timeout)
        #expect(message.event == "room-message" && message.data == data,
                "expected room-message \(data), got \(message)", sourceLocation: sourceLocation)
    }

    /// Waits until this (authenticated) client is a member of `room`. `join` answers nothing
    /// and runs validateRoomFn asynchronously, so the client probes: `to-room` to `room`, then
    /// `echo`; once the room message comes before the echo, the join has taken effect.
    func waitUntilMember(of room: String, timeout: Double = 3) throws {
        let end = deadline(after: timeout)
        while ContinuousClock.now < end {
            let nonce = nextNonce()
            let probe = object([("member-probe", .string(nonce))])
            try toRoom(room, probe)
            try send("echo", probe)
            let first = try receiveJSON()
            if first.event == "room-message", first.data == probe {
                let echo = try receiveJSON()
                guard echo.event == "echo", echo.data == probe else { throw E2EError("expected the probe echo, got \(echo)") }
                return
            }
            guard first.event == "echo", first.data == probe else {
                throw E2EError("unexpected message while waiting for membership of \(room): \(first)")
            }
        }
        throw E2EError("not a member of \(room) within \(timeout) s", isTimeout: true)
    }
}

/// `s` repeated to `count` characters.
func repeated(_ s: Character, _ count: Int) -> String { String(repeating: s, count: count) }
