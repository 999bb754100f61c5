import Foundation
import SwitchboardBus
import TestSupport
import Testing

extension RedisServerTests {
    /// The publisher sends every message waiting in the buffer in one pipelined write, and the
    /// subscriber drops its own echoes in the received bytes: order and completeness must hold
    /// through both, with a real redis-server.
    @Suite struct Pipelining {
        /// A burst published while Redis is stalled (SIGSTOP) waits in the buffer; once Redis
        /// answers again it goes out as the batch in flight plus one more write, in order, none
        /// lost. One write per message would be 300 batches.
        @Test func aBurstWhileRedisStallsGoesOutInTwoWritesInOrderWithNothingLost() throws {
            let server = try RedisServer()
            let inboxB = Inbox()
            let a = try startedBus(server.busURL, inbox: Inbox())
            let b = try startedBus(server.busURL, inbox: inboxB)
            defer { a.close(); b.close() }
            a.publish(channel: "ws:broadcast", message: utf8Bytes("warm-up"))
            #expect(inboxB.wait(for: "warm-up") != nil)
            #expect(pollUntil(timeout: 5) { a.stats.batches == 1 })

            server.freeze()
            // Stopped once a PING goes unanswered (it is answered after the thaw: harmless).
            #expect(pollUntil(timeout: 5) { rawRedis(port: server.port, ["PING"], timeout: 0.2) == nil })
            let count = 300
            let sent = (0..<count).map { i in (i % 3 == 0 ? "ws:broadcast" : "ws:room:r\(i % 5)", "m\(i)") }
            for (channel, text) in sent { a.publish(channel: channel, message: utf8Bytes(text)) }
            #expect(a.stats.batches == 1)  // nothing answered while Redis is stopped
            server.thaw()

            #expect(inboxB.wait(timeout: 20) { $0.count == count + 1 })
            #expect(Array(inboxB.messages.dropFirst()) == sent.map { Inbox.Message(channel: $0.0, bytes: utf8Bytes($0.1)) })
            #expect(pollUntil(timeout: 5) { a.stats.published == count + 1 })
            let stats = a.stats
            #expect(stats.dropped == 0 && stats.buffered == 0)
            #expect(stats.batches - 1 <= 2, "the burst took \(stats.batches - 1) writes")
        }

        /// Hundreds of a bus's own echoes arrive in few reads and are dropped in place, while
        /// another bus's messages interleaved with them are still delivered, all of them and in
        /// their order; every message read is counted as received. (900: the bus remembers its
        /// last 1024 unechoed publishes; a longer burst in flight lets the oldest echoes through,
        /// which a server ignores by their serverId.)
        @Test func ownEchoesAreDroppedInBulkAndOthersMessagesAmongThemArriveInOrder() throws {
            let server = try RedisServer()
            let inboxA = Inbox(), inboxB = Inbox()
            let a = try startedBus(server.busURL, inbox: inboxA, options: RedisBusOptions(dropsOwnEchoes: true))
            let b = try startedBus(server.busURL, inbox: inboxB)
            defer { a.close(); b.close() }
            var fromB: [String] = []
            for i in 0..<900 {
                // Channels and patterns both: echoes come back as `message` and `pmessage`.
                a.publish(channel: i % 2 == 0 ? "ws:broadcast" : "ws:user:u\(i % 9)", message: utf8Bytes("own \(i)"))
                if i % 30 == 0 {
                    fromB.append("b\(i)")
                    b.publish(channel: i % 60 == 0 ? "ws:broadcast" : "ws:room:x", message: utf8Bytes("b\(i)"))
                }
            }
            #expect(inboxB.wait(timeout: 30) { $0.count == 900 + fromB.count })
            #expect(pollUntil(timeout: 10) { a.stats.received == 900 + fromB.count })
            #expect(inboxA.messages.map(\.text) == fromB)
            #expect(inboxB.messages.filter { $0.text.hasPrefix("own ") }.map(\.text) == (0..<900).map { "own \($0)" })
        }
    }
}
