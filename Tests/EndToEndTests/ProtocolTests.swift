// PROTOCOL.md 4 (inbound rules), 5 (authentication outcome) and 7 (delivery), end to end.
import Foundation
import Switchboard
import TestSupport
import Testing

extension EndToEnd {
    @Suite("Inbound message rules (PROTOCOL.md 4)") struct InboundRules {
        /// Valid JSON that is not an object with a non-empty string `event`.
        static let notEnvelopes = ["null", "5", "[]", #"{"event":5}"#, #"{"event":""}"#, #"{"event":null}"#,
                                   "{}", #"{"data":1}"#, #""text""#, "true", #"[{"event":"echo"}]"#]

        @Test("Valid JSON that is not an envelope gets no reply, before and after authentication")
        func notAnEnvelope() throws {
            try withFixture { server in
                let client = try server.client()
                for text in Self.notEnvelopes {
                    try client.sendText(text)
                    try client.expectNoMessage(probe: .notAuthenticated)
                }
                _ = try client.authenticate(token: "user:a")
                for text in Self.notEnvelopes {
                    try client.sendText(text)
                    try client.expectNoMessage(probe: .echo)
                }
                let (other, _) = try server.authenticatedClient(token: "user:b")
                try other.expectEcho("unharmed")
            }
        }

        @Test("heartbeat gets no reply in every state")
        func heartbeatNoReply() throws {
            try withFixture { server in
                let client = try server.client()
                try client.send("heartbeat")
                try client.send("heartbeat", object([("x", 1)]))
                try client.expectNoMessage(probe: .notAuthenticated)

                try client.sendAuthenticate(token: "slow:300:user:a")
                try client.send("heartbeat")
                try client.sendText(#"{"event":"join"}"#)
                try client.expectError("Not authenticated")
                _ = try client.expectConnected()

                try client.send("heartbeat")
                try client.expectNoMessage(probe: .echo)
            }
        }

        @Test("join keeps strings of 1...256 characters not starting with ws:")
        func joinFilters() throws {
            let long256 = repeated("r", 256)
            let long257 = repeated("r", 257)
            try withFixture(["--allow-all-rooms"]) { server in
                let (member, _) = try server.authenticatedClient(token: "user:m")
                let (sender, _) = try server.authenticatedClient(token: "user:s")
                try member.join(["ws:x", "", .string(long257), 5, .null, ["nested"], "ok-room", .string(long256)])
                try member.waitUntilMember(of: "ok-room")

                try sender.toRoom(long256, "to-256")
                try member.expectRoomMessage("to-256")
                for (index, room) in ["ws:x", "", long257, "5", "null", "nested"].enumerated() {
                    try sender.toRoom(room, .string("excluded-\(index)"))
                    try sender.toRoom("ok-room", .string("after-\(index)"))
                    try member.expectRoomMessage(.string("after-\(index)"))
                }
            }
        }

        @Test("join: validateRoomFn only allows public- rooms")
        func joinValidated() throws {
            try withFixture { server in
                let (member, _) = try server.authenticatedClient(token: "user:m")
                let (sender, _) = try server.authenticatedClient(token: "user:s")
                try member.join(["private-a", "public-a", "other"])
                try member.waitUntilMember(of: "public-a")
                for room in ["private-a", "other"] {
                    try sender.toRoom(room, .string("to-\(room)"))
                    try sender.toRoom("public-a", .string("after-\(room)"))
                    try member.expectRoomMessage(.string("after-\(room)"))
                }
            }
        }

        @Test("join without validateRoomFn joins nothing")
        func joinWithoutValidateRoom() throws {
            try withFixture(["--no-validate-room"]) { server in
                let (member, info) = try server.authenticatedClient(token: "user:m")
                let (sender, _) = try server.authenticatedClient(token: "user:s")
                try member.join(["public-a"])
                try member.expectNoMessage(probe: .echo)
                try sender.toRoom("public-a", "to-public-a")
                try sender.toRoom(info.id, "to-own-room")
                try member.expectRoomMessage("to-own-room")
            }
        }

        @Test("join/leave with malformed data harm nobody")
        func malformedJoinLeave() throws {
            try withFixture(["--allow-all-rooms"]) { server in
                let (client, _) = try server.authenticatedClient(token: "user:a")
                for text in [#"{"event":"join"}"#, #"{"event":"join","data":null}"#, #"{"event":"join","data":{"rooms":"public-a"}}"#,
                             #"{"event":"join","data":{"rooms":5}}"#, #"{"event":"join","data":[]}"#,
                             #"{"event":"leave"}"#, #"{"event":"leave","data":{"rooms":"ws-default"}}"#,
                             #"{"event":"leave","data":{"rooms":{"a":1}}}"#] {
                    try client.sendText(text)
                    try client.expectNoMessage(probe: .echo)
                }
                let (other, _) = try server.authenticatedClient(token: "user:b")
                try other.toRoom("ws-default", "still-member")
                try client.expectRoomMessage("still-member")
                try other.expectRoomMessage("still-member")
            }
        }

        @Test("leave leaves only the rooms given (and joined)")
        func leave() throws {
            try withFixture { server in
                let (member, _) = try server.authenticatedClient(token: "user:m")
                let (sender, _) = try server.authenticatedClient(token: "user:s")
                try member.join(["public-a", "public-b"])
                try member.waitUntilMember(of: "public-b")
                try member.leave(["public-a", "public-never-joined", "ws-notification", 7])
                try member.expectNoMessage(probe: .echo)
                for room in ["public-a", "ws-notification", "public-never-joined"] {
                    try sender.toRoom(room, .string("to-\(room)"))
                    try sender.toRoom("public-b", .string("after-\(room)"))
                    try member.expectRoomMessage(.string("after-\(room)"))
                }
                try sender.toRoom("ws-default", "default-kept")
                try member.expectRoomMessage("default-kept")
            }
        }

        @Test("Custom events go to messageHandler (echo)")
        func customEvent() throws {
            try withFixture { server in
                let (client, _) = try server.authenticatedClient(token: "user:a")
                let data = object([("text", "héllo ✓ \"quoted\" \\ /"), ("n", 42), ("list", [1, true, .null, ["x"]]),
                                   ("nested", object([("deep", object([("er", "yes")]))]))])
                try client.expectEcho(data)
                try client.sendText(#"{"event":"echo","data":"with id","id":"req-1"}"#)
                #expect(try client.receiveEvent("echo") == "with id")
                try client.sendBinary(Array(#"{"event":"echo","data":"binary frame"}"#.utf8))
                #expect(try client.receiveEvent("echo") == "binary frame")
                try client.send("unknown-custom-event", 1)
                try client.expectNoMessage(probe: .echo)
            }
        }
    }

    @Suite("Authentication outcome (PROTOCOL.md 5)") struct AuthenticationOutcome {
        @Test("connected carries id, userId and an ISO-8601 UTC time; CONNECTED has the same id")
        func connectedPayload() throws {
            try withFixture { server in
                let before = Date()
                let (_, info) = try server.authenticatedClient(token: "user:alice")
                let after = Date()
                checkID(info.id)
                #expect(info.userID == "alice")
                #expect(info.data.objectValue?.keys.sorted() == ["id", "time", "userId"],
                        "connected has other members (metadata must not leak): \(info.data)")
                checkTime(info.data["time"], between: before, and: after)
                #expect(try server.waitForLine(prefix: "CONNECTED ") == "CONNECTED \(info.id) alice")

                let (_, second) = try server.authenticatedClient(token: "user:alice")
                #expect(second.id != info.id)
                #expect(try server.waitForLine(prefix: "CONNECTED ") == "CONNECTED \(second.id) alice")
            }
        }

        @Test("connected of an anonymous client has no userId; CONNECTED shows -")
        func connectedAnonymous() throws {
            try withFixture { server in
                let before = Date()
                let (_, info) = try server.authenticatedClient(token: "anon")
                let after = Date()
                checkID(info.id)
                #expect(info.data.objectValue?.keys.sorted() == ["id", "time"], "connected: \(info.data)")
                checkTime(info.data["time"], between: before, and: after)
                #expect(try server.waitForLine(prefix: "CONNECTED ") == "CONNECTED \(info.id) -")
            }
        }

        @Test("Nothing but error reaches a client before connected")
        func nothingBeforeConnected() throws {
            try withFixture { server in
                let (sender, _) = try server.authenticatedClient(token: "user:s")
                let pending = try server.client()
                try pending.sendAuthenticate(token: "slow:600:user:p")
                try pending.sendText(#"{"event":"join"}"#)
                try pending.expectError("Not authenticated")
                try sender.toRoom("ws-default", "early-room")
                try sender.expectRoomMessage("early-room")
                try sender.send("broadcast", "early-broadcast")
                #expect(try sender.receiveEvent("broadcast") == "early-broadcast")
                try sender.send("to-user", object([("userId", "p"), ("data", "early-user")]))
                try sender.expectNoMessage(probe: .echo)

                let info = try pending.expectConnected()
                #expect(info.userID == "p")
                try sender.toRoom("ws-default", "late-room")
                try pending.expectRoomMessage("late-room")
            }
        }
    }

    @Suite("Delivery (PROTOCOL.md 7)") struct Delivery {
        @Test("broadcast reaches every authenticated client, sender included, and no unauthenticated one")
        func broadcast() throws {
            try withFixture { server in
                let (a, _) = try server.authenticatedClient(token: "user:a")
                let (b, _) = try server.authenticatedClient(token: "user:b")
                let (anonymous, _) = try server.authenticatedClient(token: "anon")
                let stranger = try server.client()
                let data = object([("n", 1)])
                try a.send("broadcast", data)
                for client in [a, b, anonymous] {
                    #expect(try client.receiveEvent("broadcast") == data)
                }
                try stranger.expectNoMessage(probe: .notAuthenticated)
            }
        }

        @Test("to-user reaches every client of that user and nobody else")
        func toUser() throws {
            try withFixture { server in
                let (first, _) = try server.authenticatedClient(token: "user:a")
                let (second, _) = try server.authenticatedClient(token: "user:a")
                let (other, _) = try server.authenticatedClient(token: "user:b")
                let data = object([("for", "a")])
                try other.send("to-user", object([("userId", "a"), ("data", data)]))
                for client in [first, second] {
                    #expect(try client.receiveEvent("user-message") == data)
                }
                try other.expectNoMessage(probe: .echo)
            }
        }

        @Test("to-room reaches the room's members only")
        func toRoom() throws {
            try withFixture { server in
                let (member, _) = try server.authenticatedClient(token: "user:m")
                let (outsider, _) = try server.authenticatedClient(token: "user:o")
                let (sender, _) = try server.authenticatedClient(token: "user:s")
                try member.join(["public-r"])
                try member.waitUntilMember(of: "public-r")
                try sender.toRoom("public-r", "for-members")
                try member.expectRoomMessage("for-members")
                try outsider.expectNoMessage(probe: .echo)
                try sender.expectNoMessage(probe: .echo)
            }
        }

        @Test("A client is in its own clientId room and the default rooms ws-default, ws-notification")
        func defaultRooms() throws {
            try withFixture { server in
                let (member, info) = try server.authenticatedClient(token: "user:m")
                let (sender, _) = try server.authenticatedClient(token: "user:s")
                for room in ["ws-default", "ws-notification"] {
                    try sender.toRoom(room, .string("to-\(room)"))
                    try member.expectRoomMessage(.string("to-\(room)"))
                    try sender.expectRoomMessage(.string("to-\(room)"))
                }
                try sender.toRoom(info.id, "to-own-room")
                try member.expectRoomMessage("to-own-room")
                try sender.expectNoMessage(probe: .echo)
            }
        }

        @Test("--default-rooms a,b replaces the default rooms")
        func configuredDefaultRooms() throws {
            try withFixture(["--default-rooms", "a,b"]) { server in
                let (member, _) = try server.authenticatedClient(token: "user:m")
                let (sender, _) = try server.authenticatedClient(token: "user:s")
                for room in ["a", "b"] {
                    try sender.toRoom(room, .string("to-\(room)"))
                    try member.expectRoomMessage(.string("to-\(room)"))
                    try sender.expectRoomMessage(.string("to-\(room)"))
                }
                for room in ["ws-default", "ws-notification"] {
                    try sender.toRoom(room, .string("to-\(room)"))
                    try sender.toRoom("b", .string("after-\(room)"))
                    try member.expectRoomMessage(.string("after-\(room)"))
                }
            }
        }
    }
}

/// A canonical lower-case UUID.
private func checkID(_ id: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let pattern = #/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/#
    #expect(id.wholeMatch(of: pattern) != nil, "id \(id) is not a canonical UUID", sourceLocation: sourceLocation)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` within the interval (1 s slack for the millisecond rounding).
private func checkTime(_ value: JSONValue?, between before: Date, and after: Date,
                       sourceLocation: SourceLocation = #_sourceLocation) {
    guard let text = value?.stringValue else {
        Issue.record("time is not a string: \(String(describing: value))", sourceLocation: sourceLocation)
        return
    }
    let pattern = #/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/#
    #expect(text.wholeMatch(of: pattern) != nil, "time \(text) is not ISO-8601 UTC with milliseconds",
            sourceLocation: sourceLocation)
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    guard let date = formatter.date(from: text) else {
        Issue.record("time \(text) does not parse", sourceLocation: sourceLocation)
        return
    }
    #expect(date >= before.addingTimeInterval(-1) && date <= after.addingTimeInterval(1),
            "time \(text) is not between \(before) and \(after)", sourceLocation: sourceLocation)
}
