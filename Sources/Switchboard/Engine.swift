import SwitchboardBus
import SwitchboardCodec

/// The sans-IO server core: bytes from the driver go through the HTTP parser and the frame
/// decoder into the kernel; the kernel's effects come back out as driver calls, hook calls
/// and bus publishes. Lives on the driver's loop; never blocks.
final class Engine: DriverEvents {
    let options: ServerOptions
    /// Hot option values, kept apart: reading a field of the large `options` struct inside
    /// a closure can copy (and retain) the whole struct.
    private let backpressureLimit: Int
    private let rawEcho: Bool
    let hooks: Hooks
    let driver: any Driver
    let bus: any MessageBus
    let log: Logger
    @exclusivity(unchecked) var kernel: Kernel
    let stats = Stats()

    /// Connections by the driver's id (driver events) ...
    @exclusivity(unchecked) private var connections: [ConnectionID: Connection] = [:]
    /// ... and by slot (the kernel's `ClientHandle` is slot | generation << 32), so fan-out
    /// finds each recipient with an array index instead of a hash lookup.
    @exclusivity(unchecked) private var slots: [Connection?] = []
    private var freeSlots: [Int] = []
    private var generation: UInt64 = 0
    @exclusivity(unchecked) private var effects: [Effect] = []
    @exclusivity(unchecked) private var nestedEffects: [Effect] = []
    @exclusivity(unchecked) private var handling = false
    @exclusivity(unchecked) private var pending: [KernelInput] = []
    @exclusivity(unchecked) private var draining = false
    /// Small fan-outs to the same recipients, queued while one driver event is handled.
    @exclusivity(unchecked) private var batch = FanOutBatch()
    /// Inside `bytesReceived`: fan-outs wait in `batch` until it returns.
    @exclusivity(unchecked) private var batching = false
    @exclusivity(unchecked) private var timerTokens: [TimerID: UInt64] = [:]
    @exclusivity(unchecked) private var tokenTimers: [UInt64: TimerID] = [:]
    @exclusivity(unchecked) private var nextToken: UInt64 = Engine.firstKernelToken
    private var ids: IDGenerator
    @exclusivity(unchecked) private var shutdown: ShutdownState?
    /// Open connections per peer address (only with maxConnectionsPerIP).
    private var connectionsPerPeer: [String: Int] = [:]
    /// clientConnectedFn/clientDisconnectedFn calls still running (shutdown waits for them).
    private var callbacksRunning = 0

    var connectionCount: Int { connections.count }
    var backpressuredCount: Int { connections.values.reduce(0) { $0 + ($1.backpressured ? 1 : 0) } }

    /// Frames up to this size are copied into the per-connection buffer rather than shared.
    static let copyThreshold = 512
    /// Its frame (header at most 10 bytes) is within `copyThreshold`: copied, not shared.
    static func isSmall(_ payload: Payload) -> Bool { payload.bytes.count + 10 <= copyThreshold }
    static let idleSweepToken: UInt64 = 1
    static let shutdownToken: UInt64 = 2
    static let firstKernelToken: UInt64 = 16

    init(options: ServerOptions, hooks: Hooks, driver: any Driver, bus: any MessageBus, serverID: String,
         ids: IDGenerator, log: Logger) {
        var settings = options.kernelSettings
        settings.handshakeConfigured = hooks.handshake != nil
        settings.validateRoomConfigured = hooks.validateRoom != nil
        settings.messageHandlerConfigured = hooks.messageHandler != nil
        settings.outboundTransformerConfigured = hooks.outboundTransformer != nil
        self.options = options
        self.backpressureLimit = options.backpressureLimit
        self.rawEcho = options.rawEcho
        self.hooks = hooks
        self.driver = driver
        self.bus = bus
        self.ids = ids
        self.log = log
        self.kernel = Kernel(settings: settings, serverID: serverID)
    }

    /// Arms the kernel's sweep and the transport idle sweep. On the loop.
    func started() {
        input(.started)
        scheduleIdleSweep()
    }

    // MARK: - Kernel inputs and effects

    /// Feeds one input and performs its effects. Inputs raised while performing (backpressure,
    /// hook answers) are queued behind it; deliveries made by hooks are performed at once
    /// (`deliverNow`). Batched fan-outs are written when the outermost call returns.
    func input(_ input: KernelInput) {
        guard !draining else {
            pending.append(input)
            return
        }
        draining = true
        handle(input)
        var index = 0
        while index < pending.count {
            let next = pending[index]
            index += 1
            handle(next)
        }
        pending.removeAll(keepingCapacity: true)
        draining = false
        if !batching { flushFanOuts() }
    }

