import Switchboard
import SwitchboardBus
import SwitchboardCrypto
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `switchboard serve`: a generic gateway app on the library's public API. Token/JWT auth, a
/// room policy, abuse limits, optional end-to-end encryption, the demo page, `/metrics`,
/// `/livez`, `/readyz` and `/healthz`.
public final class ServeApp: Sendable {
    public let config: ServeConfig
    /// A token for user `demo` (valid 1 h) when no authentication is configured.
    public let developmentToken: String?
    public let server: Server
    /// What `/metrics` reports as `switchboard_build_info`.
    public let build: BuildInfo

    private let log: Logger
    private let authenticator: Authenticator
    private let policy: RoomPolicy
    private let limiter: RateLimiter?
    private let redisBus: RedisBus?
    private let stats = ServeStats()
    private let sessions = Mutex<[String: EncryptionSession]>([:])
    private let relay = Relay()
    private let shuttingDown = Atomic<Bool>(false)
    /// nil when `http.demo_page` is off: `/` is then a 404.
    private let demoPage: [UInt8]?

    /// Checks everything the configuration names (files, keys) and builds the server;
    /// nothing is bound until `start()`/`run()`. Throws `ConfigErrors` or `StartupError`.
    public init(config: ServeConfig, logger: Logger, build: BuildInfo = .current(environment: [:])) throws {
        let unreadable = Self.unreadableTLSFiles(config)
        if !unreadable.isEmpty { throw ConfigErrors(unreadable) }
        self.config = config
        self.build = build
        self.log = logger
        var authenticator = try Authenticator.make(config)
        if !config.auth.isConfigured {
            let secret = SecureRandom.bytes(32)
            authenticator.jwt = JWTVerifier(hs256Secret: secret)
            let expires = unixSeconds() + 3600
            developmentToken = JWTSigner.hs256(payload: ["sub": "demo", "exp": .number(JSONNumber(expires))], secret: secret)
        } else {
            developmentToken = nil
        }
        self.authenticator = authenticator
        self.policy = RoomPolicy(config: config.rooms, defaultRooms: config.defaultRooms)
        self.limiter = config.abuse.messagesPerSecond > 0
            ? RateLimiter(perSecond: config.abuse.messagesPerSecond, burst: config.abuse.messageBurst) : nil
        if let url = config.redis {
            redisBus = RedisBus(url: url, channels: Channels.subscribe, patterns: Channels.psubscribe,
                                log: { [logger] in logger.warning("redis: \($0)") })
        } else {
            redisBus = nil
        }
        demoPage = config.demoPage
            ? Array(DemoPage.render(path: config.path, encryption: config.encryption, developmentToken: developmentToken).utf8)
            : nil

        var hooks = Hooks()
        let app = WeakApp()
        hooks.authenticate = { data in try await app.value?.authenticate(data) }
        // `refresh` with a new token moves the client's expiry (a JWT's exp): the same check
        // as authenticate, and the user must stay the same (the kernel refuses another one).
        hooks.refresh = { request in try await app.value?.refresh(request) }
        hooks.validateRoom = { request in try await app.value?.validateRoom(request) ?? [] }
        hooks.messageHandler = { message in app.value?.handle(message) }
        hooks.clientConnected = { event in logger.debug("client \(event.clientID) connected as \(event.userID ?? "-")") }
        hooks.clientDisconnected = { event in app.value?.forget(event.clientID) }
        hooks.httpHandler = { request in app.value?.answer(request) }
        if config.encryption != .off {
            hooks.handshake = { request in app.value?.handshake(request) }
            hooks.outboundTransformer = { message in app.value?.encrypt(message) }
        }
        server = try Server(options: config.serverOptions, hooks: hooks, bus: redisBus, logger: logger)
        app.value = self
    }

    /// The TLS files the configuration names that cannot be read (`switchboard config check`
    /// reports them too).
    static func unreadableTLSFiles(_ config: ServeConfig) -> [ConfigError] {
        guard let tls = config.tls else { return [] }
        var errors: [ConfigError] = []
        for (key, path) in [("tls.cert", tls.certificate), ("tls.key", tls.privateKey)] where readFile(path) == nil {
            errors.append(config.error(key, "cannot read \(path) (\(lastErrorText()))"))
        }
        return errors
    }

    // MARK: - Running

    /// Binds and runs the loop on a thread of its own; returns the port (tests).
    @discardableResult
    public func start() throws -> Int {
        announceRedis()
        startJWKS()
        return try server.start()
    }

