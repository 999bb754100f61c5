import SwitchboardDriverSupport
import CHiredis
import Glibc

/// A thread-safe snapshot of a `RedisBus`.
public struct RedisBusStats: Sendable, Equatable {
    /// Every subscription is confirmed and the publishing connection is up.
    public var connected: Bool
    /// Times every subscription was restored after the subscriber lost its connection.
    public var reconnects: Int
    /// Messages Redis accepted (`PUBLISH` answered).
    public var published: Int
    /// Messages lost: the oldest when the buffer was full, or a `PUBLISH` Redis rejected.
    public var dropped: Int
    /// Messages handed to `receive`.
    public var received: Int
    /// Messages waiting in the publish buffer.
    public var buffered: Int
    /// The node the subscriber is on while subscribed.
    public var node: RedisURL.Node?
    /// Pipelined batches Redis answered in full: every message waiting when the publisher takes
    /// a batch goes out in one write, so published / batches is how many shared a write.
    public var batches: Int

    public init(connected: Bool, reconnects: Int, published: Int, dropped: Int, received: Int, buffered: Int,
                node: RedisURL.Node? = nil, batches: Int = 0) {
        self.connected = connected
        self.reconnects = reconnects
        self.published = published
        self.dropped = dropped
        self.received = received
        self.buffered = buffered
        self.node = node
        self.batches = batches
    }
}

public struct RedisBusOptions: Sendable {
    /// Messages kept while Redis is unreachable; when full, the oldest is dropped and counted.
    public var bufferCapacity: Int
    /// Fail `ready` with the first failure instead of retrying until Redis answers.
    public var failFast: Bool
    public var connectTimeout: Duration
    /// Limit for any awaited reply: AUTH/SELECT, subscription confirmations, a PUBLISH batch,
    /// a health-check PING.
    public var commandTimeout: Duration
    /// After this long without traffic the subscriber PINGs Redis, so a dead peer that sent no
    /// FIN is noticed; nil disables it.
    public var healthCheckInterval: Duration?
    public var backoff: RedisBackoff
    /// Do not hand back this bus's own messages when its subscription reads them: Redis returns
    /// a publisher's messages to its own subscriptions in publish order, so a message that is
    /// byte for byte one of the last ones published (and not yet seen) is dropped on the bus
    /// thread, before it costs a copy, a hop to the loop and a parse (a server ignores its own
    /// messages anyway). Off by default: a plain bus hears itself, as a Redis client does.
    public var dropsOwnEchoes: Bool

    public init(bufferCapacity: Int = 10_000, failFast: Bool = false, connectTimeout: Duration = .seconds(2),
                commandTimeout: Duration = .seconds(5), healthCheckInterval: Duration? = .seconds(15),
                backoff: RedisBackoff = RedisBackoff(), dropsOwnEchoes: Bool = false) {
        self.bufferCapacity = bufferCapacity
        self.failFast = failFast
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.healthCheckInterval = healthCheckInterval
        self.backoff = backoff
        self.dropsOwnEchoes = dropsOwnEchoes
    }
}

/// Redis pub/sub (PROTOCOL.md 8) over two connections, each on its own thread:
/// - the subscriber `SUBSCRIBE`s `channels` and `PSUBSCRIBE`s `patterns`, calls `ready` once
///   Redis has confirmed every one, and hands each `message`/`pmessage` to `receive` (with the
///   actual channel);
/// - the publisher drains a bounded FIFO that `publish` appends to without blocking.
///
/// A lost connection is retried with backoff, round-robin over the URL's nodes (classic pub/sub
/// reaches every node of a Redis Cluster). The subscriber re-issues every subscription and logs
/// the outage. Publishes wait in the buffer while the subscription is down and are sent in order
/// once it is back; a `PUBLISH` whose reply was lost is sent again (at least once).
/// `close()` wakes both threads and joins them; no callback runs after it returns (unless it is
/// called from a callback).
public final class RedisBus: MessageBus {
    private let core: RedisBusCore

