import Logging
import SwitchboardBus
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A Switchboard gateway: the library a Swift app embeds.
///
/// ```swift
/// var hooks = Hooks(authenticate: { data in
///     guard let token = data["token"]?.stringValue else { return nil }
///     return AuthResult(userID: try await verify(token))
/// })
/// let server = try Server(options: ServerOptions(), hooks: hooks)
/// let port = try server.start()          // runs the loop on its own thread
/// try server.sendToRoom("news", event: "headline", data: ["text": "hello"])
/// await server.shutdown()
/// ```
///
/// With `ServerOptions.loops` above 1 it runs that many loops, each with its own clients
/// (`ShardSet` says how deliveries, bus messages and queries reach all of them).
public final class Server: @unchecked Sendable {
    public let options: ServerOptions
    /// This instance's id on the bus (a random UUID).
    public let serverID: String
    /// The driver of the first loop (the only one with `loops: 1`).
    public let driver: any Driver
    /// Every loop's driver, the first's first: what is done to the listener or the TLS context
    /// (a drain's `stopAccepting`, a certificate reload) is done to each.
    public var drivers: [any Driver] { shards.all.map(\.driver) }
    public let bus: any MessageBus
    private let hooks: Hooks
    private let log: Logger
    private let state = Mutex<Phase>(.created)
    /// `state` is `.running` (read without the lock on every delivery).
    private let isRunning = Atomic<Bool>(false)
    private var shards: ShardSet!
    /// The engine of a server with one loop: its deliveries take the path they took before
    /// there were loops, with no layer between (`scripts/callgrind echo` counts it). Nil with
    /// several loops.
    private var onlyEngine: Engine?
    /// `metricsOnLoop` over several loops; nil with one.
    private var loopMetrics: LoopMetrics?
    /// Where presence is kept across instances (Redis), shared by every loop's engine; nil
    /// without presence rooms or Redis.
    private var presenceStore: (any PresenceStore)?
    /// Where the rooms with history keep their messages (Redis streams, or this process's
    /// memory), shared by every loop's engine; nil without history rooms.
    private var historyStore: (any HistoryStore)?

    private enum Phase { case created, running(port: Int), stopped }

    /// Validates the configuration (PROTOCOL.md 11). Nothing is bound until `start()`/`run()`.
    public convenience init(options: ServerOptions = ServerOptions(), hooks: Hooks, driver: (any Driver)? = nil,
                            bus: (any MessageBus)? = nil, logger: Logger = Logger(), ids: IDGenerator = IDGenerator()) throws {
        if options.loops > 1, let driver {
            throw StartupError(message: "loops: \(options.loops) needs the built-in POSIXDriver, not \(type(of: driver)) "
                + "(one driver runs one loop; leave loops at 1 with a driver of your own)")
        }
        try self.init(options: options, hooks: hooks, drivers: driver.map { [$0] }, bus: bus, logger: logger, ids: ids)
    }