    /// Runs on the calling thread until a graceful shutdown finishes. SIGTERM and SIGINT start one.
    public func run(onListening: (Int) -> Void) throws {
        announceRedis()
        startJWKS()
        if let driver = server.driver as? POSIXDriver {
            driver.onSignal([SIGTERM, SIGINT]) { [self] in
                log.info("signal received: shutting down")
                // Detached: the main actor is blocked in run() for the whole life of the loop.
                Task.detached { await self.shutdown() }
            }
        }
        try server.run(onListening: onListening)
    }

    /// Graceful shutdown: `/readyz` and `/healthz` turn 503, then every client is closed with 1001.
    public func shutdown() async {
        shuttingDown.store(true, ordering: .relaxed)
        authenticator.jwks?.stop()
        await server.shutdown()
    }

    private func startJWKS() {
        guard let jwks = authenticator.jwks else { return }
        log.info("JWT keys from \(jwks.source), loaded again every \(jwks.intervalMilliseconds) ms")
        jwks.start { [log] line in log.warning(line) }
    }

    private func announceRedis() {
        if let url = config.redis { log.info("connecting to Redis at \(url) (serving starts once every subscription is active)") }
    }

    /// Ready (`/readyz`, `/healthz`): listening, not shutting down, and every Redis
    /// subscription active. Liveness (`/livez`) is only that the loop answers: a lost Redis
    /// takes an instance out of the load balancer, but restarting it would not bring Redis back.
    public var healthy: (ok: Bool, reason: String) {
        if shuttingDown.load(ordering: .relaxed) { return (false, "shutting down") }
        if server.port == nil { return (false, "not listening") }
        if let redisBus, !redisBus.stats.connected { return (false, "redis not connected") }
        return (true, "ok")
    }

    public var counters: ServeCounters { stats.snapshot }

    // MARK: - Hooks

    private func authenticate(_ data: JSONValue) async throws -> AuthResult? {
        switch await check(data) {
        case .failure(let failure):
            refuse(failure)
            return nil
        case .success(let result):
            if config.abuse.maxClientsPerUser > 0, let user = result.userID {
                let count = try await server.clients(ofUser: user).count
                if count >= config.abuse.maxClientsPerUser {
                    refuse(.tooManyClients)
                    log.info("refused user \(user): \(count) clients already (abuse.max_clients_per_user)")
                    return nil
                }
            }
            stats.update { $0.authSucceeded += 1 }
            return result
        }
    }

    /// A new token for an authenticated client: checked as at authenticate; its `sub` must be
    /// the client's user (the kernel compares), its `exp` becomes the client's expiry.
    private func refresh(_ request: RefreshRequest) async throws -> RefreshResult? {
        switch await check(request.data) {
        case .failure(let failure):
            stats.update { $0.refreshFailed += 1 }
            log.debug("refresh refused for client \(request.clientID): \(failure)")
            return nil
        case .success(let result):
            stats.update { $0.refreshSucceeded += 1 }
            return RefreshResult(userID: result.userID, expiresAt: result.expiresAt)
        }
    }

    /// The authenticator's answer; a JWT whose `kid` the key set lacks loads the set again
    /// first (rate-limited), so a key published since the last load works at once.
    private func check(_ data: JSONValue) async -> Result<AuthResult, AuthFailure> {
        let outcome = authenticator.check(data, now: unixSeconds())
        guard case .failure(.jwt(.unknownKey)) = outcome, let jwks = authenticator.jwks,
              await jwks.refreshForUnknownKey() else { return outcome }
        return authenticator.check(data, now: unixSeconds())
    }

    private func refuse(_ failure: AuthFailure) {
        stats.update { $0.authFailed[failure.label, default: 0] += 1 }
        log.debug("authentication refused: \(failure)")
    }

    private func validateRoom(_ request: RoomRequest) async throws -> [String] {
        let current = try await server.client(id: request.clientID)?.rooms ?? []
        let decision = policy.decide(requested: request.rooms, clientID: request.clientID, userID: request.userID, current: current)
        if !decision.denied.isEmpty || !decision.overLimit.isEmpty {
            stats.update {
                $0.roomsDenied += decision.denied.count
                $0.roomsOverLimit += decision.overLimit.count
            }
            if !decision.denied.isEmpty {
                replyError(request.clientID, "Room not allowed", rooms: decision.denied)
            }
            if !decision.overLimit.isEmpty {
                replyError(request.clientID, "Too many rooms", rooms: decision.overLimit)
            }
        }
        return decision.allowed
    }

