// Presence (issue 19) through real sockets: one instance in memory, two instances sharing a
// real redis-server, and an instance killed with SIGKILL whose members must vanish within
// `presenceTtl`.
import Foundation
import Switchboard
import TestSupport
import Testing

extension WSClient {
    /// Sends `presence` for `room` and returns the members' client ids from the answer,
    /// skipping other messages (join and leave events) that arrive first.
    func presence(of room: String, timeout: Double = 3) throws -> [String] {
        try send("presence", object([("room", .string(room))]))
        let end = deadline(after: timeout)
        while ContinuousClock.now < end {
            let message = try receiveJSON(timeout: timeout)
            guard message.event == "presence" || message.event == "error" else { continue }
            guard message.event == "presence", message.data?["room"] == .string(room),
                  case .array(let members)? = message.data?["members"] else {
                throw TestFailure("presence of \(room) answered \(message)")
            }
            return members.compactMap { if case .string(let id)? = $0["clientId"] { id } else { nil } }
        }
        throw TestFailure("no presence answer for \(room) within \(timeout) s", isTimeout: true)
    }

    /// Asks until the answer satisfies `condition` (another instance's write lands in Redis
    /// on its own connection, unordered with the bus); the last answer.
    func presence(of room: String, until condition: ([String]) -> Bool, timeout: Double = 5) throws -> [String] {
        let end = deadline(after: timeout)
        var last: [String] = []
        while ContinuousClock.now < end {
            last = try presence(of: room)
            if condition(last) { return last }
        }
        return last
    }
}

extension WSClient {
    /// Skips messages until `event` (presence_join or presence_leave) about `peer` in `room`
    /// arrives, and checks that it names the peer's user.
    func awaitPresence(_ event: String, room: String, of peer: Peer, timeout: Double = 5,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let end = deadline(after: timeout)
        while ContinuousClock.now < end {
            let message = try receiveJSON(timeout: timeout)
            guard message.event == event, message.data?["room"] == .string(room),
                  message.data?["clientId"] == .string(peer.id) else { continue }
            #expect(message.data?["userId"] == peer.userID.map(JSONValue.string), "\(message)", sourceLocation: sourceLocation)
            return
        }
        throw TestFailure("no \(event) of \(peer.name) in \(room) within \(timeout) s", isTimeout: true)
    }
}

extension EndToEnd {
    @Suite("Presence (issue 19)") struct Presence {
        static let flags = ["--presence-rooms", "public-*"]

        @Test("one instance: join and leave events to the other members, the query, its errors")
        func oneInstance() throws {
            try withFixture(Self.flags) { server in
                let a = try Peer(server, token: "user:u1", name: "a"), b = try Peer(server, token: "user:u2", name: "b")
                try a.client.join([.string("public-chat"), .string("public-other")])
                try a.client.awaitMembership(of: "public-chat")
                try b.client.join([.string("public-chat")])
                try a.client.awaitPresence("presence_join", room: "public-chat", of: b)
                #expect(try a.client.presence(of: "public-chat") == [a.id, b.id].sorted())
                try b.client.send("presence", object([("room", .string("public-other"))]))
                try b.client.skipUntil("error", object([("message", .string("Not in room"))]), timeout: 3)
                try b.client.send("presence", object([("room", .string("ws-default"))]))
                try b.client.skipUntil("error", object([("message", .string("Presence not enabled for room"))]), timeout: 3)
                b.client.close()
                try a.client.awaitPresence("presence_leave", room: "public-chat", of: b)
                #expect(try a.client.presence(of: "public-chat") == [a.id])
            }
        }

        @Test("two instances on one Redis: each sees the other's members and join events")
        func twoInstances() throws {
            try withTwoInstances(Self.flags) { _, a, b in
                let a1 = try Peer(a, token: "user:u1", name: "a1"), b1 = try Peer(b, token: "user:u2", name: "b1")
                try a1.client.join([.string("public-chat")])
                try a1.client.awaitMembership(of: "public-chat")
                try b1.client.join([.string("public-chat")])
                try a1.client.awaitPresence("presence_join", room: "public-chat", of: b1)
                let both = [a1.id, b1.id].sorted()
                #expect(try a1.client.presence(of: "public-chat", until: { $0 == both }) == both)
                #expect(try b1.client.presence(of: "public-chat", until: { $0 == both }) == both)
                b1.client.close()
                try a1.client.awaitPresence("presence_leave", room: "public-chat", of: b1)
                #expect(try a1.client.presence(of: "public-chat", until: { $0 == [a1.id] }) == [a1.id])
            }
        }

        /// The bound: readers drop an instance's entries once its heartbeat key expired, at
        /// most presenceTtl after its last refresh, which is before the kill.
        @Test("kill -9 of an instance: its members are gone from queries within presenceTtl")
        func killedInstance() throws {
            try withTwoInstances(Self.flags + ["--presence-ttl-ms", "1500"]) { redis, a, b in
                try Self.killAndWatch(redis: redis, survivor: a, victim: b, ttl: 1.5)
            }
        }

        @Test("a Redis restart: each instance writes its members again")
        func redisRestart() throws {
            try withTwoInstances(Self.flags + ["--presence-ttl-ms", "1500"]) { redis, a, b in
                let a1 = try Peer(a, token: "user:u1", name: "a1"), b1 = try Peer(b, token: "user:u2", name: "b1")
                try a1.client.join([.string("public-chat")])
                try a1.client.awaitMembership(of: "public-chat")
                try b1.client.join([.string("public-chat")])
                let both = [a1.id, b1.id].sorted()
                #expect(try a1.client.presence(of: "public-chat", until: { $0 == both }) == both)

                redis.kill9()  // no persistence: the hashes and heartbeats are gone
                try redis.start()
                // A's heartbeat fails, it reconnects and writes a1 again; B does the same for b1.
                let again = try a1.client.presence(of: "public-chat", until: { $0 == both }, timeout: 10)
                #expect(again == both)
            }
        }

        /// a1 on `survivor` and b1 on `victim` in one room; `victim` killed with SIGKILL; a1's
        /// queries must stop listing b1 within `ttl` (plus a second for the queries themselves).
        static func killAndWatch(redis: RedisServer, survivor: Fixture, victim: Fixture, ttl: Double) throws {
            let a1 = try Peer(survivor, token: "user:u1", name: "a1"), b1 = try Peer(victim, token: "user:u2", name: "b1")
            try a1.client.join([.string("public-chat")])
            try a1.client.awaitMembership(of: "public-chat")
            try b1.client.join([.string("public-chat")])
            let both = [a1.id, b1.id].sorted()
            let before = try a1.client.presence(of: "public-chat", until: { $0 == both })
            #expect(before == both)

            victim.kill()  // SIGKILL: no leave, no cleanup
            let killed = Date()
            let alone = [a1.id]
            let after = try a1.client.presence(of: "public-chat", until: { $0 == alone }, timeout: ttl + 3)
            let seconds = Date().timeIntervalSince(killed)
            #expect(after == alone)
            #expect(seconds < ttl + 1, "b1 still listed \(seconds) s after the kill")
            // The reader deleted the dead instance's field; the survivor's stays.
            let deadField = try redis.command(["HEXISTS", "sb:presence:room:public-chat", b1.id])
            let liveField = try redis.command(["HEXISTS", "sb:presence:room:public-chat", a1.id])
            #expect(deadField == ":0\r\n")
            #expect(liveField == ":1\r\n")
        }
    }
}