    public init(url: RedisURL, channels: [String], patterns: [String], options: RedisBusOptions = RedisBusOptions(),
                log: @escaping @Sendable (String) -> Void = { _ in }) {
        core = RedisBusCore(url: url, channels: channels, patterns: patterns, options: options, log: log)
    }

    deinit { core.close() }

    public func start(receive: @escaping @Sendable (_ channel: String, _ message: [UInt8]) -> Void,
                      ready: @escaping @Sendable (Result<Void, BusError>) -> Void) {
        core.start(receive: receive, ready: ready)
    }

    /// Appends to the buffer and returns; ignored after `close()`.
    public func publish(channel: String, message: [UInt8]) {
        core.enqueue(channel: channel, message: message)
    }

    public func close() { core.close() }

    public var stats: RedisBusStats { core.snapshot() }
}

final class RedisBusCore: @unchecked Sendable {
    private struct Pending {
        var channel: String
        var message: [UInt8]
    }

    private enum ConnectOutcome {
        case connected(RedisConnection)
        case failed(String)
        case closed
    }

    private static let maxBatchCount = 512
    private static let maxBatchBytes = 1 << 20

    let url: RedisURL
    let channels: [String]
    let patterns: [String]
    let options: RedisBusOptions
    let log: @Sendable (String) -> Void
    private let connectTimeout: UInt64
    private let commandTimeout: UInt64
    private let healthInterval: UInt64?
    private let monitor = ThreadMonitor()
    /// Readable once the bus is closed: every poll watches it.
    private let wakeRead: Int32
    private let wakeWrite: Int32

    // Guarded by `monitor`.
    private var queue: RedisRing<Pending>
    private var started = false
    private var closed = false
    private var threads: [pthread_t] = []
    private var readyCallback: (@Sendable (Result<Void, BusError>) -> Void)?
    private var everReady = false
    private var subscribed = false
    private var publisherUp = false
    private var publisherWaiting = false
    /// Bumped when the subscriber loses its connection: the publisher reconnects too.
    private var generation = 0
    /// Bumped whenever every subscription is confirmed: ends the publisher's backoff early.
    private var subscribedEpoch = 0
    /// The node index that last accepted a connection; rounds start there.
    private var cursor = 0
    private var node: RedisURL.Node?
    private var reconnects = 0
    private var published = 0
    private var dropped = 0
    private var received = 0
    private var batches = 0
    /// Drops since the buffer last overflowed, until it drains (nil: not overflowing).
    private var overflowDrops: Int?
    /// With `dropsOwnEchoes`: messages published and not yet read back, oldest first. Those
    /// that never come back (a channel nobody subscribes, an outage) are passed over when a
    /// later one does, or fall off the end.
    private var unechoed = RedisRing<[UInt8]>(capacity: 1024)
    /// How far into `unechoed` an arriving message is looked for.
    private static let echoWindow = 8

    init(url: RedisURL, channels: [String], patterns: [String], options: RedisBusOptions,
         log: @escaping @Sendable (String) -> Void) {
        self.url = url
        self.channels = channels
        self.patterns = patterns
        self.options = options
        self.log = log
        connectTimeout = options.connectTimeout.redisNanoseconds
        commandTimeout = options.commandTimeout.redisNanoseconds
        healthInterval = options.healthCheckInterval.map(\.redisNanoseconds)
        queue = RedisRing(capacity: options.bufferCapacity)
        var fds: [Int32] = [-1, -1]
        precondition(pipe(&fds) == 0, "pipe failed: \(redisErrnoText())")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
    }

    // MARK: Caller side

    func start(receive: @escaping @Sendable (String, [UInt8]) -> Void,
               ready: @escaping @Sendable (Result<Void, BusError>) -> Void) {
        monitor.lock()
        if started || closed {
            monitor.unlock()
            ready(.failure(BusError(closed ? "the Redis bus is closed" : "the Redis bus was already started")))
            return
        }
        started = true
        readyCallback = ready
        threads = [
            redisSpawnThread { self.runPublisher() },
            redisSpawnThread { self.runSubscriber(receive) },
        ]
        monitor.unlock()
    }

