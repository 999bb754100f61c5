import SwitchboardBus
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Publishes to the clients of a Switchboard fleet from a process that runs no server
/// (a worker, a cron job): each call publishes one envelope (PROTOCOL.md 8) with serverId
/// `emitter`, which every instance delivers to its local clients.
///
/// Publishes never block: they are buffered (bounded) and sent in order, across reconnects.
public final class Emitter: Sendable {
    private let bus: any MessageBus
    /// Envelopes handed to the bus so far (close waits until Redis acknowledged them).
    private let enqueued = Mutex(0)

    /// `redis://[:password@]host:port[/db]` or a cluster's nodes.
    public init(redis: String, logger: Logger = Logger()) throws {
        let url = try StartupError.redisURL(redis)
        self.bus = RedisBus(url: url, channels: [], patterns: [], log: { logger.warning("redis: \($0)") })
    }

    /// Any bus, e.g. an `InProcessBus` shared with servers in the same process.
    public init(bus: any MessageBus) {
        self.bus = bus
    }

    /// Connects; returns once the bus is ready (or throws what stopped it).
    public func start() throws {
        let ready = Latch<Result<Void, BusError>>()
        bus.start(receive: { _, _ in }, ready: { ready.set($0) })
        if case .failure(let error) = ready.wait() { throw StartupError(message: "Bus not ready: \(error)") }
    }

    public func toClient(_ clientID: String, event: String, data: JSONValue?) {
        publish(BusEnvelope(serverID: Channels.emitterServerID, kind: .client, target: clientID, event: event, data: data))
    }
    public func toUser(_ userID: String, event: String, data: JSONValue?) {
        publish(BusEnvelope(serverID: Channels.emitterServerID, kind: .user, target: userID, event: event, data: data))
    }
    public func toRoom(_ room: String, event: String, data: JSONValue?, exclude: [String] = []) {
        publish(BusEnvelope(serverID: Channels.emitterServerID, kind: .room, target: room, event: event, data: data,
                            exclude: exclude.isEmpty ? nil : exclude))
    }
    public func broadcast(event: String, data: JSONValue?, exclude: [String] = []) {
        publish(BusEnvelope(serverID: Channels.emitterServerID, kind: .broadcast, event: event, data: data,
                            exclude: exclude.isEmpty ? nil : exclude))
    }

    public func publish(_ envelope: BusEnvelope) {
        enqueued.withLock { $0 += 1 }
        bus.publish(channel: envelope.channel, message: envelope.encoded())
    }

    /// Waits (at most `flushTimeout`) until Redis has acknowledged every publish, then
    /// disconnects: a worker that publishes and exits loses nothing while Redis is reachable.
    public func close(flushTimeout: Duration = .seconds(5)) {
        if let redis = bus as? RedisBus {
            let target = enqueued.withLock { $0 }
            let deadline = ContinuousClock.now + flushTimeout
            // Nothing to await here: the publisher thread reports through its counters.
            while ContinuousClock.now < deadline {
                let stats = redis.stats
                if stats.published + stats.dropped >= target { break }
                usleep(1000)
            }
        }
        bus.close()
    }
}

extension StartupError {
    /// Parses the Redis connection string of a server or an emitter. An empty or malformed one
    /// is the seed's start-up error, followed by what is wrong, e.g.
    /// `Invalid redis connection! (the Redis URL is empty)`.
    public static func redisURL(_ text: String) throws(StartupError) -> RedisURL {
        do { return try RedisURL(text) } catch { throw invalidRedisConnection(error.description) }
    }

    /// `Invalid redis connection!` (the seed's text, first) with `detail` after it.
    public static func invalidRedisConnection(_ detail: String) -> StartupError {
        StartupError(message: "\(StartupErrorMessage.invalidRedisConnection.text) (\(detail))")
    }
}
