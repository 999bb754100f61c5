import Switchboard
import SwitchboardBus

/// Everything `switchboard serve` is configured with: defaults, then the YAML file, then
/// `SWITCHBOARD_<SECTION>_<KEY>` environment variables, then command-line flags.
/// Durations are milliseconds; sizes are bytes. docs/configuration.md is the reference.
public struct ServeConfig: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var path = ProtocolDefaults.path
    /// Browser origins that may open a WebSocket; empty: any (`ServerOptions.allowedOrigins`).
    public var allowedOrigins: [String] = []
    /// Reverse proxies whose X-Forwarded-For / Forwarded names the client for the per-address
    /// limit (`ServerOptions.trustedProxies`).
    public var trustedProxies: [String] = []
    /// Whether `/` serves the demo page (a development aid; off in production).
    public var demoPage = true
    /// The internal listener (`internal.*`): `/metrics` and the probes on a port of their own.
    public var internalListener = InternalListenerConfig()
    /// `shutdown.drain_delay` (ms): how long a shutdown keeps established clients after it stops
    /// accepting and `/readyz` turns 503, before it closes them; 0 closes at once.
    public var drainDelay: Int64 = 0

    public var maxPayloadLength = ProtocolDefaults.maxPayloadLength
    public var backpressureLimit = ProtocolDefaults.backpressureLimit
    public var closeOnBackpressure = ProtocolDefaults.closeOnBackpressure
    public var maxHeaderBytes = 16384
    /// Negotiate permessage-deflate (RFC 7692) with clients that offer it.
    public var perMessageDeflate = false
    /// `loops`: event loops in the process, each with its own clients (`ServerOptions.loops`);
    /// 0 (`auto`, the default): one per online CPU (`ServerOptions.onlineCPUs`).
    public var loops = 0
    /// Messages shorter than this (bytes) go out uncompressed.
    public var compressionThreshold = 64

    public var authTimeout = ProtocolDefaults.authTimeout
    public var heartbeatInterval = ProtocolDefaults.heartbeatInterval
    public var heartbeatTimeout = ProtocolDefaults.heartbeatTimeout
    public var idleTimeout = ProtocolDefaults.idleTimeout
    public var sendPings = ProtocolDefaults.sendPings
    public var upgradeTimeout: Int64 = 10_000
    public var shutdownGrace: Int64 = 5_000

    public var defaultRooms = ProtocolDefaults.defaultRooms
    public var rooms = RoomPolicyConfig()
    /// `rooms.presence` and `rooms.presence_ttl` (ServerOptions.presenceRooms, presenceTTL).
    public var presenceRooms = ProtocolDefaults.presenceRooms
    public var presenceTTL = ProtocolDefaults.presenceTtl
    /// `rooms.history`, `rooms.history_size`, `rooms.history_ttl` and `rooms.history_epoch_ttl`
    /// (ServerOptions.historyRooms, historySize, historyTTL, historyEpochTTL): kept in the Redis
    /// of `redis` when it is set, in this process's memory otherwise.
    public var historyRooms = ProtocolDefaults.historyRooms
    public var historySize = ProtocolDefaults.historySize
    public var historyTTL = ProtocolDefaults.historyTtl
    public var historyEpochTTL = ProtocolDefaults.historyEpochTtl

    /// nil: the in-process bus (one instance).
    public var redis: RedisURL?
    public var tls: TLSFiles?
    public var encryption = EncryptionMode.off
    public var auth = AuthConfig()
    public var abuse = AbuseLimits()
    /// Whether the `broadcast` custom event is accepted.
    public var allowBroadcast = false
    /// `messages.numbers`: how numbers in messages are written on (see `JSONNumberStyle`).
    public var numberStyle = JSONNumberStyle.exact
    public var logLevel = LogLevel.info
    /// The server API (APIConfig.swift, docs/api.yaml); off without a key.
    public var api = APIConfig()
    /// Hooks answered by the backend over HTTP (ProxyConfig.swift, docs/proxy.md); off without URLs.
    public var proxy = ProxyConfig()

    /// Where each key was set (`listen.port` -> file:line or environment variable), for
    /// errors found after parsing (unreadable key files, conflicting keys).
    public var locations: [String: ConfigLocation] = [:]
    /// Problems that do not stop the server (unknown `SWITCHBOARD_*` variables).
    public var warnings: [ConfigError] = []

    public init() {}

    /// The library options this configuration stands for.
    public var serverOptions: ServerOptions {
        var options = ServerOptions()
        options.host = host
        options.port = port
        options.path = path
        options.defaultRooms = defaultRooms
        options.presenceRooms = presenceRooms
        options.presenceTTL = presenceTTL
        options.presenceRedis = redis  // the app brings its own bus (ServeApp), so `redis` stays unset
        options.historyRooms = historyRooms
        options.historySize = historySize
        options.historyTTL = historyTTL
        options.historyEpochTTL = historyEpochTTL
        options.historyRedis = redis  // as presence: the bus is the app's, the store the server's
        options.maxPayloadLength = maxPayloadLength
        options.idleTimeout = idleTimeout
        options.sendPings = sendPings
        options.backpressureLimit = backpressureLimit
        options.closeOnBackpressureLimit = closeOnBackpressure
        options.authTimeout = authTimeout
        options.heartbeatInterval = heartbeatInterval
        options.heartbeatTimeout = heartbeatTimeout
        options.requireEncryption = encryption == .required
        options.maxHeaderBytes = maxHeaderBytes
        options.upgradeTimeout = upgradeTimeout
        options.shutdownGrace = shutdownGrace
        options.tlsCertificateFile = tls?.certificate
        options.tlsKeyFile = tls?.privateKey
        options.perMessageDeflate = perMessageDeflate
        options.loops = loops == 0 ? ServerOptions.onlineCPUs : loops
        options.compressionThreshold = compressionThreshold
        options.maxConnectionsPerIP = abuse.maxConnectionsPerIP
        options.trustedProxies = trustedProxies
        options.allowedOrigins = allowedOrigins.isEmpty ? nil : allowedOrigins
        options.maxMessagesBeforeAuth = abuse.maxMessagesBeforeAuth
        options.numberStyle = numberStyle
        // Token lookups and HS256 take about a microsecond: on the loop, no thread hop. An
        // RS256/ES256 signature check takes tens of microseconds: on the pool, in parallel.
        switch auth.jwt?.key {
        case .publicKeyFile?, .jwks?: options.hooksOnLoop = false
        default: break
        }
        // The proxy's hooks await the backend, which leaves the loop free; only the connect
        // hook needs the headers, and a join the backend cannot decide is answered.
        options.hookHeaders = proxy.forwardHeaders
        options.reportJoinFailures = proxy.urls[.join] != nil
        return options
    }

    /// The error for a problem with an already parsed key, at the place it was set.
    func error(_ key: String, _ message: String) -> ConfigError {
        let location = locations[key] ?? ConfigLocation(file: "configuration", line: nil)
        return ConfigError(file: location.file, line: location.line, key: key, message)
    }
}