    func enqueue(channel: String, message: [UInt8]) {
        monitor.lock()
        if closed {
            monitor.unlock()
            return
        }
        var overflowStarted = false
        if queue.isFull {
            queue.removeFirst()
            dropped += 1
            overflowStarted = overflowDrops == nil
            overflowDrops = (overflowDrops ?? 0) + 1
        }
        queue.append(Pending(channel: channel, message: message))
        if options.dropsOwnEchoes {
            if unechoed.isFull { unechoed.removeFirst() }
            unechoed.append(message)
        }
        if publisherWaiting {
            publisherWaiting = false
            monitor.broadcast()
        }
        monitor.unlock()
        if overflowStarted {
            log("redis: publish buffer full (\(queue.capacity) messages); dropping the oldest until Redis accepts again")
        }
    }

    func close() {
        monitor.lock()
        closed = true
        let joining = threads
        threads = []
        let callback = readyCallback
        readyCallback = nil
        monitor.broadcast()
        monitor.unlock()
        wake()
        let me = pthread_self()
        for thread in joining {
            if pthread_equal(thread, me) != 0 {
                pthread_detach(thread)
            } else {
                pthread_join(thread, nil)
            }
        }
        callback?(.failure(BusError("the Redis bus was closed before its subscriptions were confirmed")))
    }

    func snapshot() -> RedisBusStats {
        monitor.withLock {
            RedisBusStats(connected: subscribed && publisherUp, reconnects: reconnects, published: published,
                          dropped: dropped, received: received, buffered: queue.count, node: node, batches: batches)
        }
    }

    // MARK: Shared by both threads

    private func wake() {
        var byte: UInt8 = 1
        _ = Glibc.write(wakeWrite, &byte, 1)
    }

    /// Tries every node once, starting where the last connection succeeded.
    private func connectRound() -> ConnectOutcome {
        let start = monitor.withLock { cursor }
        var failures: [String] = []
        for step in 0..<url.nodes.count {
            let index = (start + step) % url.nodes.count
            let node = url.nodes[index]
            do throws(RedisIOError) {
                let connection = try RedisConnection.open(node, deadline: redisNow() + connectTimeout, wakeFD: wakeRead)
                try connection.handshake(url, deadline: redisNow() + commandTimeout)
                monitor.withLock { cursor = index }
                return .connected(connection)
            } catch {
                if error.kind == .woken { return .closed }
                failures.append("\(node): \(error)")
            }
        }
        return .failed("cannot connect to Redis at " + failures.joined(separator: "; "))
    }

    /// After losing `node` mid-run, the next round starts at the node after it (both threads may
    /// report the same loss; only the first moves the cursor).
    private func skip(_ node: RedisURL.Node) {
        monitor.withLock {
            if url.nodes[cursor] == node { cursor = (cursor + 1) % url.nodes.count }
        }
    }

    /// Sleeps up to `nanoseconds`, less if `endEarly` (checked under the lock) turns true;
    /// false once the bus is closed.
    private func pause(_ nanoseconds: UInt64, endEarly: () -> Bool = { false }) -> Bool {
        let deadline = redisNow() + nanoseconds
        monitor.lock()
        defer { monitor.unlock() }
        while !closed && !endEarly() {
            if !monitor.wait(until: deadline) { break }
        }
        return !closed
    }

    /// Logs `reason` with the next backoff delay of `role`'s thread and sleeps that long (less
    /// if `endEarly` turns true); false once the bus is closed.
    private func backOff(_ role: String, _ reason: String, _ backoff: inout BackoffState,
                         endEarly: () -> Bool = { false }) -> Bool {
        let delay = backoff.next()
        log("redis \(role): \(reason); retrying in \(delay / 1_000_000) ms")
        return pause(delay, endEarly: endEarly)
    }

