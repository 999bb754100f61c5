import Foundation
import Glibc
import SwitchboardBus
import TestSupport
import Testing

/// Everything that starts redis-server runs one test at a time (2 cores, timing-sensitive cases).
@Suite(.serialized) struct RedisServerTests {}

extension RedisServerTests {
    @Suite struct Bus {
        @Test func publishesReachBothBusesOnTheExactChannelForTheChannelAndEachPattern() throws {
            let server = try RedisServer()
            let inboxA = Inbox(), inboxB = Inbox()
            let a = try startedBus(server.busURL, inbox: inboxA)
            let b = try startedBus(server.busURL, inbox: inboxB)
            defer { a.close(); b.close() }

            a.publish(channel: "not:subscribed", message: utf8Bytes("ignored"))
            let sent = [("ws:broadcast", "to all"), ("ws:room:lobby", "to a room"),
                        ("ws:client:c-42", "to a client"), ("ws:user:u:7", "to a user")]
            for (channel, text) in sent { a.publish(channel: channel, message: utf8Bytes(text)) }
            let expected = sent.map { Inbox.Message(channel: $0.0, bytes: utf8Bytes($0.1)) }
            // A hears itself, as with real Redis; per-publisher order holds, so the unmatched
            // channel would have arrived before these.
            #expect(inboxA.wait { $0.count >= 4 })
            #expect(inboxB.wait { $0.count >= 4 })
            #expect(inboxA.messages == expected)
            #expect(inboxB.messages == expected)
            #expect(pollUntil(timeout: 5) { a.stats.published == 5 })
            #expect(b.stats.received == 4 && b.stats.connected && b.stats.dropped == 0 && b.stats.node == server.node)
        }

        /// With `dropsOwnEchoes` a bus does not hand back what it published (the server would
        /// only parse and drop it), but still everything others publish, in order; the other bus
        /// (default options) hears everyone, itself included.
        @Test func dropsOwnEchoesSkipsOnlyTheBusesOwnMessages() throws {
            let server = try RedisServer()
            let inboxA = Inbox(), inboxB = Inbox()
            let a = try startedBus(server.busURL, inbox: inboxA, options: RedisBusOptions(dropsOwnEchoes: true))
            let b = try startedBus(server.busURL, inbox: inboxB)
            defer { a.close(); b.close() }

            a.publish(channel: "not:subscribed", message: utf8Bytes("never comes back"))
            a.publish(channel: "ws:broadcast", message: utf8Bytes("a1"))
            a.publish(channel: "ws:room:r", message: utf8Bytes("a2"))
            #expect(inboxB.wait(for: "a2") != nil)
            b.publish(channel: "ws:broadcast", message: utf8Bytes("b1"))
            #expect(inboxA.wait(for: "b1") != nil)
            a.publish(channel: "ws:broadcast", message: utf8Bytes("a3"))
            a.publish(channel: "ws:broadcast", message: utf8Bytes("a3"))  // the same bytes twice
            #expect(inboxB.wait { $0.filter { $0.text == "a3" }.count == 2 })
            // A reads its subscription in Redis's order: its own echoes before B's last message.
            b.publish(channel: "ws:user:u", message: utf8Bytes("b-last"))
            #expect(inboxA.wait(for: "b-last") != nil)
            #expect(inboxB.wait(for: "b-last") != nil)  // B's own echo travels on B's socket: not ordered with A's
            #expect(inboxA.messages.map(\.text) == ["b1", "b-last"])
            #expect(inboxB.messages.map(\.text) == ["a1", "a2", "b1", "a3", "a3", "b-last"])
            #expect(a.stats.received == 6)  // its four echoes counted, then dropped
        }

        @Test func readyMeansSubscribedSoAPublishRightAfterReadyIsReceived() throws {
            let server = try RedisServer()
            for round in 0..<5 {
                let inbox = Inbox()
                let bus = try startedBus(server.busURL, inbox: inbox)
                defer { bus.close() }
                // PUBLISH answers how many subscribers got it: the pattern subscription counts.
                let receivers = try RedisPublisher.publish(url: server.busURL, channel: "ws:user:u\(round)",
                                                           message: utf8Bytes("right after ready"))
                #expect(receivers == 1)
                #expect(inbox.wait(for: "right after ready")?.channel == "ws:user:u\(round)")
            }
        }