/// `internal.host`, `internal.port`, `internal.public`: a second, plain-HTTP listener for
/// operators (Prometheus, probes, later the server API) that need not face the internet.
public struct InternalListenerConfig: Sendable, Equatable {
    public var host = "127.0.0.1"
    /// nil: no internal listener (everything is served on the public port, as before).
    public var port: Int?
    /// What the public port still serves when the internal listener is on.
    public var publicEndpoints = PublicEndpoints.health

    public enum PublicEndpoints: String, Sendable, CaseIterable {
        /// `/metrics` and the probes stay on the public port too.
        case all
        /// `/livez`, `/readyz` and `/healthz` stay (load balancers probe the port they route
        /// to); `/metrics` is on the internal listener only.
        case health
        /// Neither: the public port serves WebSockets (and the demo page, if on) only.
        case none
    }

    /// Whether the public port answers `path` (`/metrics` or a probe).
    public func publicServes(_ path: String) -> Bool {
        guard port != nil else { return true }
        switch publicEndpoints {
        case .all: return true
        case .health: return path != "/metrics"
        case .none: return false
        }
    }
}

public struct TLSFiles: Sendable, Equatable {
    public var certificate: String
    public var privateKey: String
}

public enum EncryptionMode: String, Sendable, CaseIterable {
    /// No handshake; a `publicKey` in `authenticate` data is ignored.
    case off
    /// Clients that send a `publicKey` are encrypted, others stay plain (needs library support).
    case optional
    /// Every client must complete the handshake (requireEncryption), else 4004.
    case required
}