    private func handshake(_ request: HandshakeRequest) -> HandshakeResult? {
        guard case .string(let key)? = request.data["publicKey"],
              let result = try? EncryptionSession.handshake(clientPublicKeyBase64: key) else { return nil }
        sessions.withLock { $0[request.clientID] = result.session }
        return HandshakeResult(serverPublicKey: result.serverPublicKeyBase64, salt: result.saltBase64)
    }

    /// PROTOCOL.md 9: `{"event":"encrypted","data":{"iv","ct"}}` for an encrypted client.
    private func encrypt(_ message: OutboundMessage) -> (event: String, data: JSONValue?)? {
        guard let session = sessions.withLock({ $0[message.clientID] }) else { return nil }
        let (iv, ct) = session.encryptEnvelope(json: OutboundEnvelope.encode(event: message.event, data: message.data))
        return ("encrypted", .object(JSONObject([("iv", .string(iv)), ("ct", .string(ct))])))
    }

    private func forget(_ clientID: String) {
        _ = sessions.withLock { $0.removeValue(forKey: clientID) }
        limiter?.forget(clientID)
    }

    // MARK: - Custom events (on the loop)

    /// Events the app must never let a client send to others: the protocol's own.
    static let reservedEvents: Set<String> = ["connected", "error", "encrypted", "authenticate", "join", "leave",
                                              "heartbeat", "disconnect", "refresh", "refreshed"]

    private func handle(_ message: ClientMessage) {
        if let limiter, case .limited(let warn) = limiter.take(message.clientID, now: monotonicMilliseconds()) {
            stats.update { $0.rateLimited += 1 }
            if warn { replyError(message.clientID, "Rate limit exceeded") }
            return
        }
        var event = message.message.event
        var data = message.message.data
        if event == "encrypted", let session = sessions.withLock({ $0[message.clientID] }) {
            guard case .string(let iv)? = data?["iv"], case .string(let ct)? = data?["ct"],
                  let plain = try? session.decrypt(ivBase64: iv, ctBase64: ct),
                  case .object(let inner)? = try? JSONValue.parse(plain, numbers: config.numberStyle),
                  case .string(let innerEvent)? = inner["event"], !innerEvent.isEmpty else {
                stats.update { $0.decryptFailures += 1 }
                replyError(message.clientID, "Cannot decrypt message")
                return
            }
            event = innerEvent
            data = inner["data"]
        }
        switch event {
        case "send":
            guard let room = data?["room"]?.stringValue, FieldKind.roomProblem(room) == nil,
                  let job = relayJob(.room(room), message, data) else { return invalid(message, "send needs {room, event, data}") }
            enqueue(job)
        case "direct":
            guard let user = data?["userId"]?.stringValue, !user.isEmpty,
                  let job = relayJob(.user(user), message, data) else { return invalid(message, "direct needs {userId, event, data}") }
            enqueue(job)
        case "broadcast":
            guard config.allowBroadcast else {
                stats.update { $0.customEvents["invalid", default: 0] += 1 }
                return replyError(message.clientID, "Broadcast is disabled")
            }
            guard let job = relayJob(.everyone, message, data) else { return invalid(message, "broadcast needs {event, data}") }
            enqueue(job)
        default:
            stats.update { $0.customEvents["other", default: 0] += 1 }
            log.debug("custom event '\(event)' from \(message.clientID) (user \(message.userID ?? "-")) not handled")
        }
    }

    private func invalid(_ message: ClientMessage, _ why: String) {
        stats.update { $0.customEvents["invalid", default: 0] += 1 }
        replyError(message.clientID, "Invalid message: \(why)")
    }

    /// The relayed payload carries the sender as the server knows it: `{from, clientId, room?, data}`.
    private func relayJob(_ target: Relay.Target, _ message: ClientMessage, _ data: JSONValue?) -> Relay.Job? {
        guard let event = data?["event"]?.stringValue, !event.isEmpty, event.utf8.count <= 128,
              !Self.reservedEvents.contains(event) else { return nil }
        var stamped: [(String, JSONValue)] = [("from", message.userID.map(JSONValue.string) ?? .null),
                                              ("clientId", .string(message.clientID))]
        if case .room(let room) = target { stamped.append(("room", .string(room))) }
        stamped.append(("data", data?["data"] ?? .null))
        return Relay.Job(sender: message.clientID, target: target, event: event, data: .object(JSONObject(stamped)))
    }