    /// With `failFast`, a failure before the first `ready` ends the bus and fails `ready`.
    /// True when the calling thread must stop.
    private func failFastIfNeverReady(_ reason: String) -> Bool {
        guard options.failFast else { return false }
        monitor.lock()
        if everReady {
            monitor.unlock()
            return false
        }
        let callback = readyCallback
        readyCallback = nil
        closed = true
        monitor.broadcast()
        monitor.unlock()
        wake()
        if let callback {
            log("redis: \(reason)")
            callback(.failure(BusError(reason)))
        }
        return true
    }

    /// Under the lock: the `ready` callback to call now that both connections are up, once.
    private func takeReadyIfComplete() -> (@Sendable (Result<Void, BusError>) -> Void)? {
        guard !everReady, !closed, subscribed, publisherUp else { return nil }
        everReady = true
        defer { readyCallback = nil }
        return readyCallback
    }

    // MARK: Subscriber thread

    private func runSubscriber(_ receive: @escaping @Sendable (String, [UInt8]) -> Void) {
        var backoff = BackoffState(options.backoff)
        var writer = RESPWriter()
        if !channels.isEmpty { writer.command(["SUBSCRIBE"] + channels) }
        if !patterns.isEmpty { writer.command(["PSUBSCRIBE"] + patterns) }
        let subscribeCommand = writer.bytes
        /// When the last confirmed subscription was lost; nil while subscribed or never subscribed.
        var lostAt: UInt64?
        while true {
            let connection: RedisConnection
            switch connectRound() {
            case .closed:
                return
            case .failed(let reason):
                if failFastIfNeverReady(reason) { return }
                if !backOff("subscriber", reason, &backoff) { return }
                continue
            case .connected(let opened):
                connection = opened
            }
            var wasSubscribed = false
            do throws(RedisIOError) {
                try serveSubscriptions(connection, command: subscribeCommand, receive: receive) {
                    wasSubscribed = true
                    backoff.reset()
                    self.markSubscribed(on: connection.node, lostAt: lostAt)
                    lostAt = nil
                }
            } catch {
                if error.kind == .woken { return }
                skip(connection.node)
                monitor.lock()
                subscribed = false
                node = nil
                generation += 1
                monitor.broadcast()
                monitor.unlock()
                if wasSubscribed { lostAt = redisNow() }
                let reason = "lost connection to Redis at \(connection.node): \(error)"
                if failFastIfNeverReady(reason) { return }
                if wasSubscribed {
                    log("redis subscriber: \(reason); reconnecting")
                } else if !backOff("subscriber", reason, &backoff) {
                    return
                }
            }
        }
    }