    /// An application delivery made on the loop (a hook calling the server) is performed at
    /// once, as `ws.send` in the original sends before the handler returns, even in the middle
    /// of another input's effects: the kernel is between inputs whenever a hook runs.
    func deliverNow(_ delivery: Delivery) {
        guard draining else { return input(.deliver(delivery)) }
        handle(.deliver(delivery))
    }

    @inline(__always)
    private func handle(_ input: KernelInput) {
        // The effects array is swapped out while it is performed: a nested delivery (a hook
        // calling the server) fills the other one.
        var current: [Effect] = []
        let nested = handling
        if nested { swap(&current, &nestedEffects) } else { swap(&current, &effects) }
        handling = true
        current.removeAll(keepingCapacity: true)
        kernel.handle(input, now: driver.now, into: &current)
        // Each effect is moved out of the array (a trivial one left in its place), so that its
        // payload is handed on without a copy, retained and released again.
        current.withUnsafeMutableBufferPointer { effects in
            for slot in effects.indices {
                let effect = (effects.baseAddress! + slot).move()
                (effects.baseAddress! + slot).initialize(to: Engine.performed)
                perform(effect)
            }
        }
        handling = nested
        if nested { swap(&current, &nestedEffects) } else { swap(&current, &effects) }
    }

    /// What a performed effect leaves in its slot: nothing to release.
    private static let performed = Effect.cancelTimer(TimerID(.server(.heartbeatSweep), generation: 0))

    private func perform(_ effect: consuming Effect) {
        switch effect {
        case .send, .sendTransformed, .close:
            // Writes to a connection keep their order behind the batched fan-outs.
            if !batch.isEmpty { flushFanOuts() }
        default:
            break
        }
        switch consume effect {
        case .send(let handle, let payload):
            guard let connection = connection(for: handle) else { return }
            if connection.deflate == nil, Engine.isSmall(payload), payload.driverCache == nil {
                deliverSmall(payload, to: connection)
            } else {
                deliver(frame(payload, for: connection), to: connection)
            }
        case .fanOut(let handles, let payload):
            fanOut(payload, to: handles)
        case .sendTransformed(let handle, let event, let data):
            guard let connection = connection(for: handle) else { return }
            transformAndSend(connection, handle: handle, event: event, data: data)
        case .close(let handle, let code):
            guard let connection = connection(for: handle) else { return }
            stats.closes[code.code, default: 0] += 1
            if shutdown != nil, code == .serverShutdown {
                shutdown?.queue.append(connection.id)
            } else {
                closeConnection(connection, code: code.code, reason: code.reason)
            }
        case .armTimer(let timer, let deadline):
            let token = nextToken
            nextToken += 1
            timerTokens[timer] = token
            tokenTimers[token] = timer
            driver.schedule(token, at: deadline)
        case .cancelTimer(let timer):
            if let token = timerTokens.removeValue(forKey: timer) {
                tokenTimers[token] = nil
                driver.cancel(token)
            }
        case .callAuthenticate(let handle, let attempt, let data):
            guard let authenticate = hooks.authenticate else { return }
            runHook(handle) {
                do {
                    if let result = try await authenticate(data) {
                        return .authenticateReturned(handle, attempt, .ok(userID: result.userID, metadata: result.metadata))
                    }
                    return .authenticateReturned(handle, attempt, .rejected)
                } catch {
                    return .authenticateReturned(handle, attempt, .threw(String(describing: error)))
                }
            }
        case .callHandshake(let handle, let attempt, let clientID, let userID, let data):
            guard let handshake = hooks.handshake else { return }
            runHook(handle) {
                do {
                    if let result = try await handshake(HandshakeRequest(clientID: clientID, userID: userID, data: data)) {
                        return .handshakeReturned(handle, attempt, .ok(serverPublicKey: result.serverPublicKey, salt: result.salt))
                    }
                    return .handshakeReturned(handle, attempt, .rejected)
                } catch {
                    return .handshakeReturned(handle, attempt, .threw(String(describing: error)))
                }
            }
        case .callValidateRoom(let handle, let attempt, let clientID, let userID, let rooms):
            guard let validate = hooks.validateRoom else { return }
            runHook(handle) {
                do {
                    let allowed = try await validate(RoomRequest(clientID: clientID, userID: userID, rooms: rooms))
                    return .validateRoomReturned(handle, attempt, .ok(allowed))
                } catch {
                    return .validateRoomReturned(handle, attempt, .threw(String(describing: error)))
                }
            }
        case .callMessageHandler(let handle, let clientID, let userID, let message):
            guard let handler = hooks.messageHandler else { return }
            do {
                try handler(ClientMessage(clientID: clientID, userID: userID, message: consume message))
            } catch {
                stats.hookFailures += 1
                log.warning("messageHandler threw for \(clientID): \(error)")
            }
            _ = handle
        case .callClientConnected(_, let clientID, let userID, let metadata):
            guard let connected = hooks.clientConnected else { return }
            runCallback("clientConnectedFn") { try await connected(ClientEvent(clientID: clientID, userID: userID, metadata: metadata)) }
        case .callClientDisconnected(_, let clientID, let userID):
            guard let disconnected = hooks.clientDisconnected else { return }
            runCallback("clientDisconnectedFn") { try await disconnected(ClientEvent(clientID: clientID, userID: userID, metadata: nil)) }
        case .publish(let channel, let message):
            stats.published += 1
            bus.publish(channel: channel, message: message)
        case .log(let level, let text, let handle):
            log.write(level, handle.map { "\(text) (client \($0))" } ?? text)
        case .released(let handle):
            guard let connection = connection(for: handle) else { return }
            connection.isClient = false
            if let clientID = connection.clientID { hooks.clientReleased?(clientID) }
        }
    }

