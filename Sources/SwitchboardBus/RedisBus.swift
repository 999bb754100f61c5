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
///   Redis has confirmed every one, and hands the `message`s/`pmessage`s (with the actual
///   channel) that one read brought to `receiveBatch` as one batch, or one by one to `receive`;
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
        core.start(receive: { batch in for item in batch { receive(item.channel, item.message) } }, ready: ready)
    }

    /// Each batch is what one read of the subscription parsed (its own echoes left out).
    public func start(receiveBatch: @escaping @Sendable (_ messages: [BusMessage]) -> Void,
                      ready: @escaping @Sendable (Result<Void, BusError>) -> Void) {
        core.start(receive: receiveBatch, ready: ready)
    }

    /// Appends to the buffer and returns; ignored after `close()`.
    public func publish(channel: String, message: [UInt8]) {
        core.enqueue(channel: channel, message: message)
    }

    public func close() { core.close() }

    public var stats: RedisBusStats { core.snapshot() }
}