    private func enqueue(_ job: Relay.Job) {
        let kind: String = switch job.target { case .room: "send"; case .user: "direct"; case .everyone: "broadcast" }
        stats.update { $0.customEvents[kind, default: 0] += 1 }
        guard relay.append(job) else { return }
        Task.detached { [self] in await drainRelay() }
    }

    /// Delivers queued jobs in order, one loop hop per batch: the room check needs the kernel,
    /// which a synchronous messageHandler cannot query (see the serve report).
    private func drainRelay() async {
        while let batch = relay.takeBatch() {
            let server = self.server
            let failures: [(String, String)] = (try? await server.query { kernel in
                var failures: [(String, String)] = []
                for job in batch {
                    do {
                        switch job.target {
                        case .room(let room):
                            guard kernel.client(id: job.sender)?.rooms.contains(room) == true else {
                                failures.append((job.sender, "Not in room \(room)"))
                                continue
                            }
                            try server.sendToRoom(room, event: job.event, data: job.data)
                            try server.publish(.room, target: room, event: job.event, data: job.data)
                        case .user(let user):
                            try server.sendToUser(user, event: job.event, data: job.data)
                            try server.publish(.user, target: user, event: job.event, data: job.data)
                        case .everyone:
                            try server.broadcast(event: job.event, data: job.data)
                            try server.publish(.broadcast, event: job.event, data: job.data)
                        }
                    } catch {
                        failures.append((job.sender, "Delivery failed"))
                    }
                }
                return failures
            }) ?? []
            for (client, text) in failures { replyError(client, text) }
        }
    }

    private func replyError(_ clientID: String, _ text: String, rooms: [String]? = nil) {
        var members: [(String, JSONValue)] = [("message", .string(text))]
        if let rooms { members.append(("rooms", .array(rooms.map(JSONValue.string)))) }
        try? server.sendToClient(clientID, event: "error", data: .object(JSONObject(members)))
    }

    // MARK: - HTTP (on the loop)

    private func answer(_ request: HTTPRequest) -> HTTPAnswerBody? {
        var known = ["/metrics", "/healthz", "/livez", "/readyz"]
        if demoPage != nil { known += ["/", "/index.html"] }
        guard known.contains(request.path) else { return nil }
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPAnswerBody(status: 405, reason: "Method Not Allowed", text: "Method Not Allowed\n",
                                  headers: [("Allow", "GET, HEAD")])
        }
        switch request.path {
        case "/metrics":
            guard let metrics = server.metricsOnLoop() else {
                return HTTPAnswerBody(status: 503, reason: "Service Unavailable", text: "metrics unavailable\n")
            }
            let text = PrometheusText.render(server: metrics, serve: stats.snapshot, redis: redisBus?.stats, build: build,
                                             process: ProcessMetrics.read())
            return HTTPAnswerBody(contentType: PrometheusText.contentType, text: text, headers: [("Cache-Control", "no-store")])
        case "/livez":
            return HTTPAnswerBody(text: "ok\n", headers: [("Cache-Control", "no-store")])
        case "/healthz", "/readyz":
            let health = healthy
            return health.ok
                ? HTTPAnswerBody(text: "ok\n", headers: [("Cache-Control", "no-store")])
                : HTTPAnswerBody(status: 503, reason: "Service Unavailable", text: health.reason + "\n",
                                 headers: [("Cache-Control", "no-store")])
        default:
            return HTTPAnswerBody(contentType: "text/html; charset=utf-8", body: demoPage ?? [],
                                  headers: [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                                            ("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:")])
        }
    }
}

/// Ordered hand-off of relay jobs from the loop to one drainer at a time.
final class Relay: Sendable {
    enum Target: Sendable {
        case room(String)
        case user(String)
        case everyone
    }

    struct Job: Sendable {
        var sender: String
        var target: Target
        var event: String
        var data: JSONValue
    }

    private struct State {
        var jobs: [Job] = []
        var draining = false
    }

    private let state = Mutex(State())

    /// Queues a job; true when the caller must start a drainer.
    func append(_ job: Job) -> Bool {
        state.withLock { state in
            state.jobs.append(job)
            if state.draining { return false }
            state.draining = true
            return true
        }
    }

    /// Everything queued, or nil (and the drainer stops) when nothing is.
    func takeBatch() -> [Job]? {
        state.withLock { state in
            guard !state.jobs.isEmpty else {
                state.draining = false
                return nil
            }
            defer { state.jobs.removeAll(keepingCapacity: true) }
            return state.jobs
        }
    }
}

/// The app, reachable from hooks that are built before it exists (set once, before start).
private final class WeakApp: @unchecked Sendable {
    weak var value: ServeApp?
}
