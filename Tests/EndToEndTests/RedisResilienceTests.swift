// Redis failures seen from the outside: a crash and restart, a cluster node dying, and a
// start-up while Redis is unreachable.
import Foundation
import Switchboard
import TestSupport
import Testing

/// Expects a route ("A -> B") watched by `probeUntilDelivered` to have resumed: a probe got
/// through within the probe's limit (`seconds` is not nil), at most `bound` seconds after what
/// the seconds count from (`since`, said in the failure).
func expectResumed(_ route: String, _ seconds: Double?, within bound: Double = 5, after since: String,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    guard let seconds else {
        Issue.record("\(route) delivery did not resume within the probe's limit after \(since)", sourceLocation: sourceLocation)
        return
    }
    #expect(seconds <= bound, "\(route) delivery resumed only \(seconds) s after \(since)", sourceLocation: sourceLocation)
}

/// Seconds as the `[measure]` lines print them; "never" when delivery did not resume.
func measured(_ seconds: Double?) -> String { seconds.map { String(format: "%.2f", $0) } ?? "never" }

/// Broadcasts a fresh probe from `sender` until `receiver` gets one, skipping whatever else
/// `receiver` gets (buffered messages, earlier probes). Each wait for a frame is bounded; the
/// seconds from `started` until one arrived, or nil when nothing arrived within `limit` of it.
func probeUntilDelivered(from sender: Peer, to receiver: Peer, since started: ContinuousClock.Instant = .now,
                         limit: Double) throws -> Double? {
    var sent: Set<String> = []
    while seconds(since: started) < limit {
        let nonce = UUID().uuidString
        sent.insert(nonce)
        try sender.client.send("broadcast", object([("probe", .string(nonce))]))
        let roundEnd = deadline(after: 0.25)
        while ContinuousClock.now < roundEnd {
            let remaining = roundEnd - .now
            let timeout = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18
            guard timeout > 0, let frame = try receiver.client.receiveIfAny(timeout: timeout) else { break }
            guard case .text(let text) = frame, let value = try? JSONValue.parse(text),
                  let probe = value["data"]?["probe"]?.stringValue else { continue }
            if sent.contains(probe) { return seconds(since: started) }
        }
    }
    return nil
}

/// The longest `retrying in N ms` of the Redis subscriber in a fixture's stderr; 0 if none.
func longestRetryDelay(_ stderr: String) -> Int {
    var longest = 0
    for line in stderr.split(separator: "\n") where line.contains("redis subscriber") {
        guard let range = line.range(of: "retrying in ") else { continue }
        let digits = line[range.upperBound...].prefix { $0.isNumber }
        longest = max(longest, Int(digits) ?? 0)
    }
    return longest
}

extension EndToEnd {
    @Suite("Redis: failures and recovery") struct RedisResilience {
        @Test("kill -9 and restart of Redis: local delivery goes on during the outage, cross-instance delivery resumes within 5 s")
        func redisRestart() throws {
            try withTwoInstances { redis, a, b in
                let a1 = try Peer(a, token: "user:u1", name: "a1"), a2 = try Peer(a, token: "user:u2", name: "a2")
                let b1 = try Peer(b, token: "user:u3", name: "b1"), b2 = try Peer(b, token: "user:u4", name: "b2")
                let before = uniqueData()
                try a1.client.send("broadcast", before)
                for peer in [a1, a2, b1, b2] { try peer.client.expectMessage("broadcast", before, who: "\(peer.name) before the crash") }

                redis.kill9()
                // During the outage: a new client can log in on A, and A's clients get A's broadcasts.
                let a3 = try Peer(a, token: "user:u5", name: "a3 (joined during the outage)")
                let during = uniqueData()
                try a1.client.send("broadcast", during)
                for peer in [a1, a2, a3] { try peer.client.expectMessage("broadcast", during, timeout: 2, who: "\(peer.name) during the outage") }
                for peer in [a1, a2, a3] { try peer.client.expectNoMessage(probe: .echo) }
                let duringB = uniqueData()
                try b1.client.send("broadcast", duringB)
                for peer in [b1, b2] { try peer.client.expectMessage("broadcast", duringB, timeout: 2, who: "\(peer.name) during the outage") }

                try redis.start()  // same port; returns once PING is answered
                let aToB = try probeUntilDelivered(from: a1, to: b2, limit: 15)
                expectResumed("A -> B", aToB, after: "Redis answered PING")
                let bToA = try probeUntilDelivered(from: b1, to: a2, limit: 15)
                expectResumed("B -> A", bToA, after: "A -> B")
                print("[measure] Redis restart: A -> B resumed \(measured(aToB)) s after PING; B -> A \(measured(bToA)) s later")

                // After recovery: exactly once again, in both directions.
                let everyone = [a1, a2, a3, b1, b2]
                try drainWithFence(everyone, redis: redis)
                for sender in [a2, b2] {
                    let after = uniqueData()
                    try sender.client.send("broadcast", after)
                    for peer in everyone { try peer.client.expectMessage("broadcast", after, who: "\(peer.name) after recovery") }
                    try expectFence(everyone, redis: redis)
                }
            }
        }