    /// The WebSocket frame of a payload, built once and cached on it.
    private func frame(_ payload: Payload) -> SharedBytes {
        let cache = frames(of: payload)
        if let plain = cache.plain { return plain }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(payload.bytes.count + 10)
        payload.bytes.withUnsafeBytes { FrameEncoder.encode(opcode: .text, payload: $0, into: &bytes) }
        let shared = SharedBytes(bytes)
        cache.plain = shared
        return shared
    }

    /// The frame for one connection: compressed (once per payload and window size: the server
    /// keeps no context, so one compressed frame suits every recipient) or plain.
    private func frame(_ payload: Payload, for connection: Connection) -> SharedBytes {
        guard let parameters = connection.deflate?.parameters, payload.bytes.count >= options.compressionThreshold else {
            return frame(payload)
        }
        let cache = frames(of: payload)
        let bits = parameters.compressionWindowBits
        if let compressed = cache.compressed, cache.compressedBits == bits { return compressed }
        let deflated = PerMessageDeflate.deflateOnce(payload.bytes, windowBits: bits, level: parameters.compressionLevel,
                                                     memoryLevel: parameters.memoryLevel)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(deflated.count + 10)
        deflated.withUnsafeBytes { FrameEncoder.encode(opcode: .text, payload: $0, rsv1: true, into: &bytes) }
        let shared = SharedBytes(bytes)
        cache.compressed = shared
        cache.compressedBits = bits
        stats.compressedPayloads += 1
        return shared
    }

    private func frames(of payload: Payload) -> FrameCache {
        if let cache = payload.driverCache as? FrameCache { return cache }
        let cache = FrameCache()
        payload.driverCache = cache
        return cache
    }

    /// The server's permessage-deflate policy: no server context (compress once per publish),
    /// no client context (no zlib memory held per connection).
    static let deflatePolicy = DeflateOptions(serverNoContextTakeover: true, clientNoContextTakeover: true)

    /// One frame to one connection, if backpressure allows.
    private func deliver(_ bytes: SharedBytes, to connection: Connection) {
        guard !connection.closing else { return }
        let count = bytes.bytes.count
        let limit = backpressureLimit
        // Small frames are copied into the connection's cork buffer: a turn's messages leave
        // in one iovec instead of one per message.
        let queued = count <= Engine.copyThreshold
            ? bytes.bytes.withUnsafeBytes { driver.write(connection.id, copying: $0, ifBufferedAtMost: limit) }
            : driver.write(connection.id, bytes, ifBufferedAtMost: limit)
        guard queued else { return dropped(connection) }
        stats.messagesOut += 1
        stats.bytesOut += count
    }