    /// A server whose loops run on the given drivers, one per loop (`options.loops` of them),
    /// the first's first. The deterministic simulation runs several loops this way, each on a
    /// simulated driver; each driver's `run()` is called as a POSIX driver's would be (the first
    /// on `run`'s thread, the others on threads of their own), so a driver of a shared loop
    /// steps it from the first and returns at once from the others. Nil: POSIX drivers.
    public init(options: ServerOptions = ServerOptions(), hooks: Hooks, drivers: [any Driver]?,
                bus: (any MessageBus)? = nil, logger: Logger = Logger(), ids: IDGenerator = IDGenerator()) throws {
        guard hooks.authenticate != nil || hooks.authenticateClient != nil || options.rawEcho else { throw StartupError(.invalidAuthenticateFn) }
        guard (1...IDGenerator.shardLimit).contains(options.loops) else {
            throw StartupError(message: "loops: must be from 1 to \(IDGenerator.shardLimit) (got \(options.loops))")
        }
        if let given = drivers, given.count != options.loops {
            throw StartupError(message: "loops: \(options.loops) needs as many drivers, one per loop (got \(given.count))")
        }
        var ids = ids
        self.options = options
        self.hooks = hooks
        self.log = logger
        self.serverID = ids.uuid()
        if let redis = options.redis, bus == nil {
            let url = try StartupError.redisURL(redis)
            self.bus = RedisBus(url: url, channels: Channels.subscribe, patterns: Channels.psubscribe,
                                options: RedisBusOptions(failFast: options.redisFailFast, dropsOwnEchoes: true),
                                log: { logger.warning("redis: \($0)") })
        } else {
            self.bus = bus ?? InProcessBus()
        }
        let given = drivers
        var drivers: [any Driver] = []
        if let given {
            for driver in given { try Self.check(options, against: driver) }
            drivers = given
        } else {
            for _ in 0..<options.loops {
                let posix = try POSIXDriver(tlsCertificateFile: options.tlsCertificateFile, tlsKeyFile: options.tlsKeyFile,
                                           hooksOnLoop: options.hooksOnLoop)
                posix.logTLSFailure = { logger.info($0) }
                posix.reusePort = options.loops > 1
                drivers.append(posix)
            }
        }
        // Presence across instances: in Redis when the fleet shares one, else the kernel's rooms.
        var presenceStore: (any PresenceStore)?
        if let url = try options.redis.map(StartupError.redisURL) ?? options.presenceRedis, !options.presenceRooms.isEmpty {
            presenceStore = RedisPresenceStore(url: url, serverID: serverID,
                                               ttlMilliseconds: options.presenceTTL,
                                               roomKeyPrefix: Channels.presenceRoomPrefix,
                                               instanceKeyPrefix: Channels.presenceInstancePrefix, log: { logger.warning("redis: \($0)") })
        }
        self.presenceStore = presenceStore
        // History: in Redis when the fleet shares one (one stream per room), else in memory.
        var historyStore: (any HistoryStore)?
        if !options.historyRooms.isEmpty {
            if let url = try options.redis.map(StartupError.redisURL) ?? options.historyRedis {
                historyStore = RedisHistoryStore(url: url, streamKeyPrefix: Channels.historyStreamPrefix,
                                                 metaKeyPrefix: Channels.historyMetaPrefix, size: options.historySize,
                                                 ttlMilliseconds: options.historyTTL,
                                                 epochTTLMilliseconds: options.historyEpochTTL,
                                                 log: { logger.warning("redis: \($0)") })
            } else {
                historyStore = InMemoryHistoryStore(size: options.historySize, ttlMilliseconds: options.historyTTL)
            }
        }
        self.historyStore = historyStore
        self.driver = drivers[0]
        // Every kernel has the server's id: a bus message this process published is dropped by
        // every shard alike. With several loops each engine publishes through a `ShardBus`.
        let bus = self.bus
        let peers = PeerCounts()
        let shardBuses = drivers.count == 1 ? [] : drivers.indices.map { ShardBus(real: bus, index: $0) }
        self.shards = ShardSet(drivers.enumerated().map { index, driver in
            var shardIDs = ids
            if drivers.count > 1 { shardIDs.shard = UInt64(index) }
            return Shard(driver: driver, engine: Engine(options: options, hooks: hooks, driver: driver,
                                                        bus: shardBuses.isEmpty ? bus : shardBuses[index],
                                                        serverID: serverID, ids: shardIDs, log: logger,
                                                        presenceStore: presenceStore, peers: peers,
                                                        historyStore: historyStore, recordsHistory: index == 0))
        }, serverID: serverID, numberStyle: options.numberStyle)
        if drivers.count == 1 { onlyEngine = shards.first.engine } else { loopMetrics = LoopMetrics(loops: drivers.count) }
        for (index, shardBus) in shardBuses.enumerated() {
            shardBus.shards = shards
            shardBus.engine = shards.all[index].engine
            if presenceStore == nil {
                // In-process presence: a client's `presence` query reads the other loops too.
                shards.all[index].engine.presence.otherLoops = { [weak shards] room, answer in
                    guard let shards else { return answer([]) }
                    shards.presence(ofRoom: room, except: index, answer: answer)
                }
            }
        }
        // A message the in-memory store recorded reaches every loop's kernel, in offset order
        // (the store calls this under its lock; each loop's queue keeps the order).
        let shards = self.shards!
        shards.first.engine.history.dispatch = { [weak shards] message in
            for shard in shards?.all ?? [] { shard.execute { $0.inputQueued(.historyMessage(message)) } }
        }
    }

    /// An option that a given driver cannot honour is a start-up error, not a silent no-op: TLS
    /// files with a driver that does not serve TLS, or `hooksOnLoop` (the default) with one
    /// whose `spawn` does not run hooks on its loop.
    private static func check(_ options: ServerOptions, against driver: any Driver) throws {
        let capabilities = driver.capabilities
        if options.tlsCertificateFile != nil || options.tlsKeyFile != nil, !capabilities.contains(.tls) {
            throw StartupError(message: "tlsCertificateFile/tlsKeyFile: \(type(of: driver)) does not serve TLS "
                + "(configure TLS on the driver, or leave these options unset)")
        }
        if options.hooksOnLoop, !capabilities.contains(.hooksOnLoop) {
            throw StartupError(message: "hooksOnLoop: \(type(of: driver)) cannot run hooks on its loop "
                + "(set ServerOptions.hooksOnLoop = false, or declare .hooksOnLoop with a LoopTaskExecutor)")
        }
    }