        @Test("A long Redis outage (backoff grown to seconds): delivery resumes within 5 s (+ reconnect) of the restart")
        func longRedisOutage() throws {
            try withTwoInstances { redis, a, b in
                let a1 = try Peer(a, token: "user:u1", name: "a1"), b1 = try Peer(b, token: "user:u3", name: "b1")
                redis.kill9()
                // The outage lasts until both instances back off for 2.5 s or more between attempts.
                for fixture in [a, b] {
                    let grown = e2eRetry(timeout: 30) { longestRetryDelay(fixture.stderrText) >= 2500 }
                    #expect(grown, "the subscriber's retry delay never reached 2.5 s: \(fixture.stderrText.suffix(1500))")
                }
                #expect(a.process.isRunning && b.process.isRunning)
                try redis.start()
                let aToB = try probeUntilDelivered(from: a1, to: b1, limit: 15)
                // The backoff is capped at 5 s: allow that plus the reconnect itself.
                expectResumed("A -> B", aToB, within: 5.5, after: "Redis answered PING")
                print("[measure] long Redis outage: A -> B resumed \(measured(aToB)) s after PING")
                try drainWithFence([a1, b1], redis: redis)
                let after = uniqueData()
                try b1.client.send("broadcast", after)
                for peer in [a1, b1] { try peer.client.expectMessage("broadcast", after, who: "\(peer.name) after recovery") }
                try expectFence([a1, b1], redis: redis)
            }
        }