public struct AuthConfig: Sendable {
    public var jwt: JWTConfig?
    /// A file of `token: userId` lines (development).
    public var tokensFile: String?
    public var isConfigured: Bool { jwt != nil || tokensFile != nil }
}

public struct JWTConfig: Sendable, Equatable {
    public enum Key: Sendable, Equatable {
        case hs256Secret([UInt8])
        case hs256SecretFile(String)
        /// A PEM public key: RSA (RS256) or EC P-256 (ES256).
        case publicKeyFile(String)
        /// A JWK set from a file or an HTTP(S) URL, loaded again every `jwksRefreshMilliseconds`:
        /// the token's `kid` picks the key (RS256, PS256, ES256, EdDSA).
        case jwks(JWKSSource)
    }
    public var key: Key?
    /// How often a JWK set is loaded again (keys rotate without a restart).
    public var jwksRefreshMilliseconds: Int64 = 300_000
    public var issuer: String?
    public var audience: String?
    public var clockSkewSeconds = 30
    /// Tokens without `exp` are rejected.
    public var requireExp = true
}

/// Room names a client may join (validateRoom), in addition to the kernel's name filter.
public struct RoomPolicyConfig: Sendable, Equatable {
    /// Rooms starting with one of these are allowed.
    public var allowPrefixes: [String] = []
    /// Glob patterns (`*` any run, `?` one character) of allowed rooms.
    public var allowPatterns: [String] = []
    /// `user:{userId}` is allowed for that user only, and denied to everyone else.
    public var userRooms = true
    /// Rooms a client may hold besides its own-id room and the default rooms; 0 = no cap.
    public var maxPerClient = 0
}

/// Abuse limits; docs/configuration.md says where each is enforced.
public struct AbuseLimits: Sendable, Equatable {
    /// 0 = no cap. Behind a proxy, see `ServeConfig.trustedProxies`.
    public var maxConnectionsPerIP = 0
    /// Authenticated clients one user may hold on this instance; 0 = no cap.
    public var maxClientsPerUser = 0
    /// Custom events per second per client (token bucket); 0 = no limit.
    public var messagesPerSecond = 0
    /// Bucket size; 0 = `messagesPerSecond`.
    public var messageBurst = 0
    /// 0 = no cap. Needs library support (the kernel answers these without a hook).
    public var maxMessagesBeforeAuth = 0
}

/// Where a configuration value came from.
public struct ConfigLocation: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// nil for an environment variable or a flag.
    public var line: Int?
    public var description: String { line.map { "\(file):\($0)" } ?? file }
}

/// One configuration problem: `FILE:LINE: KEY: MESSAGE`.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    /// The dotted key (`listen.port`), when the problem belongs to one.
    public var key: String?
    public var message: String

    public init(file: String, line: Int?, key: String?, _ message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        if let key { text += ": \(key)" }
        return text + ": " + message
    }
}

/// Every problem found; a configuration with any is not used.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigError]
    public init(_ errors: [ConfigError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