        @Test func redisCLIPublishIsReceivedByteExact() throws {
            let server = try RedisServer()
            let inbox = Inbox()
            let bus = try startedBus(server.busURL, inbox: inbox)
            defer { bus.close() }
            let text = "héllo wörld ✓ 😀 日本"
            let published = try runProgram("/usr/bin/redis-cli", ["-p", String(server.port), "PUBLISH", "ws:room:ü", text])
            #expect(published.status == 0)
            let message = inbox.wait(for: text)
            #expect(message?.channel == "ws:room:ü")
            #expect(message?.bytes == utf8Bytes(text))

            // Arbitrary bytes (NUL, CR LF, invalid UTF-8) through stdin (`-x`).
            let binary: [UInt8] = [0, 1, 13, 10, 0xFF, 0xC3, 0x28, 36, 42, 13, 10] + Array(repeating: 0xAB, count: 100_000)
            let sent = try runProgram("/usr/bin/redis-cli", ["-p", String(server.port), "-x", "PUBLISH", "ws:broadcast"],
                                      stdin: binary)
            #expect(sent.status == 0)
            #expect(inbox.wait { $0.count == 2 })
            #expect(inbox.messages.last?.bytes == binary)
            #expect(inbox.messages.last?.channel == "ws:broadcast")
        }

        @Test func readyWaitsForEveryConfirmation() throws {
            let fake = try FakeRedis()
            let inbox = Inbox()
            let ready = OneShot<Result<Void, BusError>>()
            let bus = RedisBus(url: RedisURL(nodes: [RedisURL.Node(host: "127.0.0.1", port: fake.port)]),
                               channels: specChannels, patterns: specPatterns)
            defer { bus.close() }
            bus.start(receive: inbox.receive, ready: { ready.set($0) })
            let subscriber = try fake.acceptSubscriber(until: "ws:user:*")
            #expect(subscriber.request.contains("SUBSCRIBE") && subscriber.request.contains("PSUBSCRIBE"))
            // Three of four confirmations, then a message: it is delivered, ready has not fired.
            try fake.send(subscriber.fd, resp(["subscribe", "ws:broadcast"], count: 1)
                + resp(["psubscribe", "ws:room:*"], count: 2) + resp(["psubscribe", "ws:client:*"], count: 3)
                + resp(["message", "ws:broadcast", "probe"]))
            #expect(inbox.wait(for: "probe") != nil)
            #expect(ready.current == nil)
            #expect(bus.stats.connected == false)
            try fake.send(subscriber.fd, resp(["psubscribe", "ws:user:*"], count: 4))
            #expect(ready.wait().map { (try? $0.get()) != nil } == true)
            #expect(bus.stats.connected)
        }