    /// Subscribes, then delivers messages until the connection fails (it always throws).
    private func serveSubscriptions(_ connection: RedisConnection, command: [UInt8],
                                    receive: @Sendable (String, [UInt8]) -> Void,
                                    subscribedNow: () -> Void) throws(RedisIOError) {
        let expected = channels.count + patterns.count
        var confirmed = 0
        var awaitingSince = redisNow()
        var awaiting = true
        if expected == 0 {
            awaiting = false
            subscribedNow()
        } else {
            try connection.write(command, deadline: awaitingSince + commandTimeout)
        }
        var lastActivity = awaitingSince
        if options.dropsOwnEchoes {
            connection.consumeFront = { [unowned self] bytes in self.skipOwnEchoes(bytes) }
        }
        while true {
            while let reply = try connection.bufferedReply() {
                defer { freeReplyObject(reply) }
                let r = reply.pointee
                if r.type == REDIS_REPLY_ARRAY, r.elements >= 2, let items = r.element, let kind = items[0] {
                    if r.elements == 3, RedisConnection.reply(kind, is: "message"), let channel = items[1], let payload = items[2] {
                        deliver(channel: channel, payload: payload, to: receive)
                    } else if r.elements == 4, RedisConnection.reply(kind, is: "pmessage"), let channel = items[2], let payload = items[3] {
                        deliver(channel: channel, payload: payload, to: receive)
                    } else if RedisConnection.reply(kind, is: "subscribe") || RedisConnection.reply(kind, is: "psubscribe") {
                        confirmed += 1
                        if confirmed == expected {
                            awaiting = false
                            subscribedNow()
                        }
                    } else if RedisConnection.reply(kind, is: "pong") {
                        if confirmed == expected { awaiting = false }
                    }
                } else if r.type == REDIS_REPLY_ERROR {
                    throw RedisIOError(kind: .rejected, description: "Redis replied \(RedisConnection.text(reply))")
                } else if r.type == REDIS_REPLY_STATUS, RedisConnection.reply(reply, is: "PONG") {
                    awaiting = false
                }
            }
            let deadline: UInt64
            if awaiting {
                deadline = awaitingSince + commandTimeout
            } else if let healthInterval {
                deadline = lastActivity + healthInterval
            } else {
                deadline = .max
            }
            if try connection.fill(deadline: deadline) {
                lastActivity = redisNow()
            } else if awaiting {
                let what = confirmed < expected ? "subscriptions were not confirmed" : "no reply to PING"
                throw RedisIOError(kind: .timeout, description: "\(what) within \(commandTimeout / 1_000_000) ms")
            } else {
                var ping = RESPWriter()
                ping.command(["PING"])
                awaitingSince = redisNow()
                awaiting = true
                try connection.write(ping.bytes, deadline: awaitingSince + commandTimeout)
            }
        }
    }

    private func deliver(channel: UnsafeMutablePointer<redisReply>, payload: UnsafeMutablePointer<redisReply>,
                         to receive: @Sendable (String, [UInt8]) -> Void) {
        let body = UnsafeRawBufferPointer(start: payload.pointee.str, count: payload.pointee.len)
        let own = monitor.withLock {
            received += 1
            return options.dropsOwnEchoes && takeEcho(body)
        }
        if own { return }
        let name = String(decoding: UnsafeRawBufferPointer(start: channel.pointee.str, count: channel.pointee.len), as: UTF8.self)
        receive(name, [UInt8](body))
    }

    /// How many leading bytes of a read are this bus's own echoes, each checked in place and
    /// counted as received; one lock for the run. Stops at the first push that is not one (or
    /// is incomplete): it and everything after go through hiredis and `deliver`, in order.
    private func skipOwnEchoes(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        monitor.lock()
        defer { monitor.unlock() }
        while !unechoed.isEmpty, let push = RESPPush.parse(bytes, at: offset),
              takeEcho(UnsafeRawBufferPointer(rebasing: bytes[push.payload])) {
            received += 1
            offset = push.end
        }
        return offset
    }

    /// Whether `body` is one of the first messages in `unechoed` (which it and those before it
    /// then leave). Under `monitor`.
    private func takeEcho(_ body: UnsafeRawBufferPointer) -> Bool {
        for offset in 0..<min(unechoed.count, RedisBusCore.echoWindow) {
            let sent = unechoed[offset]
            guard sent.count == body.count,
                  sent.withUnsafeBytes({ $0.count == 0 || memcmp($0.baseAddress!, body.baseAddress!, $0.count) == 0 })
            else { continue }
            for _ in 0...offset { unechoed.removeFirst() }
            return true
        }
        return false
    }

    private func markSubscribed(on node: RedisURL.Node, lostAt: UInt64?) {
        monitor.lock()
        subscribed = true
        self.node = node
        subscribedEpoch += 1
        if lostAt != nil { reconnects += 1 }
        let ready = takeReadyIfComplete()
        monitor.broadcast()
        monitor.unlock()
        if let lostAt {
            log("redis: resubscribed after \((redisNow() - lostAt) / 1_000_000) ms outage (\(node))")
        }
        ready?(.success(()))
    }

    // MARK: Publisher thread