    /// The same, logging to the app's swift-log logger (its handler, label, level and
    /// metadata); lines about a client add `client_id`, `user_id` and `close_code`.
    public convenience init(options: ServerOptions = ServerOptions(), hooks: Hooks, driver: (any Driver)? = nil,
                            bus: (any MessageBus)? = nil, logger: Logging.Logger,
                            ids: IDGenerator = IDGenerator()) throws {
        try self.init(options: options, hooks: hooks, driver: driver, bus: bus, logger: Logger(logger), ids: ids)
    }

    /// The bound port once started.
    public var port: Int? {
        state.withLock { if case .running(let port) = $0 { port } else { nil } }
    }

    /// Binds, subscribes to the bus, and runs each loop on a thread of its own. Returns the port
    /// once every listener accepts and every bus subscription is active.
    @discardableResult
    public func start() throws -> Int {
        let port = try bind()
        for shard in shards.all { Self.runDetached(shard) }
        return port
    }

    /// Like `start()`, but runs the first loop on the calling thread until shutdown completes.
    public func run(onListening: (Int) -> Void) throws {
        let port = try bind()
        for shard in shards.all.dropFirst() { Self.runDetached(shard) }
        onListening(port)
        withExtendedLifetime(shards.first.engine) { driver.run() }
    }

    private static func runDetached(_ shard: Shard) {
        let driver = shard.driver
        // The driver does not retain the engine it reports to (docs/drivers.md, ownership): the
        // loop's thread keeps it alive until `run()` returns, even if the server is released
        // right after `shutdown()`, which returns before the loop's last turn ends.
        let engine = UncheckedBox(shard.engine)
        detachThread { withExtendedLifetime(engine) { driver.run() } }
    }

    /// Binds every loop's listener (the first picks the port when it is 0; the others share it
    /// through `SO_REUSEPORT`), then subscribes to the bus once, for all of them.
    private func bind() throws -> Int {
        var port = options.port
        for (index, shard) in shards.all.enumerated() {
            let bound = try shard.driver.start(host: options.host, port: port, events: shard.engine)
            if index == 0 { port = bound }
        }
        let ready = Latch<Result<Void, BusError>>()
        let shards = self.shards!
        // What one read of the subscription brought runs in one loop task: its fan-outs are
        // written together (`Engine.input(busMessages:)`).
        bus.start(receiveBatch: { messages in
            let entered = monotonicNanoseconds()
            for shard in shards.all {
                shard.execute { engine in
                    engine.input(busMessages: messages)
                    for _ in messages { engine.stats.fanOutQueued(enteredAt: entered) }
                }
            }
        }, ready: { ready.set($0) })
        if case .failure(let error) = ready.wait() {
            throw StartupError(message: "Bus not ready: \(error)")
        }
        presenceStore?.start()
        historyStore?.start()
        state.withLock { $0 = .running(port: port) }
        isRunning.store(true, ordering: .releasing)
        for shard in shards.all { shard.execute { $0.started() } }
        log.info("listening on \(options.host):\(port)\(options.path)"
            + (shards.all.count > 1 ? " (\(shards.all.count) loops)" : ""))
        return port
    }

    /// Graceful shutdown: stop accepting, close every client with 1001 (in batches), run the
    /// disconnect callbacks, wait for the connections (bounded by `shutdownGrace`), close the bus.
    public func shutdown() async {
        let wasRunning = state.withLock { phase -> Bool in
            guard case .running = phase else { return false }
            phase = .stopped
            isRunning.store(false, ordering: .releasing)
            return true
        }
        guard wasRunning else { return }
        await shards.shutdown()
        presenceStore?.close()
        historyStore?.close()
        bus.close()
        for shard in shards.all { shard.driver.stop() }
    }

    // MARK: - Delivery (PROTOCOL.md 7); callable from any thread once started

