import SwitchboardBus
#if canImport(Glibc)
import Glibc
#endif

/// Server options; defaults are PROTOCOL.md 10, from the spec (`ProtocolDefaults`).
public struct ServerOptions: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port.
    public var port = 0
    public var path = ProtocolDefaults.path
    public var defaultRooms = ProtocolDefaults.defaultRooms
    /// Largest message in bytes; a larger one closes with 1009.
    public var maxPayloadLength = ProtocolDefaults.maxPayloadLength
    /// Milliseconds without any frame before the connection is dropped (pings go out at half).
    public var idleTimeout = ProtocolDefaults.idleTimeout
    public var sendPings = ProtocolDefaults.sendPings
    public var backpressureLimit = ProtocolDefaults.backpressureLimit
    public var closeOnBackpressureLimit = ProtocolDefaults.closeOnBackpressure
    public var authTimeout = ProtocolDefaults.authTimeout
    public var heartbeatInterval = ProtocolDefaults.heartbeatInterval
    public var heartbeatTimeout = ProtocolDefaults.heartbeatTimeout
    public var requireEncryption = ProtocolDefaults.requireEncryption
    public var encryptedBatchLimit = ProtocolDefaults.encryptedBatchLimit
    /// `redis://[:password@]host:port[/db]`, or a cluster's nodes `redis://a:1,b:2,c:3`;
    /// nil runs on the in-process bus; "" is a start-up error.
    public var redis: String?
    /// With Redis down at start-up: fail at once (true) or retry with backoff until it is up.
    public var redisFailFast = false
    /// Largest HTTP request head (bytes); larger gets 431.
    public var maxHeaderBytes = 16384
    /// Milliseconds a connection may take to complete its upgrade request (slowloris guard).
    public var upgradeTimeout: Int64 = ProtocolDefaults.upgradeTimeout
    /// Milliseconds a graceful shutdown waits for clients to close before dropping them.
    public var shutdownGrace: Int64 = ProtocolDefaults.shutdownGrace
    /// Close frames sent per batch during shutdown (a reconnect storm is spread out).
    public var shutdownBatchSize = ProtocolDefaults.shutdownBatchSize
    /// Abuse limits (0 = off): messages a client may send before `connected` (then 4008), and
    /// open connections per client address (further ones are closed at accept; through a
    /// trusted proxy, answered with the spec's `too_many_connections` at upgrade).
    public var maxMessagesBeforeAuth = ProtocolDefaults.maxMessagesBeforeAuth
    public var maxConnectionsPerIP = 0
    /// Async hook calls (`authenticate`, `handshake`, `validateRoom`) one client may have
    /// unanswered before the server stops reading from it (`Driver.pauseReading`); reading
    /// resumes when half have answered. Nothing is dropped: its messages wait and are handled
    /// in order. 0: never pause. Not in the spec: a paused client's messages are handled later,
    /// as a slower network would deliver them, so nothing on the wire tells a pause apart.
    public var maxPendingHookCalls = 64
    /// Upgrade request headers (case-insensitive names) handed to `Hooks.authenticateClient`
    /// in `AuthenticateRequest.headers`, e.g. `["cookie", "user-agent"]`; kept only while that
    /// hook is set, and only until the client authenticates.
    public var hookHeaders: [String] = []
    /// A throwing `validateRoom` answers the client the spec's `Join failed` error (none of the
    /// requested rooms is joined either way). Off: no answer, as in the original.
    public var reportJoinFailures = ProtocolDefaults.reportJoinFailures
    /// Addresses of reverse proxies (as the driver reports peers: `10.0.0.5`, `::1`) whose
    /// `X-Forwarded-For` (or, without it, RFC 7239 `Forwarded: for=`) names the client for
    /// `maxConnectionsPerIP`: the rightmost address there that is not one of these. Other
    /// peers' headers are ignored.
    public var trustedProxies: [String] = []
    /// Browser origins (`scheme://host[:port]`, host case-insensitive) that may open a
    /// WebSocket; an upgrade with another `Origin` gets the spec's `origin_forbidden` (403).
    /// nil or empty: any origin. A request without `Origin` (not a browser) is always allowed.
    public var allowedOrigins: [String]?
    /// Serve `wss://` with these PEM files (certificate chain and private key).
    public var tlsCertificateFile: String?
    public var tlsKeyFile: String?
    /// Negotiate permessage-deflate (RFC 7692) when a client offers it. The server never keeps
    /// compression context, so a fan-out message is compressed once for every recipient.
    public var perMessageDeflate = false
    /// Messages shorter than this go out uncompressed even on a compressing connection.
    public var compressionThreshold = 64
    /// Raw echo: no gateway protocol, every message echoed (RFC 6455 conformance suites).
    public var rawEcho = false
    /// Run hooks on the loop's thread, between events, as the original runs them on Bun's one
    /// JavaScript thread (no thread hop per hook; see `POSIXDriver.init`). Set it to false when
    /// hooks block or compute for long: they then run on Swift's global concurrent pool.
    public var hooksOnLoop = true
    /// How numbers in messages are written on: `.exact` keeps each literal; `.javascript` writes
    /// them as the original (JS) gateway does (`1.0` -> `1`), for a fleet mixed with it.
    public var numberStyle: JSONNumberStyle = .exact
    /// Rooms with presence (join/leave events, the `presence` query): names, or prefixes ending
    /// in `*`. With `redis` set, the instances share their members through Redis.
    public var presenceRooms = ProtocolDefaults.presenceRooms
    /// With Redis: a killed instance's presence entries are dropped at most this long after its
    /// last heartbeat (written every presenceTTL / 3).
    public var presenceTTL: Int64 = ProtocolDefaults.presenceTtl
    /// The Redis that keeps presence when the application passes its own bus to `Server` and
    /// leaves `redis` unset (the serve command does); ignored when `redis` is set.
    public var presenceRedis: RedisURL?
    /// Rooms with history and recovery: names, or prefixes ending in `*`. Every message to such
    /// a room is recorded and carries `room`, `offset` and `epoch`; a join with `since` gets
    /// what the client missed (docs/recovery.md). Kept in memory, or in Redis streams when
    /// `redis` (or `historyRedis`) is set. Empty: no room has history.
    public var historyRooms = ProtocolDefaults.historyRooms
    /// The most messages a room's history keeps.
    public var historySize = ProtocolDefaults.historySize
    /// How long a message stays in a room's history, in milliseconds.
    public var historyTTL: Int64 = ProtocolDefaults.historyTtl
    /// With Redis: how long a room's epoch and last offset outlive its last message or join.
    public var historyEpochTTL: Int64 = ProtocolDefaults.historyEpochTtl
    /// The Redis that keeps history when the application passes its own bus to `Server` and
    /// leaves `redis` unset (the serve command does); ignored when `redis` is set.
    public var historyRedis: RedisURL?
    /// Event loops in this process, each on a thread of its own with its own clients, all
    /// listening on `port` (`SO_REUSEPORT`: the kernel spreads connections over them). A
    /// client lives on one loop; a delivery to a room, a user or everyone reaches every loop
    /// (see `Server`, "Several loops"), and what a client publishes (a `publish`, a presence
    /// join or leave) reaches the other loops' clients as it reaches other instances'. Every
    /// query and `metrics()`/`metricsOnLoop()` see all loops; `queryOnLoop` sees the calling
    /// loop's clients only. More than 1 needs the built-in `POSIXDriver`.
    ///
    /// What differs from one loop: hooks run on several threads at once (one loop's clients'
    /// hooks on that loop's thread, in that client's order), so state a hook shares across
    /// clients needs its own lock or actor.
    ///
    /// That is why the library's default stays 1: an app that embeds `Server` may have hooks
    /// written for one thread (Bun's model, which the original shares), or pass a `driver` of
    /// its own, which runs one loop; neither should change behaviour by moving to a bigger
    /// machine. `switchboard serve` and the test fixture, whose hooks are the gateway's own and
    /// thread-safe, default to `onlineCPUs` (`loops: auto`). Set `loops = ServerOptions.onlineCPUs`
    /// to use every core.
    public var loops = 1

    /// The CPUs online on this machine (`sysconf(_SC_NPROCESSORS_ONLN)`), at least 1 and at
    /// most the loops a server may have: `loops: auto`.
    public static var onlineCPUs: Int {
        min(max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))), IDGenerator.shardLimit)
    }

    public init() {}

    var kernelSettings: KernelSettings {
        var settings = KernelSettings()
        settings.path = path
        settings.defaultRooms = defaultRooms
        settings.maxPayloadLength = maxPayloadLength
        settings.idleTimeout = idleTimeout
        settings.backpressureLimit = backpressureLimit
        settings.closeOnBackpressure = closeOnBackpressureLimit
        settings.sendPings = sendPings
        settings.authTimeout = authTimeout
        settings.heartbeatInterval = heartbeatInterval
        settings.heartbeatTimeout = heartbeatTimeout
        settings.requireEncryption = requireEncryption
        settings.encryptedBatchLimit = encryptedBatchLimit
        settings.maxMessagesBeforeAuth = maxMessagesBeforeAuth
        settings.upgradeTimeout = upgradeTimeout
        settings.shutdownGrace = shutdownGrace
        settings.shutdownBatchSize = shutdownBatchSize
        settings.numberStyle = numberStyle
        settings.presenceRooms = presenceRooms
        settings.presenceTtl = presenceTTL
        settings.historyRooms = historyRooms
        settings.historySize = historySize
        settings.historyTtl = historyTTL
        settings.historyEpochTtl = historyEpochTTL
        settings.reportJoinFailures = reportJoinFailures
        return settings
    }
}

/// Start-up errors (PROTOCOL.md 11); texts come from the spec.
public struct StartupError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: StartupErrorMessage) { self.message = message.text }
    public init(message: String) { self.message = message }
    public var description: String { message }
}
