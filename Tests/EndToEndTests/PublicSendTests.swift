// The public `Server.send(destination:topic:data:)` through the fixture's `send` probe
// (PROTOCOL.md 7): without data or topic it does nothing at all, neither locally nor on Redis;
// an explicit null is sent. A plain Redis subscriber sees what is published.
import TestSupport
import Foundation
import Switchboard
import Testing

extension EndToEnd {
    @Suite("Server.send: absent data is a no-op, null is sent (PROTOCOL.md 7)") struct PublicSend {
        @Test("send without data or topic delivers and publishes nothing, to any destination")
        func absentDataSendsNothing() throws {
            try withSubscribedFixture { _, subscriber, server in
                let (a, _) = try server.authenticatedClient(token: "user:a")
                let (b, bInfo) = try server.authenticatedClient(token: "user:b")
                try a.join(["public-x"])
                try a.waitUntilMember(of: "public-x")
                try drainPublishes(subscriber, sender: a, readers: [a, b])

                let noOps: [[(String, JSONValue)]] = [
                    [("topic", "t")],
                    [("destination", .string(bInfo.id)), ("topic", "t")],
                    [("destination", "public-x"), ("topic", "t")],
                    [("destination", "public-elsewhere"), ("topic", "t")],
                    [("topic", ""), ("data", 1)],
                    [("data", 1)],
                    [("destination", .string(bInfo.id)), ("data", 1)],
                ]
                for (index, members) in noOps.enumerated() {
                    try a.send("send", object(members))
                    // The same client's next send is published and delivered after it, in order:
                    // the marker arriving first proves the no-op sent nothing.
                    let marker = object([("after", .string(object(members).serialized())), ("n", .number(JSONNumber(index)))])
                    try a.send("send", object([("topic", "marker"), ("data", marker)]))
                    for client in [a, b] {
                        try client.expectMessage("marker", marker, who: "after \(object(members).serialized())")
                    }
                    let (channel, envelope) = try subscriber.nextEnvelope()
                    #expect(channel == "ws:broadcast" && envelope["event"] == "marker" && envelope["data"] == marker,
                            "after \(object(members).serialized()) Redis got \(channel) \(envelope.serialized())")
                }
            }
        }

        @Test("send with an explicit null delivers {\"data\":null} and publishes it")
        func explicitNullIsSent() throws {
            try withSubscribedFixture { _, subscriber, server in
                let (a, _) = try server.authenticatedClient(token: "user:a")
                let (b, bInfo) = try server.authenticatedClient(token: "user:b")
                try drainPublishes(subscriber, sender: a, readers: [a, b])

                try a.send("send", object([("topic", "t"), ("data", .null)]))
                for client in [a, b] {
                    let message = try client.receiveJSON()
                    #expect(message.event == "t" && message.data == .null && message.raw.contains(#""data":null"#), "\(message.raw)")
                }
                var (channel, envelope) = try subscriber.nextEnvelope()
                #expect(channel == "ws:broadcast" && envelope["event"] == "t" && envelope["data"] == .null,
                        "\(channel) \(envelope.serialized())")

                try a.send("send", object([("destination", .string(bInfo.id)), ("topic", "direct"), ("data", .null)]))
                let direct = try b.receiveJSON()
                #expect(direct.event == "direct" && direct.data == .null, "\(direct.raw)")
                (channel, envelope) = try subscriber.nextEnvelope()
                #expect(channel == "ws:client:\(bInfo.id)" && envelope["type"] == "client" && envelope["data"] == .null,
                        "\(channel) \(envelope.serialized())")

                try a.send("send", object([("destination", "public-elsewhere"), ("topic", "far"), ("data", 5)]))
                (channel, envelope) = try subscriber.nextEnvelope()
                #expect(channel == "ws:room:public-elsewhere" && envelope["target"] == "public-elsewhere" && envelope["data"] == 5,
                        "\(channel) \(envelope.serialized())")
                try a.expectNoMessage(probe: .echo)
            }
        }
    }
}

/// A redis-server, a subscriber to every `ws:` channel on it, and a fixture on that Redis.
private func withSubscribedFixture(_ body: (E2ERedisServer, E2ERedisSubscriber, Fixture) throws -> Void) throws {
    let redis = try E2ERedisServer()
    let subscriber = try E2ERedisSubscriber(port: redis.port)
    defer { subscriber.close() }
    let server = try startedFixture(["--redis", redis.url])
    defer { server.kill() }
    try body(redis, subscriber, server)
}

/// Skips what setup published (membership probes): `sender` broadcasts a fence, which every
/// reader and the subscriber then see last.
private func drainPublishes(_ subscriber: E2ERedisSubscriber, sender: WSClient, readers: [WSClient]) throws {
    let fence = uniqueData("fence")
    try sender.send("send", object([("topic", "fence"), ("data", fence)]))
    for reader in readers { try reader.skipUntil("fence", fence, timeout: 3) }
    while true {
        let (_, envelope) = try subscriber.nextEnvelope()
        if envelope["event"] == "fence", envelope["data"] == fence { return }
    }
}