    /// One payload to many. A small frame joins the batch of fan-outs to the same recipients
    /// (the publishes of one read), written once per recipient when the batch is flushed.
    private func fanOut(_ payload: Payload, to handles: [ClientHandle]) {
        if Engine.isSmall(payload) {
            if !batch.isEmpty, !batch.hasRecipients(handles) { flushFanOuts() }
            batch.add(payload, recipients: handles)
            stats.fanOuts += 1
            return
        }
        if !batch.isEmpty { flushFanOuts() }
        let plain = frame(payload)
        for handle in handles {
            guard let connection = connection(for: handle) else { continue }
            deliver(connection.deflate == nil ? plain : frame(payload, for: connection), to: connection)
        }
        stats.fanOuts += 1
    }

    /// Writes the batched fan-outs: every frame at once to each plain recipient (one lookup and
    /// one copy per recipient, not per message). Per-message backpressure is kept exactly: a
    /// recipient gets the longest prefix of the frames each of which found at most
    /// `backpressureLimit` bytes queued before it; the rest are dropped.
    private func flushFanOuts() {
        guard !batch.isEmpty else { return }
        var work = FanOutBatch()
        swap(&work, &batch)  // re-entrant flushes (a backpressure close) see an empty batch
        defer {
            work.reset()
            if batch.isEmpty { swap(&work, &batch) }  // keep the buffers' capacity
        }
        let limit = backpressureLimit
        let frames = work.ends.count
        let total = work.bytes.count
        // Every frame fits when the last one does: at most this much queued before the batch.
        let allFit = limit - (frames > 1 ? work.ends[frames - 2] : 0)
        var sent = 0
        var sentBytes = 0
        work.bytes.withUnsafeBytes { all in
            for handle in work.handles {
                guard let connection = connection(for: handle), !connection.closing else { continue }
                if connection.deflate != nil {
                    for payload in work.payloads { deliver(frame(payload, for: connection), to: connection) }
                    continue
                }
                if allFit >= 0, driver.write(connection.id, copying: all, ifBufferedAtMost: allFit) {
                    sent += frames
                    sentBytes += total
                    continue
                }
                let queued = driver.bufferedAmount(connection.id)
                var fitting = 0
                while fitting < frames, queued + (fitting == 0 ? 0 : work.ends[fitting - 1]) <= limit { fitting += 1 }
                if fitting > 0 {
                    let end = work.ends[fitting - 1]
                    driver.write(connection.id, copying: UnsafeRawBufferPointer(rebasing: all[0..<end]))
                    sent += fitting
                    sentBytes += end
                }
                dropped(connection, count: frames - fitting)
            }
        }
        stats.messagesOut += sent
        stats.bytesOut += sentBytes
    }

    /// PROTOCOL.md 7: backpressure is checked per message, before it is queued. A message over
    /// the limit is dropped (counted) and reported to the kernel, whose table decides on closing.
    /// `count`: a batched fan-out can drop several messages to one client at once.
    private func dropped(_ connection: Connection, count: Int = 1) {
        connection.backpressured = true
        stats.backpressureDrops += count
        connection.drops += count
        if let report = hooks.backpressureDropped, let clientID = connection.clientID {
            for total in connection.drops - count + 1...connection.drops { report(clientID, total) }
        }
        if connection.isClient { input(.backpressured(connection.handle)) }
    }

    /// A small payload for one recipient (an echo, a reply): header and payload are copied
    /// straight into the connection's cork buffer, with no frame built or cached.
    private func deliverSmall(_ payload: Payload, to connection: Connection) {
        guard !connection.closing else { return }
        // Header and payload go in as two copies, which the queue merges into one segment
        // (no temporary buffer, and no closure context retaining what it captures).
        var header: (UInt64, UInt64) = (0, 0)
        let headerCount = withUnsafeMutableBytes(of: &header) {
            FrameEncoder.writeHeader(opcode: .text, payloadCount: payload.bytes.count, to: $0.baseAddress!)
        }
        let bytes = payload.bytes
        let queued = withUnsafeBytes(of: &header) { header in
            bytes.withUnsafeBytes {
                driver.write(connection.id, copying: UnsafeRawBufferPointer(rebasing: header[..<headerCount]), $0,
                             ifBufferedAtMost: backpressureLimit)
            }
        }
        guard queued else { return dropped(connection) }
        stats.messagesOut += 1
        stats.bytesOut += headerCount + bytes.count
    }

    @inline(__always)
    private func connection(for handle: ClientHandle) -> Connection? {
        let slot = Int(truncatingIfNeeded: handle.rawValue & 0xFFFF_FFFF)
        guard slot < slots.count, let connection = slots[slot], connection.handle == handle else { return nil }
        return connection
    }

