import Foundation
import SwitchboardBus
import TestSupport
import Testing

extension RedisServerTests {
    @Suite struct Cluster {
        /// `redis://` with the cluster's nodes in the order given.
        func url(_ cluster: RedisCluster, _ order: [Int]) throws -> RedisURL {
            try RedisURL("redis://" + order.map { "127.0.0.1:\(cluster.servers[$0].port)" }.joined(separator: ","))
        }

        @Test func busesOnDifferentNodesExchangeMessages() throws {
            let cluster = try RedisCluster()
            let nodes = cluster.servers.map(\.node)
            let inboxA = Inbox(), inboxB = Inbox()
            let a = try startedBus(try url(cluster, [0, 1, 2]), inbox: inboxA)
            let b = try startedBus(try url(cluster, [1, 2, 0]), inbox: inboxB)
            defer { a.close(); b.close() }
            #expect(a.stats.node == nodes[0])
            #expect(b.stats.node == nodes[1])

            a.publish(channel: "ws:room:x", message: utf8Bytes("from A"))
            #expect(inboxB.wait(for: "from A")?.channel == "ws:room:x")
            #expect(inboxA.wait(for: "from A") != nil)
            b.publish(channel: "ws:user:u", message: utf8Bytes("from B"))
            #expect(inboxA.wait(for: "from B")?.channel == "ws:user:u")
            // A third node, through the one-shot publisher.
            let count = try RedisPublisher.publish(url: RedisURL(nodes: [nodes[2]]), channel: "ws:broadcast",
                                                   message: utf8Bytes("from C"))
            #expect(count == 0) // PUBLISH counts the receiving node's own subscribers only
            #expect(inboxA.wait(for: "from C") != nil && inboxB.wait(for: "from C") != nil)
        }

        @Test func killingTheNodeABusIsOnFailsOverToTheNextNode() throws {
            let cluster = try RedisCluster()
            let nodes = cluster.servers.map(\.node)
            let inboxA = Inbox(), inboxB = Inbox()
            let logA = LogSink()
            let a = try startedBus(try url(cluster, [0, 1, 2]), inbox: inboxA, log: logA)
            let b = try startedBus(try url(cluster, [2, 0, 1]), inbox: inboxB)
            defer { a.close(); b.close() }
            a.publish(channel: "ws:broadcast", message: utf8Bytes("before"))
            #expect(inboxB.wait(for: "before") != nil)

            let killed = Date()
            cluster.servers[0].kill9()
            let line = logA.wait(forLineContaining: "resubscribed after", timeout: 15)
            #expect(line != nil)
            let failoverMS = milliseconds(since: killed)
            #expect(a.stats.node == nodes[1])
            #expect(a.stats.reconnects == 1)
            #expect(pollUntil(timeout: 10) { a.stats.connected })
            a.publish(channel: "ws:room:r", message: utf8Bytes("A after failover"))
            #expect(inboxB.wait(for: "A after failover") != nil)
            b.publish(channel: "ws:client:c", message: utf8Bytes("B after failover"))
            #expect(inboxA.wait(for: "B after failover") != nil)
            print("[measure] cluster failover: A resubscribed on \(nodes[1]) \(failoverMS) ms after kill -9 of \(nodes[0]); \(line ?? "")")
        }
    }
}
