// Two fixtures on one real Redis act as one gateway (PROTOCOL.md 8): client events on one
// instance reach clients on the other exactly once, and envelopes published straight to
// Redis are delivered by type, with `exclude`, while malformed ones are dropped.
import Foundation
import Switchboard
import TestSupport
import Testing

/// A Redis and two fixtures A and B on it; everything is killed when `body` returns.
func withTwoInstances(_ flags: [String] = [], _ body: (E2ERedisServer, Fixture, Fixture) throws -> Void) throws {
    let redis = try E2ERedisServer()
    let a = try startedFixture(["--redis", redis.url] + flags)
    defer { a.kill() }
    let b = try startedFixture(["--redis", redis.url] + flags)
    defer { b.kill() }
    try body(redis, a, b)
}

/// `{"n": <unique string>}`.
func uniqueData(_ key: String = "n") -> JSONValue { object([(key, .string(UUID().uuidString))]) }

/// Joins `room` with each peer in turn and waits for each membership, then drains the
/// membership probes (they reach the room's members on every instance) with a fence.
func join(_ room: String, _ members: [Peer], everyone: [Peer], redis: E2ERedisServer) throws {
    for member in members {
        try member.client.join([.string(room)])
        try member.client.awaitMembership(of: room)
    }
    try drainWithFence(everyone, redis: redis)
}