    private func transformAndSend(_ connection: Connection, handle: ClientHandle, event: String, data: JSONValue?) {
        guard let transform = hooks.outboundTransformer, let client = kernel.client(handle) else { return }
        var outEvent = event
        var outData = data
        do {
            if let replaced = try transform(OutboundMessage(clientID: client.id, userID: client.userID, event: event, data: data)) {
                outEvent = replaced.event
                outData = replaced.data
            }
        } catch {
            stats.hookFailures += 1
            log.warning("outboundTransformer threw for \(client.id): \(error); message dropped")
            return
        }
        deliver(frame(Payload(event: outEvent, data: outData)), to: connection)
    }

    /// Runs an async hook off the loop; its answer comes back as a kernel input on the loop.
    private func runHook(_ handle: ClientHandle, _ body: @escaping @Sendable () async -> KernelInput) {
        let driver = self.driver
        let engine = UncheckedBox(self)
        driver.spawn {
            let answer = await body()
            driver.execute { engine.value.input(answer) }
        }
    }

    /// clientConnectedFn / clientDisconnectedFn: a throw is logged and changes nothing.
    private func runCallback(_ name: String, _ body: @escaping @Sendable () async throws -> Void) {
        let log = self.log
        let engine = UncheckedBox(self)
        let driver = self.driver
        callbacksRunning += 1
        driver.spawn {
            var failed = false
            do { try await body() } catch {
                log.warning("\(name) threw: \(error)")
                failed = true
            }
            driver.execute { [failed] in engine.value.callbackFinished(failed: failed) }
        }
    }

    private func callbackFinished(failed: Bool) {
        callbacksRunning -= 1
        if failed { stats.hookFailures += 1 }
        if shutdown != nil, connections.isEmpty, callbacksRunning == 0 { finishShutdown() }
    }

    // MARK: - Driver events

    func connectionOpened(_ id: ConnectionID, peer: String) {
        if options.maxConnectionsPerIP > 0 {
            if connectionsPerPeer[peer, default: 0] >= options.maxConnectionsPerIP {
                stats.rejectedConnections += 1
                driver.close(id, flushFirst: false)
                return
            }
            connectionsPerPeer[peer, default: 0] += 1
        }
        let now = driver.now.monotonic
        let slot = freeSlots.popLast() ?? slots.count
        if slot == slots.count { slots.append(nil) }
        generation += 1
        let connection = Connection(id: id, handle: ClientHandle(generation << 32 | UInt64(slot)), now: now,
                                    maxHeaderBytes: options.maxHeaderBytes)
        connection.peer = peer
        connections[id] = connection
        slots[slot] = connection
        stats.connectionsAccepted += 1
        if shutdown != nil { driver.close(id, flushFirst: false) }
    }

    func bytesReceived(_ id: ConnectionID, _ bytes: UnsafeRawBufferPointer) {
        guard let connection = connections[id], !connection.closing else { return }
        batching = true
        defer {
            batching = false
            flushFanOuts()
        }
        connection.lastReceive = driver.now.monotonic
        stats.bytesIn += bytes.count
        if connection.decoder == nil {
            receiveHTTP(connection, bytes)
        } else {
            receiveFrames(connection, bytes)
        }
    }

    func connectionDrained(_ id: ConnectionID) {
        connections[id]?.backpressured = false
    }

    func connectionClosed(_ id: ConnectionID) {
        guard let connection = connections.removeValue(forKey: id) else { return }
        if options.maxConnectionsPerIP > 0, let count = connectionsPerPeer[connection.peer] {
            connectionsPerPeer[connection.peer] = count > 1 ? count - 1 : nil
        }
        let slot = Int(connection.handle.rawValue & 0xFFFF_FFFF)
        slots[slot] = nil
        freeSlots.append(slot)
        if connection.isClient { input(.closed(connection.handle)) }
        if shutdown != nil, connections.isEmpty, callbacksRunning == 0 { finishShutdown() }
    }

    func timerFired(_ token: UInt64) {
        switch token {
        case Engine.idleSweepToken:
            idleSweep()
        case Engine.shutdownToken:
            shutdownStep()
        default:
            guard let timer = tokenTimers.removeValue(forKey: token) else { return }
            timerTokens[timer] = nil
            input(.timerFired(timer))
        }
    }

    // MARK: - HTTP and frames

