import Switchboard
import SwitchboardBus
import SwitchboardCrypto
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `switchboard serve`: a generic gateway app on the library's public API. Token/JWT auth, a
/// room policy, abuse limits, optional end-to-end encryption, the demo page, `/metrics`,
/// `/livez`, `/readyz` and `/healthz` (ServeApp+HTTP.swift, also on the internal listener),
/// a drain before shutdown, and a reload of certificates and keys (ServeApp+Operations.swift).
public final class ServeApp: Sendable {
    public let config: ServeConfig
    /// A token for user `demo` (valid 1 h) when no authentication is configured.
    public let developmentToken: String?
    public let server: Server
    /// What `/metrics` reports as `switchboard_build_info`.
    public let build: BuildInfo

    let log: Logger
    /// Replaced by `reload()` (SIGHUP) when the key files change.
    let authenticator: Mutex<Authenticator>
    private let policy: RoomPolicy
    private let limiter: RateLimiter?
    let redisBus: RedisBus?
    let stats = ServeStats()
    private let sessions = Mutex<[String: EncryptionSession]>([:])
    private let relay = Relay()
    /// Set when a shutdown starts (its drain included): `/readyz` answers 503 from then on.
    let shuttingDown = Atomic<Bool>(false)
    /// nil when `http.demo_page` is off: `/` is then a 404.
    let demoPage: [UInt8]?
    /// nil without `internal.port`.
    let internalListener: InternalListener?
    /// The drain's wait (`shutdown()`), cut short by a second shutdown.
    let drainTimer = DrainTimer()
    /// The internal listener's bound port, 0 until it listens.
    private let boundInternalPort = Atomic<Int>(0)
    /// The server API's own listener (docs/api.yaml); nil when no API key is configured or
    /// when the API is on the internal listener (`apiMountedInternally`).
    let api: APIListener?
    /// `api.listen: internal` with a key: the internal listener serves the API.
    let apiMountedInternally: Bool
    private let apiBound = Mutex<Int?>(nil)
    /// The backend hooks (`proxy.*`, ProxyWiring.swift); nil when no hook URL is configured.
    let proxy: ProxyHooks?