        @Test("Cluster: instances on different nodes exchange messages; kill -9 of A's node, delivery resumes within 5 s")
        func clusterFailover() throws {
            let cluster = try E2ERedisCluster()
            let nodes = cluster.servers
            // A: repeated --redis flags in node order 0,1,2; B: one URL listing 2,0,1.
            let a = try startedFixture(nodes.flatMap { ["--redis", $0.url] })
            defer { a.kill() }
            let b = try startedFixture(["--redis", "redis://\(nodes[2].address),\(nodes[0].address),\(nodes[1].address)"])
            defer { b.kill() }

            // Pub/sub subscriptions are per node: A subscribed on node 0, B on node 2.
            func subscribers(_ node: E2ERedisServer) throws -> String { try node.command(["PUBSUB", "NUMSUB", "ws:broadcast"]) }
            #expect(try subscribers(nodes[0]).hasSuffix(":1\r\n"), "A is not subscribed on the first listed node")
            #expect(try subscribers(nodes[1]).hasSuffix(":0\r\n"))
            #expect(try subscribers(nodes[2]).hasSuffix(":1\r\n"), "B is not subscribed on its first listed node")

            let a1 = try Peer(a, token: "user:u1", name: "a1"), a2 = try Peer(a, token: "user:u2", name: "a2")
            let b1 = try Peer(b, token: "user:u3", name: "b1"), b2 = try Peer(b, token: "user:u4", name: "b2")
            let everyone = [a1, a2, b1, b2]
            for sender in [a1, b1] {
                let data = uniqueData()
                try sender.client.send("broadcast", data)
                for peer in everyone { try peer.client.expectMessage("broadcast", data, who: "\(peer.name) from \(sender.name)") }
                try expectFence(everyone, redis: nodes[2])
            }

            nodes[0].kill9()
            let killed = ContinuousClock.now
            let during = uniqueData()
            try a1.client.send("broadcast", during)
            for peer in [a1, a2] { try peer.client.expectMessage("broadcast", during, timeout: 2, who: "\(peer.name) after the kill") }

            let aToB = try probeUntilDelivered(from: a1, to: b1, since: killed, limit: 15)
            expectResumed("A -> B", aToB, after: "killing A's node")
            let bToA = try probeUntilDelivered(from: b2, to: a2, limit: 15)
            expectResumed("B -> A", bToA, after: "A -> B")
            print("[measure] cluster node kill: A -> B resumed \(measured(aToB)) s after kill -9; B -> A \(measured(bToA)) s later")
            #expect(try subscribers(nodes[1]).hasSuffix(":1\r\n"), "A did not move to the next listed node")

            try drainWithFence(everyone, redis: nodes[2])
            for sender in [a2, b2] {
                let after = uniqueData()
                try sender.client.send("broadcast", after)
                for peer in everyone { try peer.client.expectMessage("broadcast", after, who: "\(peer.name) after failover") }
                try expectFence(everyone, redis: nodes[1])
            }
        }

        @Test("Start-up with Redis unreachable: no LISTENING until Redis answers, then LISTENING and delivery")
        func startupWaitsForRedis() throws {
            let port = e2eFreePort()
            let fixture = try Fixture(["--redis", "redis://127.0.0.1:\(port)"])
            defer { fixture.kill() }
            // The observation window: 2 s without Redis.
            let early = try? fixture.waitForLine(prefix: "LISTENING ", timeout: 2)
            #expect(early == nil, "printed \(early ?? "") while Redis on \(port) was unreachable")
            #expect(fixture.process.isRunning, "the fixture exited: \(fixture.stderrText)")
            #expect(fixture.stderrText.contains("127.0.0.1:\(port)"), "nothing on stderr names the unreachable Redis: \(fixture.stderrText.debugDescription)")

            let redis = try E2ERedisServer(port: port)
            try fixture.waitUntilListening(timeout: 15)
            // Every subscription was confirmed before LISTENING (PROTOCOL.md 8).
            #expect(try redis.command(["PUBSUB", "NUMSUB", "ws:broadcast"]).hasSuffix(":1\r\n"))
            #expect(try redis.command(["PUBSUB", "NUMPAT"]) == ":3\r\n")

            let peer = try Peer(fixture, token: "user:u1", name: "client")
            for (channel, type, target) in [("ws:broadcast", "broadcast", nil), ("ws:room:ws-default", "room", "ws-default"),
                                            ("ws:client:\(peer.id)", "client", peer.id), ("ws:user:u1", "user", "u1")] {
                let data = uniqueData()
                try redis.publish(channel, redisEnvelope(type: type, target: target, event: "late", data: data))
                try peer.client.expectMessage("late", data, who: "via \(channel)")
            }
        }

        @Test("LISTENING comes only after every subscription is confirmed")
        func listeningAfterSubscriptions() throws {
            let redis = try E2ERedisServer()
            let fixture = try startedFixture(["--redis", redis.url])
            defer { fixture.kill() }
            #expect(try redis.command(["PUBSUB", "NUMSUB", "ws:broadcast"]).hasSuffix(":1\r\n"))
            #expect(try redis.command(["PUBSUB", "NUMPAT"]) == ":3\r\n")
            let plain = try redis.command(["PUBSUB", "NUMSUB", "ws:room:x"])
            #expect(plain.hasSuffix(":0\r\n"), "ws:room:* must be a pattern subscription: \(plain)")
        }
    }
}