    private func receiveHTTP(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        guard connection.parser != nil else { return }
        switch connection.parser!.feed(bytes) {
        case .needMore:
            return
        case .failed(let error):
            answerHTTP(connection, HTTPResponse.parseFailure(error))
        case .complete(let head, let consumed):
            connection.parser = nil  // its buffers are not needed after the head
            switch classifyUpgrade(head, path: options.path) {
            case .upgrade(let key, let extensions, _):
                var headers: [(name: String, value: String)] = []
                if options.perMessageDeflate,
                   let (header, parameters) = PerMessageDeflate.negotiate(offers: extensions, policy: Engine.deflatePolicy) {
                    headers.append((name: "Sec-WebSocket-Extensions", value: header))
                    connection.deflate = PerMessageDeflate(parameters: parameters)
                }
                driver.write(connection.id, SharedBytes(HTTPResponse.switchingProtocols(key: key, extraHeaders: headers)))
                var decoder = FrameDecoder(maxMessageBytes: options.maxPayloadLength, allowsRSV1: connection.deflate != nil)
                if connection.deflate != nil {
                    decoder.maxCompressedMessageBytes = PerMessageDeflate.compressedLimit(forMessageLimit: options.maxPayloadLength)
                }
                connection.decoder = decoder
                stats.upgrades += 1
                if !options.rawEcho, shutdown == nil {
                    connection.isClient = true
                    let clientID = ids.uuid()
                    connection.clientID = clientID
                    input(.opened(connection.handle, id: clientID))
                }
                if consumed < bytes.count {
                    receiveFrames(connection, UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
                }
            case .versionNotSupported:
                answerHTTP(connection, HTTPResponse.upgradeRequired())
            case .upgradeFailed:
                answerHTTP(connection, HTTPResponse.upgradeFailed())
            case .notAnUpgrade:
                answerHTTP(connection, httpAnswer(head))
            }
        }
    }

    /// An ordinary HTTP request: the app's handler (demo page, metrics, health), else 404.
    private func httpAnswer(_ head: HTTPRequestHead) -> [UInt8] {
        if let handler = hooks.httpHandler {
            let request = HTTPRequest(method: head.method, path: head.path, target: head.target,
                                      headers: head.headers.map { ($0.name, $0.value) })
            if let response = handler(request) {
                return HTTPResponse.simple(status: response.status, reason: response.reason,
                                           contentType: response.contentType, body: response.body,
                                           extraHeaders: response.headers.map { (name: $0.0, value: $0.1) })
            }
        }
        return HTTPResponse.simple(status: 404, reason: "Not Found", body: "Not Found")
    }

    private func answerHTTP(_ connection: Connection, _ response: [UInt8]) {
        connection.closing = true
        driver.write(connection.id, SharedBytes(response))
        driver.close(connection.id, flushFirst: true)
    }

    private func receiveFrames(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        let framesBefore = connection.decoder!.framesCompleted
        connection.decoder!.feed(bytes)
        var eventsSeen = 0
        defer {
            // Fragments of a message not yet complete are frames too: they count as activity.
            if connection.isClient, !connection.closing, connection.decoder!.framesCompleted - framesBefore > eventsSeen {
                input(.activity(connection.handle))
            }
        }
        while !connection.closing, var event = connection.decoder!.next() {
            eventsSeen += 1
            if connection.decoder!.lastMessageWasCompressed {
                // Inflated within maxPayloadLength (1009 past it), UTF-8 checked after inflating.
                event = connection.deflate!.inflateMessage(event, maxOutput: options.maxPayloadLength)
            }
            let handle = connection.handle
            let opcode: Opcode = if case .binary = event { .binary } else { .text }
            switch consume event {
            case .text(let message), .binary(let message):
                stats.messagesIn += 1
                if rawEcho {
                    echo(connection, opcode, message)
                } else if connection.isClient {
                    input(.message(handle, message))
                }
            case .ping(let payload):
                if !batch.isEmpty { flushFanOuts() }
                var pong: [UInt8] = []
                payload.withUnsafeBytes { FrameEncoder.encode(opcode: .pong, payload: $0, into: &pong) }
                driver.write(connection.id, SharedBytes(pong))
                if connection.isClient { input(.activity(handle)) }
            case .pong:
                connection.pingOutstanding = false
                if connection.isClient { input(.activity(handle)) }
            case .close(let code, _):
                // Echo the peer's code (RFC 6455 5.5.1), then close; the kernel hears it at once.
                closeConnection(connection, code: code, reason: "")
                if connection.isClient { input(.closed(handle)) }
            case .failure(let code, let reason):
                stats.closes[code, default: 0] += 1
                closeConnection(connection, code: code, reason: reason)
                if connection.isClient { input(.closed(handle)) }
            }
        }
    }

    private func echo(_ connection: Connection, _ opcode: Opcode, _ message: [UInt8]) {
        var frame: [UInt8] = []
        if connection.deflate != nil {
            let compressed = connection.deflate!.deflate(message)
            frame.reserveCapacity(compressed.count + 10)
            compressed.withUnsafeBytes { FrameEncoder.encode(opcode: opcode, payload: $0, rsv1: true, into: &frame) }
        } else {
            frame.reserveCapacity(message.count + 10)
            message.withUnsafeBytes { FrameEncoder.encode(opcode: opcode, payload: $0, into: &frame) }
        }
        driver.write(connection.id, SharedBytes(frame))
    }

    /// Sends a close frame (nothing more is written after it) and closes once it is flushed.
    private func closeConnection(_ connection: Connection, code: UInt16?, reason: String) {
        guard !connection.closing else { return }
        if !batch.isEmpty { flushFanOuts() }
        connection.closing = true
        let frame = code.map { FrameEncoder.close(code: $0, reason: reason) } ?? FrameEncoder.close()
        connection.deflate = nil
        driver.write(connection.id, SharedBytes(frame))
        driver.close(connection.id, flushFirst: true)
    }

    // MARK: - Idle connections (transport layer: ping, idleTimeout, slow upgrades)

    private func scheduleIdleSweep() {
        let period = max(250, min(options.idleTimeout / 4, options.upgradeTimeout / 2))
        driver.schedule(Engine.idleSweepToken, at: driver.now.monotonic + period)
    }

    private func idleSweep() {
        let now = driver.now.monotonic
        var ping: SharedBytes?
        for connection in connections.values where !connection.closing {
            let silent = now - connection.lastReceive
            if connection.decoder == nil {
                if now - connection.openedAt > options.upgradeTimeout {
                    stats.upgradeTimeouts += 1
                    answerHTTP(connection, HTTPResponse.simple(status: 408, reason: "Request Timeout", body: "Request Timeout"))
                }
            } else if silent > options.idleTimeout {
                stats.idleTimeouts += 1
                connection.closing = true
                driver.close(connection.id, flushFirst: false)
            } else if options.sendPings, silent > options.idleTimeout / 2, !connection.pingOutstanding {
                connection.pingOutstanding = true
                if ping == nil { ping = SharedBytes(FrameEncoder.ping()) }
                driver.write(connection.id, ping!)
            }
        }
        scheduleIdleSweep()
    }

    // MARK: - Graceful shutdown

    private struct ShutdownState {
        var queue: [ConnectionID] = []
        var next = 0
        var deadline: Int64
        var done: @Sendable () -> Void
    }

    /// Stops accepting, closes every client with 1001 in batches, then waits (bounded) for the
    /// connections to go; `done` runs on the loop when all are gone or the grace ran out.
    func beginShutdown(done: @escaping @Sendable () -> Void) {
        guard shutdown == nil else { return }
        shutdown = ShutdownState(deadline: driver.now.monotonic + options.shutdownGrace, done: done)
        driver.stopAccepting()
        input(.shutdown)
        for connection in connections.values where !connection.isClient && !connection.closing {
            if connection.decoder == nil {
                answerHTTP(connection, HTTPResponse.simple(status: 503, reason: "Service Unavailable", body: "Server shutting down"))
            } else {
                shutdown!.queue.append(connection.id)
            }
        }
        shutdownStep()
    }

    private func shutdownStep() {
        guard var state = shutdown else { return }
        let end = min(state.queue.count, state.next + options.shutdownBatchSize)
        while state.next < end {
            if let connection = connections[state.queue[state.next]] {
                closeConnection(connection, code: CloseCode.serverShutdown.code, reason: CloseCode.serverShutdown.reason)
            }
            state.next += 1
        }
        shutdown = state
        if (connections.isEmpty && callbacksRunning == 0) || driver.now.monotonic >= state.deadline {
            finishShutdown()
        } else {
            driver.schedule(Engine.shutdownToken, at: driver.now.monotonic + (state.next < state.queue.count ? 10 : 50))
        }
    }

    private func finishShutdown() {
        guard let state = shutdown else { return }
        for connection in connections.values { driver.close(connection.id, flushFirst: false) }
        driver.cancel(Engine.shutdownToken)
        driver.cancel(Engine.idleSweepToken)
        shutdown = ShutdownState(queue: [], next: 0, deadline: state.deadline, done: {})
        state.done()
    }
}

/// What the engine keeps per connection.
final class Connection {
    let id: ConnectionID
    let handle: ClientHandle
    let openedAt: Int64
    @exclusivity(unchecked) var peer = ""
    /// The request-head parser; nil once the head is complete.
    @exclusivity(unchecked) var parser: HTTPRequestParser?
    @exclusivity(unchecked) var decoder: FrameDecoder?
    @exclusivity(unchecked) var lastReceive: Int64
    @exclusivity(unchecked) var pingOutstanding = false
    /// A close frame was sent or the connection is going: nothing more is written.
    @exclusivity(unchecked) var closing = false
    @exclusivity(unchecked) var backpressured = false
    /// Messages dropped for backpressure so far (reported to `Hooks.backpressureDropped`).
    @exclusivity(unchecked) var drops = 0
    /// The client's wire id once upgraded.
    @exclusivity(unchecked) var clientID: String?
    /// Negotiated permessage-deflate.
    @exclusivity(unchecked) var deflate: PerMessageDeflate?
    /// The kernel has a record for it.
    @exclusivity(unchecked) var isClient = false