    /// `send(destination?, topic, data)` (PROTOCOL.md 7): broadcast, a local client, a local
    /// room, or a room elsewhere; always published on the bus too.
    ///
    /// As in the original, a send without data or without a topic does nothing at all (no
    /// delivery, no publish): `data: nil` is the member left out (JavaScript's `undefined`),
    /// while `data: .null` is an explicit JSON null and is sent. A nil or empty `topic` is
    /// the topic left out. (The parameters are optionals rather than a new type so that every
    /// existing call still compiles; only a nil `data`, which used to send a message without
    /// `data`, now sends nothing.)
    public func send(destination: String? = nil, topic: String?, data: JSONValue?) throws {
        guard let topic, !topic.isEmpty, let data else {
            guard isRunning.load(ordering: .acquiring) else { throw StartupError(.notInitialized) }
            return
        }
        try submitFanOut(.send(destination: destination, topic: topic, data: data))
    }
    public func sendToClient(_ clientID: String, event: String, data: JSONValue?) throws {
        try submit(.toClient(id: clientID, event: event, data: data))
    }
    public func sendToUser(_ userID: String, event: String, data: JSONValue?) throws {
        try submitFanOut(.toUser(userID: userID, event: event, data: data))
    }
    public func sendToRoom(_ room: String, event: String, data: JSONValue?, exclude: [String] = []) throws {
        try submitFanOut(.toRoom(room: room, event: event, data: data, exclude: exclude))
    }
    public func broadcast(event: String, data: JSONValue?, exclude: [String] = []) throws {
        try submitFanOut(.broadcast(event: event, data: data, exclude: exclude))
    }
    /// Publishes one envelope for the other instances (no local delivery).
    public func publish(_ kind: BusEnvelope.Kind, target: String? = nil, event: String, data: JSONValue?,
                        exclude: [String]? = nil) throws {
        try submitFanOut(.publish(BusEnvelope(serverID: serverID, kind: kind, target: target, event: event,
                                               data: data, exclude: exclude)))
    }

    private func submit(_ delivery: Delivery) throws {
        guard isRunning.load(ordering: .acquiring) else { throw StartupError(.notInitialized) }
        guard let engine = onlyEngine else { return shards.deliver(delivery, timed: false) }
        if driver.inLoop {
            engine.deliverNow(delivery)
        } else {
            let engine = UncheckedBox(engine)
            driver.execute { engine.value.input(.deliver(delivery)) }
        }
    }

    /// `submit`, timed into `ServerMetrics.fanOutLatency`: every delivery but one to a single
    /// client, which is not a fan-out (and is the echo path, which pays for no clock read).
    private func submitFanOut(_ delivery: Delivery) throws {
        guard isRunning.load(ordering: .acquiring) else { throw StartupError(.notInitialized) }
        guard let engine = onlyEngine else { return shards.deliver(delivery, timed: true) }
        let entered = monotonicNanoseconds()
        if driver.inLoop {
            engine.deliverNow(delivery)
            engine.stats.fanOutQueued(enteredAt: entered)
        } else {
            let engine = UncheckedBox(engine)
            driver.execute {
                // `input` returns once every frame is queued (its fan-out batch flushed).
                engine.value.input(.deliver(delivery))
                engine.value.stats.fanOutQueued(enteredAt: entered)
            }
        }
    }

    // MARK: - Disconnect

    /// Closes one client, or every client of a user, on this instance with `code`, which must
    /// be one of the spec's `origin: request` codes (`CloseCode.requestable`); the clients get
    /// its close frame and `clientDisconnected` runs for each, as for any close. Returns the
    /// ids of the clients it closed (none: nobody by that id or user here), from every loop. Instance-local: the
    /// bus envelope has no kind for a disconnect (docs/api.yaml says why).
    @discardableResult
    public func disconnect(_ target: DisconnectTarget, code: CloseCode) async throws -> [String] {
        guard code.origin == .request else {
            throw StartupError(message: "close code \(code.code) is not one a disconnect may choose (spec origin: request)")
        }
        guard port != nil else { throw StartupError(.notInitialized) }
        let closed = await shards.each { engine -> [String] in
            let kernel = engine.kernel
            let ids: [String] = switch target {
            case .client(let id): kernel.client(id: id) == nil ? [] : [id]
            case .user(let userID): kernel.clients(ofUser: userID)
            }
            engine.input(.disconnect(target, code))
            return ids
        }
        return closed.count == 1 ? closed[0] : closed.flatMap { $0 }.sorted()
    }

    // MARK: - Queries

    /// Runs `body` against the first loop's kernel on its loop and returns its answer: the
    /// whole server's with `loops: 1`; with more, see `queryEach`.
    public func query<T: Sendable>(_ body: @escaping @Sendable (Kernel) -> T) async throws -> T {
        guard port != nil else { throw StartupError(.notInitialized) }
        return await shards.first.ask { body($0.kernel) }
    }