    /// Checks everything the configuration names (files, keys) and builds the server;
    /// nothing is bound until `start()`/`run()`. Throws `ConfigErrors` or `StartupError`.
    public init(config: ServeConfig, logger: Logger, build: BuildInfo = .current(environment: [:])) throws {
        let unreadable = Self.unreadableTLSFiles(config)
        if !unreadable.isEmpty { throw ConfigErrors(unreadable) }
        self.config = config
        self.build = build
        self.log = logger
        var authenticator = try Authenticator.make(config)
        // With a connect hook the backend decides who connects: no development token either.
        if !config.auth.isConfigured && config.proxy.url(.connect) == nil {
            let secret = SecureRandom.bytes(32)
            authenticator.jwt = JWTVerifier(hs256Secret: secret)
            let expires = unixSeconds() + 3600
            developmentToken = JWTSigner.hs256(payload: ["sub": "demo", "exp": .number(JSONNumber(expires))], secret: secret)
        } else {
            developmentToken = nil
        }
        self.authenticator = Mutex(authenticator)
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

        let proxy = config.proxy.isEnabled ? ProxyHooks(client: ProxyClient(config: config.proxy), log: logger) : nil
        self.proxy = proxy
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
        if let proxy { Self.proxyHooks(&hooks, proxy, config, app, logger) }
        server = try Server(options: config.serverOptions, hooks: hooks, bus: redisBus, logger: logger)
        // Server API: on its own listener, started with the server, or on the internal one
        // (api.listen, APIConfig.swift); one APIRouter either way.
        let server = self.server
        let apiRouter = try config.api.resolveKey(config).get().map {
            APIRouter(server: server, key: $0, maxBody: config.api.maxBody)
        }
        let apiOnInternal = config.api.listen == .internalListener
        if apiOnInternal, apiRouter != nil, config.internalListener.port == nil {
            throw ConfigErrors(APIConfig.crossCheck(config))  // a configuration not from ConfigLoader
        }
        api = apiOnInternal ? nil : apiRouter.map { APIListener(host: config.api.host, port: config.api.port, router: $0) }
        apiMountedInternally = apiOnInternal && apiRouter != nil
        internalListener = config.internalListener.port == nil ? nil
            : try InternalListener(router: Self.internalRouter(app: app, api: apiOnInternal ? apiRouter : nil))
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

    /// Binds (the internal listener first) and runs the loop on a thread of its own; returns
    /// the port (tests).
    @discardableResult
    public func start() throws -> Int {
        announceRedis()
        startJWKS()
        try startInternalListener()
        try startAPI()
        do { return try server.start() } catch {
            api?.stop()
            throw error
        }
    }

    /// The port the server API answers on once started: its own, or the internal listener's
    /// with `api.listen: internal`; nil when it is off.
    public var apiPort: Int? { apiMountedInternally ? internalPort : apiBound.withLock { $0 } }

    /// Binds the server API, before the gateway, so that a port already taken stops the start
    /// before anything else; until the gateway runs, the API answers 503.
    private func startAPI() throws {
        guard let api else { return }
        let port = try api.start()
        apiBound.withLock { $0 = port }
        log.info("server API on http://\(config.api.host):\(port)\(APIRouter.prefix)")
    }

    /// Runs on the calling thread until a graceful shutdown finishes. SIGTERM and SIGINT start
    /// one (a second one skips what is left of the drain); SIGHUP reloads (`reload()`).
    public func run(onListening: (Int) -> Void) throws {
        announceRedis()
        try startAPI()
        startJWKS()
        if let driver = server.driver as? POSIXDriver {
            // Before any thread starts (the internal listener's): threads inherit the mask.
            driver.onSignal([SIGTERM, SIGINT]) { [self] in
                log.info("signal received: shutting down")
                // Detached: the main actor is blocked in run() for the whole life of the loop.
                Task.detached { await self.shutdown() }
            }
            driver.onSignal([SIGHUP]) { [self] in
                log.info("SIGHUP: reloading the TLS certificate and the authentication keys")
                reload()
            }
        }
        try startInternalListener()
        try server.run(onListening: onListening)
    }

    /// The internal listener's port once it listens; nil without `internal.port`.
    public var internalPort: Int? {
        let port = boundInternalPort.load(ordering: .acquiring)
        return port == 0 ? nil : port
    }

    private func startInternalListener() throws {
        guard let internalListener, let port = config.internalListener.port else { return }
        let bound = try internalListener.start(host: config.internalListener.host, port: port)
        boundInternalPort.store(bound, ordering: .releasing)
        let api = apiMountedInternally ? ", the server API at \(APIRouter.prefix)" : ""
        log.info("internal listener on \(config.internalListener.host):\(bound) (/metrics, /livez, /readyz, /healthz\(api))")
    }

    private func startJWKS() {
        guard let jwks = authenticator.withLock({ $0.jwks }) else { return }
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
        try await admit(await check(data))
    }

    /// The authenticator's (or the connect hook's) verdict, with the per-user client limit.
    func admit(_ outcome: Result<AuthResult, AuthFailure>) async throws -> AuthResult? {
        switch outcome {
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
        let outcome = authenticator.withLock { $0 }.check(data, now: unixSeconds())
        guard case .failure(.jwt(.unknownKey)) = outcome, let jwks = authenticator.withLock({ $0.jwks }),
              await jwks.refreshForUnknownKey() else { return outcome }
        return authenticator.withLock { $0 }.check(data, now: unixSeconds())
    }

    func refuse(_ failure: AuthFailure) {
        stats.update { $0.authFailed[failure.label, default: 0] += 1 }
        log.debug("authentication refused: \(failure)")
    }

    func validateRoom(_ request: RoomRequest) async throws -> [String] {
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

    func forget(_ clientID: String) {
        _ = sessions.withLock { $0.removeValue(forKey: clientID) }
        limiter?.forget(clientID)
    }

    // MARK: - Custom events (on the loop)

    /// Events the app must never let a client send to others: the protocol's own (`joined` and
    /// `history` too, so that no one can forge a room's position or history).
    static let reservedEvents: Set<String> = ["connected", "error", "encrypted", "authenticate", "join", "leave",
                                              "heartbeat", "disconnect", "refresh", "refreshed", "joined", "history"]

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
            if server.options.loops > 1 {
                // The senders may be on any loop: their rooms are read from every loop first
                // (one hop per loop), then the jobs are delivered from here, in order.
                let senders = Set(batch.map(\.sender))
                let rooms = (try? await server.queryEach { kernel in
                    senders.compactMap { id in kernel.client(id: id).map { (id, $0.rooms) } }
                }) ?? []
                let roomsOf = Dictionary(rooms.joined(), uniquingKeysWith: { first, _ in first })
                // Which rooms have history is the same on every loop: one asks.
                let targets = batch.compactMap { if case .room(let room) = $0.target { room } else { nil } }
                let recorded = server.options.historyRooms.isEmpty ? []
                    : Set((try? await server.query { kernel in targets.filter(kernel.hasHistory) }) ?? [])
                let failures = Self.deliver(batch, on: server, recorded: recorded.contains) { roomsOf[$0]?.contains($1) == true }
                for (client, text) in failures { replyError(client, text) }
                continue
            }
            let failures: [(String, String)] = (try? await server.query { kernel in
                Self.deliver(batch, on: server, recorded: kernel.hasHistory) { kernel.client(id: $0)?.rooms.contains($1) == true }
            }) ?? []
            for (client, text) in failures { replyError(client, text) }
        }
    }

    /// Delivers relay jobs in order; `isMember(sender, room)` checks a room job's sender, and
    /// `recorded(room)` says whether the room has history. Returns the errors to send back to
    /// senders.
    private static func deliver(_ batch: [Relay.Job], on server: Server, recorded: (String) -> Bool,
                                isMember: (String, String) -> Bool) -> [(String, String)] {
        var failures: [(String, String)] = []
        for job in batch {
            do {
                switch job.target {
                case .room(let room):
                    guard isMember(job.sender, room) else {
                        failures.append((job.sender, "Not in room \(room)"))
                        continue
                    }
                    try server.sendToRoom(room, event: job.event, data: job.data)
                    // A room with history records the message once, and the store delivers it
                    // on every instance (docs/recovery.md): a publish would record it again.
                    if !recorded(room) { try server.publish(.room, target: room, event: job.event, data: job.data) }
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
    }

    func replyError(_ clientID: String, _ text: String, rooms: [String]? = nil) {
        var members: [(String, JSONValue)] = [("message", .string(text))]
        if let rooms { members.append(("rooms", .array(rooms.map(JSONValue.string)))) }
        try? server.sendToClient(clientID, event: "error", data: .object(JSONObject(members)))
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
final class WeakApp: @unchecked Sendable {
    weak var value: ServeApp?
}