extension EndToEnd {
    @Suite("Redis: two instances act as one (PROTOCOL.md 8)") struct RedisCrossInstance {
        @Test("broadcast from either instance reaches every authenticated client on A and B exactly once")
        func broadcast() throws {
            try withTwoInstances { redis, a, b in
                let a1 = try Peer(a, token: "user:u1", name: "a1"), a2 = try Peer(a, token: "user:u2", name: "a2")
                let aAnon = try Peer(a, token: "anon", name: "a-anon")
                let b1 = try Peer(b, token: "user:u3", name: "b1"), b2 = try Peer(b, token: "user:u1", name: "b2")
                let bAnon = try Peer(b, token: "anon", name: "b-anon")
                let strangerA = try a.client(), strangerB = try b.client()
                let everyone = [a1, a2, aAnon, b1, b2, bAnon]

                for sender in [a1, b1] {
                    let data = uniqueData()
                    try sender.client.send("broadcast", data)
                    try expectDelivered("broadcast", data, to: everyone, everyone: everyone, redis: redis,
                                        who: { "\($0.name) (from \(sender.name))" })
                    for peer in everyone { try peer.client.expectNoMessage(probe: .echo) }
                }
                try strangerA.expectNoMessage(probe: .notAuthenticated)
                try strangerB.expectNoMessage(probe: .notAuthenticated)
            }
        }

        @Test("to-room reaches the room's members on both instances exactly once, and nobody else")
        func toRoom() throws {
            try withTwoInstances { redis, a, b in
                let a1 = try Peer(a, token: "user:u1", name: "a1 (member)"), a2 = try Peer(a, token: "user:u2", name: "a2")
                let b1 = try Peer(b, token: "user:u3", name: "b1 (member)"), b2 = try Peer(b, token: "user:u4", name: "b2")
                let b3 = try Peer(b, token: "user:u5", name: "b3 (member)")
                let everyone = [a1, a2, b1, b2, b3]
                try join("public-x", [a1, b1, b3], everyone: everyone, redis: redis)

                // From a non-member on A (the room exists locally on A), then from one on B.
                for sender in [a2, b2] {
                    let data = uniqueData()
                    try sender.client.toRoom("public-x", data)
                    try expectDelivered("room-message", data, to: [a1, b1, b3], everyone: everyone, redis: redis,
                                        who: { "\($0.name) from \(sender.name)" })
                    for peer in everyone { try peer.client.expectNoMessage(probe: .echo) }
                }

                // A room with members on B only, sent from A (not a local room on A).
                try join("public-y", [b2], everyone: everyone, redis: redis)
                let data = uniqueData()
                try a2.client.toRoom("public-y", data)
                try expectDelivered("room-message", data, to: [b2], everyone: everyone, redis: redis, who: { _ in "b2 in public-y" })
            }
        }

        @Test("to-user reaches every client of the user on A and B exactly once")
        func toUser() throws {
            try withTwoInstances { redis, a, b in
                let a1 = try Peer(a, token: "user:u1", name: "a1 (u1)"), a2 = try Peer(a, token: "user:u2", name: "a2 (u2)")
                let a3 = try Peer(a, token: "user:u1", name: "a3 (u1)")
                let b1 = try Peer(b, token: "user:u3", name: "b1 (u3)"), b2 = try Peer(b, token: "user:u1", name: "b2 (u1)")
                let everyone = [a1, a2, a3, b1, b2]

                let data = uniqueData()
                try a2.client.send("to-user", object([("userId", "u1"), ("data", data)]))
                try expectDelivered("user-message", data, to: [a1, a3, b2], everyone: everyone, redis: redis)
                for peer in everyone { try peer.client.expectNoMessage(probe: .echo) }

                // A user with clients on A only, addressed from B.
                let other = uniqueData()
                try b1.client.send("to-user", object([("userId", "u2"), ("data", other)]))
                try expectDelivered("user-message", other, to: [a2], everyone: everyone, redis: redis, who: { _ in "a2 (u2) from B" })
            }
        }

        @Test("Envelopes published to Redis by hand are delivered by type, honouring exclude")
        func handWrittenEnvelopes() throws {
            try withTwoInstances { redis, a, b in
                let scene = try RoomScene(redis: redis, a: a, b: b)
                let (a1, a2, b1, b2, b3, everyone) = (scene.a1, scene.a2, scene.b1, scene.b2, scene.b3, scene.everyone)

                // room, one member excluded
                let roomData: JSONValue = object([("n", 1), ("s", "é✓ \"quoted\"")])
                let receivers = try redis.publish("ws:room:public-x", redisEnvelope(type: "room", target: "public-x", event: "manual",
                                                                                   data: roomData, exclude: [b1.id]))
                #expect(receivers == 2, "PUBLISH receivers (one pattern subscription per instance)")
                try expectDelivered("manual", roomData, to: [a1, b3], everyone: everyone, redis: redis)

                // client, on each instance
                for peer in [b2, a2] {
                    let data = uniqueData()
                    try redis.publish("ws:client:\(peer.id)", redisEnvelope(type: "client", target: peer.id, event: "direct", data: data))
                    try expectDelivered("direct", data, to: [peer], everyone: everyone, redis: redis)
                }

                // user
                let userData = uniqueData()
                try redis.publish("ws:user:u1", redisEnvelope(type: "user", target: "u1", event: "to-u1", data: userData))
                try expectDelivered("to-u1", userData, to: [a1, b2], everyone: everyone, redis: redis)

                // broadcast, one client excluded on each instance
                let broadcastData = uniqueData()
                try redis.publish("ws:broadcast", redisEnvelope(type: "broadcast", event: "news", data: broadcastData,
                                                                exclude: [a2.id, b3.id]))
                try expectDelivered("news", broadcastData, to: [a1, b1, b2], everyone: everyone, redis: redis)

                // the emitter's serverId is delivered like any other instance's
                let emitterData = uniqueData()
                try redis.publish("ws:broadcast", redisEnvelope(serverID: "emitter", type: "broadcast", event: "from-emitter",
                                                                data: emitterData))
                try expectDelivered("from-emitter", emitterData, to: everyone, everyone: everyone, redis: redis)
            }
        }

        @Test("Malformed Redis messages are dropped and delivery continues")
        func malformedEnvelopes() throws {
            try withTwoInstances { redis, a, b in
                let a1 = try Peer(a, token: "user:u1", name: "a1"), b1 = try Peer(b, token: "user:u1", name: "b1")
                let everyone = [a1, b1]
                let malformed: [(channel: String, message: String)] = [
                    ("ws:broadcast", "not json"),
                    ("ws:broadcast", "null"),
                    ("ws:broadcast", "5"),
                    ("ws:broadcast", "[]"),
                    ("ws:broadcast", "{}"),
                    ("ws:broadcast", #"{"serverId":"x","type":"broadcast","event":"e","data":1"#),
                    ("ws:broadcast", #"{"serverId":"x","type":"bogus","event":"e","data":1}"#),
                    ("ws:broadcast", #"{"serverId":"x","type":"broadcast","data":1}"#),
                    ("ws:broadcast", #"{"serverId":"x","type":"broadcast","event":5,"data":1}"#),
                    ("ws:user:u1", "not json"),
                    ("ws:client:\(a1.id)", "{\"serverId\":"),
                    ("ws:room:ws-default", "\u{1}\u{2}"),
                ]
                for (channel, message) in malformed {
                    try redis.publish(channel, message)
                    let data = uniqueData("after")
                    try redis.publish("ws:broadcast", redisEnvelope(type: "broadcast", event: "after-malformed", data: data))
                    for peer in everyone {
                        try peer.client.expectMessage("after-malformed", data, who: "\(peer.name) after \(message.debugDescription) on \(channel)")
                    }
                }
                #expect(a.process.isRunning && b.process.isRunning)
                for peer in everyone { try peer.client.expectNoMessage(probe: .echo) }
                // Cross-instance delivery still works.
                let data = uniqueData()
                try a1.client.send("broadcast", data)
                try expectDelivered("broadcast", data, to: everyone, everyone: everyone, redis: redis)
            }
        }
    }
}