    /// Runs `body` against every loop's kernel, each on its loop, and returns the answers in
    /// loop order (one with `loops: 1`). A client is in exactly one of them.
    public func queryEach<T: Sendable>(_ body: @escaping @Sendable (Kernel) -> T) async throws -> [T] {
        guard port != nil else { throw StartupError(.notInitialized) }
        return await shards.each { body($0.kernel) }
    }

    /// Counters and gauges for `/metrics`, summed over the loops (rooms and users counted once
    /// however many loops they span).
    public func metrics() async throws -> ServerMetrics {
        guard port != nil else { throw StartupError(.notInitialized) }
        if shards.all.count == 1 { return await shards.first.ask { $0.metrics() } }
        return ShardMetrics.combined(await shards.each { ShardMetrics($0) })
    }

    /// Runs `body` against the kernel of the loop it is called on (hooks such as
    /// `messageHandler` and `httpHandler` run there, with the clients of that loop); nil
    /// elsewhere.
    public func queryOnLoop<T>(_ body: (Kernel) -> T) -> T? {
        guard let shards, let here = shards.current else { return nil }
        return body(here.engine.kernel)
    }

    /// `metrics()` for handlers that run on a loop and cannot await (e.g. an `httpHandler`):
    /// every loop's counters, as `metrics()` gives them; nil off the loops. With several loops
    /// the calling loop waits for the others to read theirs (`LoopMetrics` says how that never
    /// deadlocks, and when a loop's part can be one request old).
    public func metricsOnLoop() -> ServerMetrics? {
        guard let here = shards.current else { return nil }
        guard let loopMetrics else { return here.engine.metrics() }
        return loopMetrics.combined(asking: shards, here: shards.all.firstIndex { $0 === here }!)
    }

    public func clients() async throws -> [ClientInfo] {
        try await queryEach { kernel in kernel.clientHandles.compactMap { kernel.client($0) } }.flatMap { $0 }
    }
    public func client(id: String) async throws -> ClientInfo? {
        try await queryEach { $0.client(id: id) }.lazy.compactMap { $0 }.first
    }
    public func rooms() async throws -> [String] {
        let names = try await queryEach { $0.roomNames }
        return names.count == 1 ? names[0] : Set(names.joined()).sorted()
    }
    public func members(ofRoom room: String) async throws -> [String] {
        let members = try await queryEach { $0.members(ofRoom: room) }
        return members.count == 1 ? members[0] : members.flatMap { $0 }.sorted()
    }
    public func clients(ofUser userID: String) async throws -> [String] {
        let clients = try await queryEach { $0.clients(ofUser: userID) }
        return clients.count == 1 ? clients[0] : clients.flatMap { $0 }.sorted()
    }
    /// The members of a room with presence on every instance (this process's from its kernels,
    /// the other instances' from Redis when `redis` and `presenceRooms` are set), sorted by
    /// client id.
    public func presence(ofRoom room: String) async throws -> [PresenceMember] {
        // Each loop's members are sorted; all of them together must be sorted again.
        let local = try await queryEach { $0.localPresence(room) }.flatMap { $0 }.sorted { $0.clientID < $1.clientID }
        let relay = UncheckedBox(shards.first.engine.presence)
        return await withCheckedContinuation { continuation in
            relay.value.members(room: room, local: local) { continuation.resume(returning: $0) }
        }
    }
    /// A room's history, as a member's `history` query reads it (`limit` capped at
    /// `historySize`): from Redis when `redis` or `historyRedis` is set, else this process's.
    /// Ask for rooms with history only (`query { $0.hasHistory(room) }`): the store answers for
    /// any name (Redis gives it an epoch). Without `historyRooms`, `reason` is unavailable.
    public func history(ofRoom room: String, limit: Int, since: HistoryPosition?) async -> HistoryAnswer {
        let query = HistoryQuery(room: room, limit: min(limit, options.historySize), since: since)
        let relay = UncheckedBox(shards.first.engine.history)
        return await withCheckedContinuation { continuation in
            relay.value.answer(query) { continuation.resume(returning: $0) }
        }
    }
}

/// A one-shot value handed between threads.
final class Latch<T: Sendable>: @unchecked Sendable {
    private let monitor = ThreadMonitor()
    private var value: T?

    func set(_ newValue: T) {
        monitor.withLock {
            if value == nil { value = newValue }
            monitor.broadcast()
        }
    }

    func wait() -> T {
        monitor.withLock {
            while value == nil { monitor.wait() }
            return value!
        }
    }
}
