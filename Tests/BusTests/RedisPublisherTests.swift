import Foundation
import Glibc
import SwitchboardBus
import TestSupport
import Testing

extension RedisServerTests {
    @Suite struct Publisher {
        @Test func publishesOnceAndReturnsTheReceiverCount() throws {
            let server = try RedisServer()
            #expect(try RedisPublisher.publish(url: server.busURL, channel: "ws:broadcast", message: utf8Bytes("nobody")) == 0)
            let inboxA = Inbox(), inboxB = Inbox()
            let a = try startedBus(server.busURL, inbox: inboxA)
            let b = try startedBus(server.busURL, inbox: inboxB)
            defer { a.close(); b.close() }
            let envelope = utf8Bytes(#"{"serverId":"emitter","type":"broadcast","event":"e","data":{"ü":1}}"#)
            #expect(try RedisPublisher.publish(url: server.busURL, channel: "ws:broadcast", message: envelope) == 2)
            #expect(inboxA.wait { $0.count == 1 } && inboxB.wait { $0.count == 1 })
            #expect(inboxA.messages.first?.bytes == envelope)
        }

        @Test func unreachableRedisFailsFastWithTheAddressAndCause() {
            let port = freePort()
            let started = Date()
            #expect {
                try RedisPublisher.publish(url: RedisURL(nodes: [RedisURL.Node(host: "127.0.0.1", port: port)]),
                                           channel: "ws:broadcast", message: [])
            } throws: { error in
                (error as? BusError)?.message == "cannot connect to Redis at 127.0.0.1:\(port): Connection refused"
            }
            #expect(milliseconds(since: started) < 1000)
        }

        @Test func unknownHostIsAClearError() {
            #expect {
                try RedisPublisher.publish(url: RedisURL(nodes: [RedisURL.Node(host: "no-such-host.invalid", port: 6379)]),
                                           channel: "ws:broadcast", message: [], timeout: .seconds(2))
            } throws: { error in
                (error as? BusError)?.message.hasPrefix("cannot connect to Redis at no-such-host.invalid:6379: cannot resolve") == true
            }
        }

        @Test func aServerThatNeverAnswersTimesOutInsteadOfHanging() throws {
            // Accepted by the kernel's backlog, never read: connect succeeds, PUBLISH gets no reply.
            let silent = try FakeRedis()
            let started = Date()
            #expect {
                try RedisPublisher.publish(url: RedisURL(nodes: [RedisURL.Node(host: "127.0.0.1", port: silent.port)]),
                                           channel: "ws:broadcast", message: utf8Bytes("x"), timeout: .milliseconds(300))
            } throws: { error in
                (error as? BusError)?.message == "PUBLISH to Redis at 127.0.0.1:\(silent.port) failed: no reply from Redis in time"
            }
            let elapsed = milliseconds(since: started)
            #expect(elapsed >= 250 && elapsed < 1500)
        }

        @Test func triesTheNextNodeWhenTheFirstIsDown() throws {
            let server = try RedisServer()
            let down = RedisURL.Node(host: "127.0.0.1", port: freePort())
            let url = RedisURL(nodes: [down, server.node])
            let inbox = Inbox()
            let bus = try startedBus(server.busURL, inbox: inbox)
            defer { bus.close() }
            #expect(try RedisPublisher.publish(url: url, channel: "ws:room:r", message: utf8Bytes("second node")) == 1)
            #expect(inbox.wait(for: "second node") != nil)
        }

        @Test func wrongPasswordNamesTheRejectedCommand() throws {
            let server = try RedisServer(arguments: ["--requirepass", "right"])
            #expect {
                try RedisPublisher.publish(url: RedisURL("redis://:wrong@127.0.0.1:\(server.port)"),
                                           channel: "ws:broadcast", message: [])
            } throws: { error in
                (error as? BusError)?.message.hasPrefix("cannot connect to Redis at 127.0.0.1:\(server.port): AUTH failed: WRONGPASS") == true
            }
            #expect {
                try RedisPublisher.publish(url: RedisURL("redis://127.0.0.1:\(server.port)"), channel: "ws:broadcast", message: [])
            } throws: { error in
                (error as? BusError)?.message.hasPrefix("Redis at 127.0.0.1:\(server.port) rejected PUBLISH: NOAUTH") == true
            }
        }
    }
}
