// Publishing from outside the fleet: `switchboard emit` (CONTRACT.md) and the library's
// `Emitter`, delivered by two fixtures on one Redis.
import Foundation
import Switchboard
import TestSupport
import Testing

extension EndToEnd {
    @Suite("Redis: switchboard emit and Emitter") struct RedisEmit {
        /// Runs `switchboard emit` and requires exit 0 with nothing on stderr.
        private func emit(_ redis: E2ERedisServer, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
            let result = try switchboardEmit(["--redis", redis.url] + arguments)
            #expect(result.status == 0 && result.stderr.isEmpty,
                    "switchboard emit \(arguments): exit \(result.status), stderr \(result.stderr.debugDescription)",
                    sourceLocation: sourceLocation)
        }

        @Test("switchboard emit: room (with --exclude), client, user and broadcast envelopes reach the clients")
        func emitEveryType() throws {
            try withTwoInstances { redis, a, b in
                let scene = try RoomScene(redis: redis, a: a, b: b)
                let everyone = scene.everyone

                try emit(redis, ["--type", "room", "--target", "public-x", "--event", "E", "--data", #"{"a":1}"#,
                                 "--exclude", scene.b1.id])
                try expectDelivered("E", object([("a", 1)]), to: [scene.a1, scene.b3], everyone: everyone, redis: redis)

                try emit(redis, ["--type", "room", "--target", "public-x", "--event", "E2", "--data", "[1,\"two\",null]"])
                try expectDelivered("E2", [1, "two", .null], to: [scene.a1, scene.b1, scene.b3], everyone: everyone, redis: redis)

                try emit(redis, ["--type", "client", "--target", scene.b2.id, "--event", "direct", "--data", "\"hi\""])
                try expectDelivered("direct", "hi", to: [scene.b2], everyone: everyone, redis: redis)

                try emit(redis, ["--type", "user", "--target", "u1", "--event", "to-u1", "--data", "null"])
                try expectDelivered("to-u1", .null, to: [scene.a1, scene.b2], everyone: everyone, redis: redis)

                try emit(redis, ["--type", "broadcast", "--event", "news", "--data", #"{"n":2}"#,
                                 "--exclude", "\(scene.a2.id),\(scene.b3.id)"])
                try expectDelivered("news", object([("n", 2)]), to: [scene.a1, scene.b1, scene.b2], everyone: everyone, redis: redis)

                try emit(redis, ["--type=broadcast", "--event=everyone", "--data=true"])
                try expectDelivered("everyone", true, to: everyone, everyone: everyone, redis: redis)
            }
        }