        /// What one read of the subscription brings is one batch, in Redis's order (the server
        /// runs it in one loop turn and writes its fan-outs together); the next read, the next
        /// batch. Each of the fake's writes is one small send, which one read takes whole.
        @Test func theMessagesOfOneReadAreHandedOverAsOneBatch() throws {
            let fake = try FakeRedis()
            let batches = BatchInbox()
            let ready = OneShot<Result<Void, BusError>>()
            let bus = RedisBus(url: RedisURL(nodes: [RedisURL.Node(host: "127.0.0.1", port: fake.port)]),
                               channels: specChannels, patterns: specPatterns)
            defer { bus.close() }
            bus.start(receiveBatch: batches.receive, ready: { ready.set($0) })
            let subscriber = try fake.acceptSubscriber(until: "ws:user:*")
            try fake.send(subscriber.fd, resp(["subscribe", "ws:broadcast"], count: 1)
                + resp(["psubscribe", "ws:room:*"], count: 2) + resp(["psubscribe", "ws:client:*"], count: 3)
                + resp(["psubscribe", "ws:user:*"], count: 4))
            #expect(ready.wait().map { (try? $0.get()) != nil } == true)
            try fake.send(subscriber.fd, resp(["message", "ws:broadcast", "one"])
                + resp(["pmessage", "ws:room:*", "ws:room:r", "two"]) + resp(["message", "ws:broadcast", "three"]))
            #expect(batches.wait { $0.count == 1 })
            try fake.send(subscriber.fd, resp(["pmessage", "ws:user:*", "ws:user:u", "four"]))
            #expect(batches.wait { $0.count == 2 })
            #expect(batches.all == [
                [BusMessage(channel: "ws:broadcast", message: utf8Bytes("one")),
                 BusMessage(channel: "ws:room:r", message: utf8Bytes("two")),
                 BusMessage(channel: "ws:broadcast", message: utf8Bytes("three"))],
                [BusMessage(channel: "ws:user:u", message: utf8Bytes("four"))],
            ])
            #expect(bus.stats.received == 4)
        }

        @Test func killAndRestartReconnectsResubscribesAndFlushesTheOutagePublishes() throws {
            let server = try RedisServer()
            let inboxA = Inbox(), inboxB = Inbox()
            let logA = LogSink(), logB = LogSink()
            let a = try startedBus(server.busURL, inbox: inboxA, log: logA)
            let b = try startedBus(server.busURL, inbox: inboxB, log: logB)
            defer { a.close(); b.close() }
            a.publish(channel: "ws:broadcast", message: utf8Bytes("before"))
            #expect(inboxB.wait(for: "before") != nil)

            let killed = Date()
            server.kill9()
            #expect(logA.wait(forLineContaining: "lost connection") != nil)
            #expect(a.stats.connected == false)
            for i in 0..<5 { a.publish(channel: "ws:room:r", message: utf8Bytes("outage \(i)")) }
            #expect(a.stats.buffered == 5)

            try server.start()
            let restarted = Date()
            let resubscribed = logA.wait(forLineContaining: "resubscribed after", timeout: 15)
            #expect(resubscribed != nil)
            let resubscribedMS = milliseconds(since: restarted)
            // The outage publishes arrive, in order, after the reconnect (A hears itself).
            #expect(inboxA.wait(timeout: 15) { $0.filter { $0.text.hasPrefix("outage") }.count == 5 })
            #expect(inboxA.messages.filter { $0.text.hasPrefix("outage") }.map(\.text) == (0..<5).map { "outage \($0)" })
            let flushedMS = milliseconds(since: restarted)
            #expect(pollUntil(timeout: 15) { a.stats.connected && b.stats.connected })
            #expect(logB.wait(forLineContaining: "resubscribed after", timeout: 15) != nil)
            b.publish(channel: "ws:client:x", message: utf8Bytes("after"))
            #expect(inboxA.wait(for: "after") != nil)
            #expect(inboxB.wait(for: "after") != nil)
            #expect(a.stats.reconnects == 1 && b.stats.reconnects == 1)
            #expect(a.stats.dropped == 0)
            print("[measure] kill -9 + restart: server down \(Int(restarted.timeIntervalSince(killed) * 1000)) ms; "
                  + "A resubscribed \(resubscribedMS) ms after restart, outage publishes delivered \(flushedMS) ms "
                  + "after restart; \(resubscribed ?? "")")
        }

        @Test func aLongerOutageReconnectsWithinTheGrownBackoff() throws {
            let server = try RedisServer()
            let inbox = Inbox(), log = LogSink()
            let bus = try startedBus(server.busURL, inbox: inbox, log: log)
            defer { bus.close() }
            server.kill9()
            let killed = Date()
            // Wait for the subscriber's fifth failed attempt: its backoff has grown to about 1.6 s.
            let failures = { log.all.filter { $0.hasPrefix("redis subscriber: cannot connect") } }
            #expect(pollUntil(timeout: 15) { failures().count >= 5 })
            bus.publish(channel: "ws:broadcast", message: utf8Bytes("during"))
            try server.start()
            let restarted = Date()
            // The next attempt comes at most the last announced delay after it was announced.
            let announced = failures().last.flatMap { Int($0.split(separator: " ").dropLast().last ?? "") } ?? 0
            #expect(announced >= 400 && announced <= 5000)
            #expect(inbox.wait(for: "during", timeout: 10) != nil)
            let deliveredMS = milliseconds(since: restarted)
            #expect(deliveredMS < announced + 1000)
            let retries = log.all.filter { $0.contains("retrying in") }.map { $0.split(separator: " ").suffix(2).joined(separator: " ") }
            print("[measure] outage of \(milliseconds(since: killed) - deliveredMS) ms: delivered \(deliveredMS) ms after restart "
                  + "(last announced delay \(announced) ms); retry delays: \(retries); "
                  + "\(log.all.last { $0.contains("resubscribed") } ?? "")")
        }

        @Test func aFrozenServerIsDetectedByTheHealthCheckPing() throws {
            let server = try RedisServer()
            let inbox = Inbox(), log = LogSink()
            let options = RedisBusOptions(commandTimeout: .milliseconds(300), healthCheckInterval: .milliseconds(200))
            let bus = try startedBus(server.busURL, inbox: inbox, log: log, options: options)
            defer { bus.close() }
            server.freeze()
            let lost = log.wait(forLineContaining: "no reply to PING within 300 ms")
            #expect(lost != nil)
            #expect(bus.stats.connected == false)
            bus.publish(channel: "ws:room:r", message: utf8Bytes("after thaw"))
            server.thaw()
            #expect(log.wait(forLineContaining: "resubscribed after") != nil)
            #expect(inbox.wait(for: "after thaw") != nil)
            #expect(bus.stats.reconnects == 1)
        }

        @Test func perPublisherOrderHoldsUnderVolume() throws {
            let server = try RedisServer()
            let inboxA = Inbox(), inboxB = Inbox()
            let a = try startedBus(server.busURL, inbox: inboxA)
            let b = try startedBus(server.busURL, inbox: inboxB)
            defer { a.close(); b.close() }
            let count = 5_000
            let started = Date()
            for i in 0..<count { a.publish(channel: "ws:room:\(i % 7)", message: utf8Bytes(String(i))) }
            let enqueueMS = milliseconds(since: started)
            #expect(inboxB.wait(timeout: 30) { $0.count == count })
            let deliveredMS = milliseconds(since: started)
            #expect(inboxB.messages.map(\.text) == (0..<count).map(String.init))
            #expect(inboxB.messages.map(\.channel) == (0..<count).map { "ws:room:\($0 % 7)" })
            #expect(a.stats.dropped == 0)
            #expect(pollUntil(timeout: 5) { a.stats.published == count })
            print("[measure] \(count) publishes: enqueued in \(enqueueMS) ms, all delivered to B in \(deliveredMS) ms (debug build)")
        }

        @Test func failFastWithRedisDownFailsReadyWithAClearError() throws {
            let port = freePort()
            let log = LogSink()
            let bus = RedisBus(url: RedisURL(nodes: [RedisURL.Node(host: "127.0.0.1", port: port)]),
                               channels: specChannels, patterns: specPatterns,
                               options: RedisBusOptions(failFast: true), log: log.log)
            defer { bus.close() }
            let ready = OneShot<Result<Void, BusError>>()
            let started = Date()
            bus.start(receive: { _, _ in }, ready: { ready.set($0) })
            let result = ready.wait(timeout: 5)
            #expect(milliseconds(since: started) < 2000)
            guard case .failure(let error) = result else {
                Issue.record("expected a failure, got \(String(describing: result))")
                return
            }
            #expect(error.message == "cannot connect to Redis at 127.0.0.1:\(port): Connection refused")
        }

        @Test func redisDownAtStartRetriesThenBecomesReadyAndOverflowDropsTheOldest() throws {
            let server = try RedisServer(start: false)
            let inbox = Inbox(), log = LogSink()
            let bus = RedisBus(url: server.busURL, channels: specChannels, patterns: specPatterns,
                               options: RedisBusOptions(bufferCapacity: 5), log: log.log)
            defer { bus.close() }
            let ready = OneShot<Result<Void, BusError>>()
            bus.start(receive: inbox.receive, ready: { ready.set($0) })
            for i in 0..<8 { bus.publish(channel: "ws:broadcast", message: utf8Bytes("m\(i)")) }
            #expect(bus.stats.dropped == 3)
            #expect(bus.stats.buffered == 5)
            #expect(log.wait(forLineContaining: "publish buffer full (5 messages)") != nil)
            let failure = log.wait(forLineContaining: "cannot connect to Redis at 127.0.0.1:\(server.port): Connection refused; retrying in")
            #expect(failure != nil)
            #expect(ready.current == nil)

            try server.start()
            #expect(ready.wait(timeout: 15).map { (try? $0.get()) != nil } == true)
            // The five newest survive, in order.
            #expect(inbox.wait { $0.count == 5 })
            #expect(inbox.messages.map(\.text) == ["m3", "m4", "m5", "m6", "m7"])
            #expect(pollUntil(timeout: 5) { bus.stats.published == 5 })
            #expect(bus.stats.dropped == 3 && bus.stats.reconnects == 0)
            #expect(log.wait(forLineContaining: "3 message(s) were dropped while it was full") != nil)
        }

        @Test func closeIsPromptWhileRetryingAndFailsAPendingReady() throws {
            let port = freePort()
            let log = LogSink()
            let bus = RedisBus(url: RedisURL(nodes: [RedisURL.Node(host: "127.0.0.1", port: port)]),
                               channels: specChannels, patterns: specPatterns,
                               options: RedisBusOptions(backoff: RedisBackoff(initial: .seconds(5), maximum: .seconds(5))),
                               log: log.log)
            let ready = OneShot<Result<Void, BusError>>()
            bus.start(receive: { _, _ in }, ready: { ready.set($0) })
            // Both threads are now in a backoff of 2.5 to 5 s.
            #expect(log.wait(forLineContaining: "redis subscriber: cannot connect") != nil)
            #expect(log.wait(forLineContaining: "redis publisher: cannot connect") != nil)
            let started = Date()
            bus.close()
            #expect(milliseconds(since: started) < 500)
            guard case .failure(let error) = ready.current else {
                Issue.record("ready should have failed")
                return
            }
            #expect(error.message == "the Redis bus was closed before its subscriptions were confirmed")
        }

        @Test func closeWhileConnectedStopsDeliveryPromptly() throws {
            let server = try RedisServer()
            let inbox = Inbox()
            let bus = try startedBus(server.busURL, inbox: inbox)
            bus.publish(channel: "ws:broadcast", message: utf8Bytes("one"))
            #expect(inbox.wait(for: "one") != nil)
            let started = Date()
            bus.close()
            #expect(milliseconds(since: started) < 500)
            // The subscription is gone once close() returns.
            #expect(try RedisPublisher.publish(url: server.busURL, channel: "ws:broadcast", message: utf8Bytes("two")) == 0)
            bus.publish(channel: "ws:broadcast", message: utf8Bytes("three"))
            #expect(bus.stats.buffered == 0)
            #expect(inbox.messages.count == 1)
        }

        @Test func authAndSelectFromTheURL() throws {
            let server = try RedisServer(arguments: ["--requirepass", "s3cr:et"])
            let node = "127.0.0.1:\(server.port)"
            let inbox = Inbox()
            let bus = try startedBus(try RedisURL("redis://:s3cr%3Aet@\(node)/2"), inbox: inbox)
            defer { bus.close() }
            let acl = try RedisURL("redis://default:s3cr%3Aet@\(node)")
            #expect(try RedisPublisher.publish(url: acl, channel: "ws:room:a", message: utf8Bytes("authed")) == 1)
            #expect(inbox.wait(for: "authed") != nil)

            let log = LogSink()
            let wrong = RedisBus(url: try RedisURL("redis://:nope@\(node)"), channels: specChannels,
                                 patterns: specPatterns, options: RedisBusOptions(failFast: true), log: log.log)
            defer { wrong.close() }
            let ready = OneShot<Result<Void, BusError>>()
            wrong.start(receive: { _, _ in }, ready: { ready.set($0) })
            guard case .failure(let error) = ready.wait() else {
                Issue.record("wrong password should fail")
                return
            }
            #expect(error.message.hasPrefix("cannot connect to Redis at \(node): AUTH failed: WRONGPASS"))
        }
    }
}

