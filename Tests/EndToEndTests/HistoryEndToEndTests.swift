// History and recovery (issue 19) through real sockets: one instance in memory, two instances
// sharing a real redis-server (a client recovers on the other instance), and a Redis restart,
// after which a client that recovers is told the epoch changed.
import Foundation
import Switchboard
import TestSupport
import Testing

/// A client's place in a room's history, as messages and `joined` tell it.
struct Position: Equatable, CustomStringConvertible {
    var offset: Int
    var epoch: String
    var description: String { "\(offset)@\(epoch)" }
    var json: JSONValue { object([("offset", .number(JSONNumber(offset))), ("epoch", .string(epoch))]) }
}

extension WSClient {
    /// Joins `room` (with `since`), skips other messages until `joined` of that room, and returns its data.
    @discardableResult
    func joinHistory(_ room: String, since: Position? = nil, timeout: Double = 5) throws -> JSONValue {
        var members: [(String, JSONValue)] = [("room", .string(room))]
        if let since { members.append(("since", since.json)) }
        try send("join", object(members))
        let end = deadline(after: timeout)
        while ContinuousClock.now < end {
            let message = try receiveJSON(timeout: timeout)
            if message.event == "joined", message.data?["room"] == .string(room), let data = message.data { return data }
        }
        throw TestFailure("no joined for \(room) within \(timeout) s", isTimeout: true)
    }

    /// The next `room-message`, skipping others; its data and its stamp.
    func nextRoomMessage(timeout: Double = 5) throws -> (data: JSONValue?, room: String?, position: Position?) {
        let end = deadline(after: timeout)
        while ContinuousClock.now < end {
            let message = try receiveJSON(timeout: timeout)
            guard message.event == "room-message" else { continue }
            guard case .object(let whole)? = try? JSONValue.parse(message.raw) else { continue }
            var position: Position?
            if case .number(let offset)? = whole["offset"], let value = offset.int, case .string(let epoch)? = whole["epoch"] {
                position = Position(offset: value, epoch: epoch)
            }
            return (message.data, whole["room"]?.stringValue, position)
        }
        throw TestFailure("no room-message within \(timeout) s", isTimeout: true)
    }
}

/// The position `joined` names.
func position(of joined: JSONValue) throws -> Position {
    guard case .number(let offset)? = joined["offset"], let value = offset.int, case .string(let epoch)? = joined["epoch"] else {
        throw TestFailure("joined without a position: \(joined.serialized())")
    }
    return Position(offset: value, epoch: epoch)
}