        @Test("switchboard emit: bad arguments exit 1 with a message and publish nothing")
        func emitBadArguments() throws {
            try withTwoInstances { redis, a, b in
                let scene = try RoomScene(redis: redis, a: a, b: b)
                let url = redis.url
                let cases: [[String]] = [
                    [],
                    ["--type", "room", "--target", "public-x", "--event", "E", "--data", "1"],
                    ["--redis", url, "--type", "rooms", "--target", "public-x", "--event", "E", "--data", "1"],
                    ["--redis", url, "--type", "room", "--event", "E", "--data", "1"],
                    ["--redis", url, "--type", "room", "--target", "public-x", "--data", "1"],
                    ["--redis", url, "--type", "room", "--target", "public-x", "--event", "E"],
                    ["--redis", url, "--type", "room", "--target", "public-x", "--event", "E", "--data", "{nope"],
                    ["--redis", url, "--type", "client", "--target", scene.b2.id, "--event", "E", "--data", "1", "--exclude", scene.b2.id],
                    ["--redis", url, "--type", "user", "--target", "u1", "--event", "E", "--data", "1", "--exclude", "x"],
                    ["--redis", url, "--type", "broadcast", "--target", "x", "--event", "E", "--data", "1"],
                    ["--redis", url, "--type", "broadcast", "--event", "E", "--data", "1", "--bogus", "x"],
                    ["--redis", url, "--type", "broadcast", "--event", "E", "--data", "1", "stray"],
                ]
                for arguments in cases {
                    let result = try switchboardEmit(arguments)
                    #expect(result.status == 1, "switchboard emit \(arguments): exit \(result.status), expected 1")
                    #expect(result.stderr.contains("switchboard emit: "),
                            "switchboard emit \(arguments): stderr \(result.stderr.debugDescription) names no problem")
                }
                try expectFence(scene.everyone, redis: redis)
            }
        }

        @Test("switchboard emit: an empty or malformed --redis says \"Invalid redis connection!\" first, then the detail")
        func emitInvalidRedisURL() throws {
            let cases: [(url: String, detail: String)] = [
                ("", "the Redis URL is empty"),
                ("http://127.0.0.1:6379", "unsupported scheme 'http://'"),
                ("redis://127.0.0.1:99999", "invalid port '99999'"),
                ("127.0.0.1:6379", "is not a Redis URL"),
            ]
            for (url, detail) in cases {
                let result = try switchboardEmit(["--redis", url, "--type", "broadcast", "--event", "E", "--data", "1"])
                #expect(result.status == 1, "--redis \(url.debugDescription): exit \(result.status)")
                #expect(result.stderr.hasPrefix("Invalid redis connection! (--redis: ") && result.stderr.contains(detail),
                        "--redis \(url.debugDescription): stderr \(result.stderr.debugDescription)")
            }
        }

        @Test("switchboard emit: an unreachable Redis exits 1 naming the address")
        func emitUnreachable() throws {
            let port = e2eFreePort()
            let started = ContinuousClock.now
            let result = try switchboardEmit(["--redis", "redis://127.0.0.1:\(port)", "--type", "broadcast", "--event", "E",
                                              "--data", "1"])
            #expect(result.status == 1, "exit \(result.status); stderr \(result.stderr.debugDescription)")
            #expect(result.stderr.contains("127.0.0.1:\(port)"), "stderr \(result.stderr.debugDescription)")
            #expect(seconds(since: started) < 10)
        }

        @Test("Emitter (library): every kind of envelope reaches the clients on both instances")
        func libraryEmitter() throws {
            try withTwoInstances { redis, a, b in
                let scene = try RoomScene(redis: redis, a: a, b: b)
                let everyone = scene.everyone
                let emitter = try Emitter(redis: redis.url)
                defer { emitter.close() }
                try emitter.start()

                emitter.toRoom("public-x", event: "lib-room", data: 1, exclude: [scene.a1.id])
                try expectDelivered("lib-room", 1, to: [scene.b1, scene.b3], everyone: everyone, redis: redis)

                emitter.toClient(scene.a2.id, event: "lib-client", data: "x")
                try expectDelivered("lib-client", "x", to: [scene.a2], everyone: everyone, redis: redis)

                emitter.toUser("u1", event: "lib-user", data: nil)
                // `data` absent: the client sees no data member or null.
                for peer in [scene.a1, scene.b2] {
                    let message = try peer.client.receiveJSON(timeout: 3)
                    #expect(message.event == "lib-user" && (message.data == nil || message.data == .null), "\(peer.name): \(message)")
                }
                try expectFence(everyone, redis: redis)

                emitter.broadcast(event: "lib-all", data: object([("k", "v")]), exclude: [scene.b2.id])
                try expectDelivered("lib-all", object([("k", "v")]), to: [scene.a1, scene.a2, scene.b1, scene.b3], everyone: everyone, redis: redis)

                // Publishes keep their order.
                for index in 0..<50 { emitter.toClient(scene.b1.id, event: "seq", data: JSONValue(index)) }
                for index in 0..<50 { try scene.b1.client.expectMessage("seq", JSONValue(index), who: "b1 #\(index)") }
                try expectFence(everyone, redis: redis)
            }
        }

        @Test("Emitter (library): publishes made just before close() are delivered (publish and exit)")
        func libraryEmitterFlushesOnClose() throws {
            try withTwoInstances { redis, a, b in
                let a1 = try Peer(a, token: "user:u1", name: "a1"), b1 = try Peer(b, token: "user:u2", name: "b1")
                let emitter = try Emitter(redis: redis.url)
                try emitter.start()
                for index in 0..<20 { emitter.broadcast(event: "last-words", data: JSONValue(index)) }
                emitter.close()
                // close() has returned: whatever the emitter sent is in Redis before this fence.
                let fence = uniqueData("fence")
                try redis.publish("ws:broadcast", redisEnvelope(type: "broadcast", event: "fence", data: fence))
                for peer in [a1, b1] {
                    var got: [JSONValue] = []
                    while true {
                        let message = try peer.client.receiveJSON(timeout: 3)
                        if message.event == "fence", message.data == fence { break }
                        got.append(message.data ?? .null)
                    }
                    #expect(got == (0..<20).map { JSONValue($0) },
                            "\(peer.name): \(got.count) of 20 publishes made before close() arrived: \(JSONValue.array(got).serialized())")
                }
            }
        }

        @Test("Emitter (library) and Server: an empty or malformed URL says \"Invalid redis connection!\" first, then the detail")
        func libraryEmitterBadURL() throws {
            #expect(throws: StartupError(message: "Invalid redis connection! (the Redis URL is empty)")) { try Emitter(redis: "") }
            #expect(throws: StartupError(message: "Invalid redis connection! (unsupported scheme 'http://'; expected redis://)")) {
                try Emitter(redis: "http://127.0.0.1:1")
            }
            #expect(throws: StartupError(message: "Invalid redis connection! (no host in Redis URL 'redis://')")) {
                try Emitter(redis: "redis://")
            }
            // The server parses its --redis the same way (start-up error on stderr, exit 1).
            let result = try Fixture.runToExit(["--redis", "http://127.0.0.1:1"])
            #expect(result.status == 1)
            #expect(result.stderr.hasPrefix("Invalid redis connection! (unsupported scheme 'http://'"), "\(result.stderr.debugDescription)")
        }
    }
}