/// RESP for a pub/sub push: bulk strings, then an optional integer (the subscription count).
func resp(_ parts: [String], count: Int? = nil) -> [UInt8] {
    var text = "*\(parts.count + (count == nil ? 0 : 1))\r\n"
    for part in parts { text += "$\(part.utf8.count)\r\n\(part)\r\n" }
    if let count { text += ":\(count)\r\n" }
    return utf8Bytes(text)
}

/// A listening socket that speaks just enough RESP for a test to control confirmations.
final class FakeRedis {
    let listener: Int32
    let port: Int
    private var accepted: [Int32] = []

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 8) == 0 else {
            close(listener)
            throw TestFailure("fake listen failed")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        for fd in accepted { close(fd) }
        close(listener)
    }

    /// Accepts connections until one has sent a request containing `marker` (the subscriber).
    func acceptSubscriber(until marker: String, timeout: Double = 10) throws -> (fd: Int32, request: String) {
        let deadline = Date().addingTimeInterval(timeout)
        var requests: [Int32: [UInt8]] = [:]
        while Date() < deadline {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
                + accepted.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard Glibc.poll(&fds, nfds_t(fds.count), 100) >= 0 else { break }
            if fds[0].revents != 0 { accepted.append(accept(listener, nil, nil)) }
            for entry in fds.dropFirst() where entry.revents != 0 {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = recv(entry.fd, &buffer, buffer.count, 0)
                if n > 0 { requests[entry.fd, default: []] += buffer[..<n] }
                let text = String(decoding: requests[entry.fd] ?? [], as: UTF8.self)
                if text.contains(marker) { return (entry.fd, text) }
            }
        }
        throw TestFailure("no subscriber request with \(marker)")
    }

    func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        guard Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
            throw TestFailure("fake send failed")
        }
    }
}