extension EndToEnd {
    @Suite("History and recovery (issue 19)") struct History {
        static let flags = ["--history-rooms", "public-h*"]

        @Test("one instance: stamped messages, recovery after a reconnect, too old, rooms without history unchanged")
        func oneInstance() throws {
            try withFixture(Self.flags + ["--history-size", "3"]) { server in
                let (sender, _) = try server.authenticatedClient(token: "user:s")
                try sender.joinHistory("public-h1")
                // The sender is a member: its own copy of a message comes once the message is
                // recorded. The fixture runs a loop per core, so a reader's join may be handled on
                // another loop before the sender's loop has recorded what was sent just before.
                func say(_ text: JSONValue) throws {
                    try sender.toRoom("public-h1", text)
                    #expect(try sender.nextRoomMessage().data == text)
                }
                var (reader, _) = try server.authenticatedClient(token: "user:r")
                let start = try position(of: try reader.joinHistory("public-h1"))
                try say("one")
                let one = try reader.nextRoomMessage()
                #expect(one.data == "one" && one.room == "public-h1")
                #expect(one.position == Position(offset: start.offset + 1, epoch: start.epoch))
                reader.close()

                try say("two")
                try say("three")
                (reader, _) = try server.authenticatedClient(token: "user:r")
                let joined = try reader.joinHistory("public-h1", since: one.position)
                #expect(joined["recovered"] == true)
                #expect(try position(of: joined) == Position(offset: start.offset + 3, epoch: start.epoch))
                #expect(try reader.nextRoomMessage().data == "two")
                #expect(try reader.nextRoomMessage().data == "three")
                try say("four")
                let four = try reader.nextRoomMessage()
                #expect(four.data == "four" && four.position?.offset == start.offset + 4)
                reader.close()

                for text in ["5", "6", "7", "8"] { try say(.string(text)) }
                (reader, _) = try server.authenticatedClient(token: "user:r")
                let old = try reader.joinHistory("public-h1", since: four.position)
                #expect(old["recovered"] == false && old["reason"] == "offset_too_old")
                #expect(try position(of: old).offset == start.offset + 8)

                // A room without history: the original's bytes, and no `joined`.
                try reader.join(["public-plain"])
                try reader.waitUntilMember(of: "public-plain")
                try sender.toRoom("public-plain", "plain")
                let plain = try reader.receiveJSON()
                #expect(plain.raw == #"{"event":"room-message","data":"plain"}"#)
            }
        }

        @Test("two instances on one Redis: the same offsets everywhere; recovery on the other instance")
        func twoInstances() throws {
            try withTwoInstances(Self.flags) { _, a, b in
                let a1 = try Peer(a, token: "user:u1", name: "a1"), b1 = try Peer(b, token: "user:u2", name: "b1")
                let start = try position(of: try a1.client.joinHistory("public-h2"))
                try b1.client.joinHistory("public-h2")
                try b1.client.toRoom("public-h2", "one")
                try b1.client.toRoom("public-h2", "two")
                let seenByA = [try a1.client.nextRoomMessage(), try a1.client.nextRoomMessage()]
                let seenByB = [try b1.client.nextRoomMessage(), try b1.client.nextRoomMessage()]
                #expect(seenByA.map { $0.data } == ["one", "two"])
                #expect(seenByA.map { $0.position } == seenByB.map { $0.position })
                #expect(seenByA.map { $0.position?.offset } == [start.offset + 1, start.offset + 2])
                a1.client.close()

                try b1.client.toRoom("public-h2", "three")
                try b1.client.toRoom("public-h2", "four")
                // b1's own copies come once both are recorded (see oneInstance).
                #expect(try b1.client.nextRoomMessage().data == "three")
                #expect(try b1.client.nextRoomMessage().data == "four")
                // Back, on the other instance, from the last position it saw.
                let again = try Peer(b, token: "user:u1", name: "a1'")
                let joined = try again.client.joinHistory("public-h2", since: seenByA[1].position)
                #expect(joined["recovered"] == true)
                #expect(try again.client.nextRoomMessage().data == "three")
                #expect(try again.client.nextRoomMessage().data == "four")
                try b1.client.toRoom("public-h2", "five")
                let five = try again.client.nextRoomMessage()
                #expect(five.data == "five" && five.position == Position(offset: start.offset + 5, epoch: start.epoch))
            }
        }

        @Test("a Redis restart: a client that recovers is told the epoch changed")
        func redisRestart() throws {
            try withTwoInstances(Self.flags) { redis, a, _ in
                let (sender, _) = try a.authenticatedClient(token: "user:s")
                try sender.joinHistory("public-h3")
                let (reader, _) = try a.authenticatedClient(token: "user:r")
                try reader.joinHistory("public-h3")
                try sender.toRoom("public-h3", "before")
                let before = try reader.nextRoomMessage()
                reader.close()

                redis.kill9()  // no persistence: the epoch and offsets are gone
                try redis.start()
                let (back, _) = try a.authenticatedClient(token: "user:r")
                let joined = try back.joinHistory("public-h3", since: before.position, timeout: 10)
                #expect(joined["recovered"] == false && joined["reason"] == "epoch_changed", "\(joined.serialized())")
                #expect(try position(of: joined).epoch != before.position?.epoch)
            }
        }
    }
}