    init(id: ConnectionID, handle: ClientHandle, now: Int64, maxHeaderBytes: Int) {
        self.id = id
        self.handle = handle
        self.openedAt = now
        self.lastReceive = now
        self.parser = HTTPRequestParser(maxHeaderBytes: maxHeaderBytes)
    }
}

/// Counters for metrics; loop thread only.
final class Stats {
    @exclusivity(unchecked) var connectionsAccepted = 0
    @exclusivity(unchecked) var upgrades = 0
    @exclusivity(unchecked) var messagesIn = 0
    @exclusivity(unchecked) var messagesOut = 0
    @exclusivity(unchecked) var bytesIn = 0
    @exclusivity(unchecked) var bytesOut = 0
    @exclusivity(unchecked) var fanOuts = 0
    @exclusivity(unchecked) var published = 0
    @exclusivity(unchecked) var backpressureDrops = 0
    @exclusivity(unchecked) var hookFailures = 0
    @exclusivity(unchecked) var idleTimeouts = 0
    @exclusivity(unchecked) var upgradeTimeouts = 0
    @exclusivity(unchecked) var closes: [UInt16: Int] = [:]
    @exclusivity(unchecked) var compressedPayloads = 0
    @exclusivity(unchecked) var rejectedConnections = 0
}

/// A payload's frames, plain and compressed, built on first use.
final class FrameCache {
    @exclusivity(unchecked) var plain: SharedBytes?
    @exclusivity(unchecked) var compressed: SharedBytes?
    @exclusivity(unchecked) var compressedBits = 0
}

/// Moves a loop-confined reference into a closure that runs back on the loop.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Small fan-out frames to one recipient list, back to back. The list is recognized by its
/// storage: the kernel hands out its member array itself, so consecutive broadcasts to an
/// unchanged audience share it (and holding it here keeps it from being reused).
struct FanOutBatch {
    private(set) var handles: [ClientHandle] = []
    private(set) var payloads: [Payload] = []
    /// The plain frames, back to back ...
    private(set) var bytes: [UInt8] = []
    /// ... and where each one ends.
    private(set) var ends: [Int] = []

    var isEmpty: Bool { ends.isEmpty }

    func hasRecipients(_ other: [ClientHandle]) -> Bool {
        handles.count == other.count && handles.withUnsafeBufferPointer { mine in
            other.withUnsafeBufferPointer { $0.baseAddress == mine.baseAddress }
        }
    }

    mutating func add(_ payload: Payload, recipients: [ClientHandle]) {
        if ends.isEmpty { handles = recipients }
        // Grow geometrically here: the encoder reserves exactly what one frame needs.
        let needed = bytes.count + payload.bytes.count + 10
        if bytes.capacity < needed { bytes.reserveCapacity(max(needed, bytes.capacity * 2)) }
        payload.bytes.withUnsafeBytes { FrameEncoder.encode(opcode: .text, payload: $0, into: &bytes) }
        ends.append(bytes.count)
        payloads.append(payload)
    }

    mutating func reset() {
        handles = []
        payloads.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
    }
}