    private func runPublisher() {
        var backoff = BackoffState(options.backoff)
        var writer = RESPWriter()
        var batch: [Pending] = []
        batch.reserveCapacity(Self.maxBatchCount)
        var connection: RedisConnection?
        var connectionGeneration = 0
        while true {
            if connection == nil {
                let (currentGeneration, epoch) = monitor.withLock { (generation, subscribedEpoch) }
                switch connectRound() {
                case .closed:
                    return
                case .failed(let reason):
                    if failFastIfNeverReady(reason) { return }
                    if !backOff("publisher", reason, &backoff, endEarly: { self.subscribedEpoch != epoch }) { return }
                    continue
                case .connected(let opened):
                    connection = opened
                    connectionGeneration = currentGeneration
                    backoff.reset()
                    let ready = monitor.withLock {
                        publisherUp = true
                        return takeReadyIfComplete()
                    }
                    ready?(.success(()))
                }
            }
            guard let current = connection else { continue }

            monitor.lock()
            while !closed && generation == connectionGeneration && (queue.isEmpty || !subscribed) {
                publisherWaiting = true
                monitor.wait()
            }
            publisherWaiting = false
            if closed {
                monitor.unlock()
                return
            }
            if generation != connectionGeneration {
                publisherUp = false
                monitor.unlock()
                connection = nil
                continue
            }
            if current.isStale() {
                publisherUp = false
                monitor.unlock()
                skip(current.node)
                connection = nil
                log("redis publisher: lost connection to Redis at \(current.node); reconnecting")
                continue
            }
            var bytes = 0
            while batch.count < Self.maxBatchCount && bytes < Self.maxBatchBytes && !queue.isEmpty {
                let next = queue.removeFirst()
                bytes += next.message.count + next.channel.utf8.count
                batch.append(next)
            }
            monitor.unlock()

            writer.reset()
            for pending in batch { writer.publish(channel: pending.channel, message: pending.message) }
            var answered = 0, rejected = 0
            var firstRejection = ""
            do throws(RedisIOError) {
                let deadline = redisNow() + commandTimeout
                try current.write(writer.bytes, deadline: deadline)
                while answered < batch.count {
                    let reply = try current.reply(deadline: deadline)
                    if reply.pointee.type == REDIS_REPLY_ERROR {
                        if rejected == 0 { firstRejection = RedisConnection.text(reply) }
                        rejected += 1
                    }
                    freeReplyObject(reply)
                    answered += 1
                }
                finishBatch(accepted: answered - rejected, rejected: rejected)
                if rejected > 0 { log("redis publisher: Redis rejected \(rejected) message(s): \(firstRejection)") }
            } catch {
                if error.kind == .woken { return }
                let kept = requeue(batch[answered...], accepted: answered - rejected, rejected: rejected)
                skip(current.node)
                connection = nil
                log("redis publisher: lost connection to Redis at \(current.node): \(error); \(kept) message(s) kept for retry")
            }
            batch.removeAll(keepingCapacity: true)
        }
    }

    private func finishBatch(accepted: Int, rejected: Int) {
        monitor.lock()
        published += accepted
        dropped += rejected
        batches += 1
        var drained: Int?
        if queue.isEmpty {
            drained = overflowDrops
            overflowDrops = nil
        }
        monitor.unlock()
        if let drained {
            log("redis: the publish buffer has drained; \(drained) message(s) were dropped while it was full")
        }
    }

    /// Puts unanswered messages back in front; those that no longer fit (the oldest) are dropped.
    private func requeue(_ unanswered: ArraySlice<Pending>, accepted: Int, rejected: Int) -> Int {
        monitor.withLock {
            published += accepted
            dropped += rejected
            publisherUp = false
            var kept = 0
            for pending in unanswered.reversed() {
                if queue.prepend(pending) {
                    kept += 1
                } else {
                    dropped += 1
                    overflowDrops = (overflowDrops ?? 0) + 1
                }
            }
            return kept
        }
    }
}
