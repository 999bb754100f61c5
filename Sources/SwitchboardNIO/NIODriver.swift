import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Switchboard
import Synchronization

/// A `Driver` on SwiftNIO: a `ServerBootstrap` on one `EventLoop` (the engine is
/// single-threaded, so its loop is that EventLoop), moving bytes. The engine keeps doing the
/// HTTP upgrade and the WebSocket framing with its own sans-IO codec, as on every driver; NIO's
/// WebSocket handlers would be a second codec beside the one the spec drives (docs/drivers.md).
///
/// - Loop: the EventLoop's thread. `run()` blocks its caller until `stop()`; it does not run
///   the loop itself, so the driver can also live on an EventLoop an application already runs
///   (`init(eventLoop:)`).
/// - Writes: kept per connection (copies merged) and flushed by one task per turn, queued on the
///   EventLoop by the turn's first write: after every read, task and timer of that turn.
/// - Backpressure: `bufferedAmount` counts bytes until the socket took them (one write promise
///   per connection per flush); a refused bounded write owes a `connectionDrained`.
/// - Pause: autoRead off; bytes NIO read meanwhile are held and delivered after the resume.
/// - Timers: the `TimerHeap` of SwitchboardDriverSupport, woken by one `scheduleTask` at the
///   earliest deadline.
/// - TLS: swift-nio-ssl's `NIOSSLServerHandler` first in each accepted channel's pipeline
///   (`NIOTLSContext`); the driver behind it sees plaintext.
public final class NIODriver: Driver, @unchecked Sendable {
    /// The loop every callback runs on.
    public let eventLoop: EventLoop
    /// The one-thread group this driver made (nil when it was given an EventLoop); shut down
    /// when `run()` returns, or, for a driver that does not listen (the server that hands it
    /// channels runs on the same loop and may outlast the gateway), when the driver is freed.
    private let ownGroup: MultiThreadedEventLoopGroup?
    /// How long `close(flushFirst: true)` waits for the peer's FIN, in milliseconds.
    public let lingerMilliseconds: Int64
    /// False: `start` binds nothing; connections come from another server through `adopt`.
    public let listens: Bool
    /// The `wss://` certificate and key of the driver's own listener, nil for plain `ws://`;
    /// `reload()` swaps them for new handshakes.
    public let tls: NIOTLSContext?
    /// `stopAccepting` was called on a driver that does not listen: `adopt` refuses.
    private let adoptionClosed = Mutex(false)
    /// Not retained: the engine owns the driver (`Driver`, ownership).
    private unowned(unsafe) var events: DriverEvents?
    private var serverChannel: Channel?
    private let wallOffset: Int64
    private var executor: LoopTaskExecutor?

    /// `execute`, `stop` and hook jobs, from any thread: held before `run()`, dropped after it.
    private let gate: NIOLoopGate

    // Loop-only.
    private var live = false  // run() has started the loop's side
    private var halted = false  // run() is ending: nothing more is reported
    private var connections: [ConnectionID: NIOConnection] = [:]
    /// Ids are taken on the driver's loop, or on another loop by `adopt`.
    private let nextID = Atomic<ConnectionID>(1)
    private var dirty: [NIOConnection] = []
    private var flushQueued = false
    /// The last `SharedBytes` copied into a `ByteBuffer` this turn: a fan-out writes the same
    /// bytes to many connections in a row, and they then share one buffer.
    private var lastShared: SharedBytes?
    private var lastSharedBuffer = ByteBuffer()
    private var timers = TimerHeap()
    private var due: [TimerHeap.Entry] = []
    private var wake: Scheduled<Void>?
    private var wakeDeadline = Int64.max

    /// - Parameters:
    ///   - eventLoop: the loop to run on; nil makes a one-thread `MultiThreadedEventLoopGroup`
    ///     of the driver's own. A given loop is not shut down by the driver.
    ///   - hooksOnLoop: run application hooks as tasks on the EventLoop (declares
    ///     `.hooksOnLoop`, which `ServerOptions.hooksOnLoop`, the default, needs).
    ///   - lingerMilliseconds: the bound of `close(flushFirst: true)`'s wait for the peer's FIN.
    ///   - listens: false for a driver whose connections another server accepts and hands
    ///     over with `adopt` (an HTTP server sharing its port with the gateway, on this
    ///     EventLoop or others); `start` then binds nothing and answers the port it was given.
    ///   - tls: serve `wss://` on the driver's own listener (declares `.tls`); adopted channels
    ///     come with whatever TLS the server that accepted them has.
    public init(eventLoop: EventLoop? = nil, hooksOnLoop: Bool = true, lingerMilliseconds: Int64 = 2000,
                listens: Bool = true, tls: NIOTLSContext? = nil) {
        self.listens = listens
        self.tls = listens ? tls : nil
        if let eventLoop {
            self.eventLoop = eventLoop
            self.ownGroup = nil
        } else {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            self.ownGroup = group
            self.eventLoop = group.next()
        }
        self.lingerMilliseconds = lingerMilliseconds
        self.wallOffset = Int64(Date().timeIntervalSince1970 * 1000) - Self.monotonicMilliseconds()
        let gate = NIOLoopGate(eventLoop: self.eventLoop)
        self.gate = gate
        if hooksOnLoop { executor = LoopTaskExecutor(execute: { work in gate.execute(work) }) }
    }

    /// The options of `POSIXDriver`: `tlsCertificateFile`/`tlsKeyFile` serve `wss://` (both or
    /// neither); a file that cannot be loaded is a start-up error naming it.
    public convenience init(tlsCertificateFile: String?, tlsKeyFile: String?, eventLoop: EventLoop? = nil,
                            hooksOnLoop: Bool = true, lingerMilliseconds: Int64 = 2000) throws {
        let tls: NIOTLSContext?
        switch (tlsCertificateFile, tlsKeyFile) {
        case (nil, nil):
            tls = nil
        case (let certificate?, let key?):
            do { tls = try NIOTLSContext(certificateChainFile: certificate, privateKeyFile: key) } catch {
                throw StartupError(message: "TLS: \(error)")
            }
        default:
            throw StartupError(message: "TLS needs both a certificate file and a key file")
        }
        self.init(eventLoop: eventLoop, hooksOnLoop: hooksOnLoop, lingerMilliseconds: lingerMilliseconds, tls: tls)
    }

    deinit {
        // A driver that was never run, or does not listen, still has its group's thread.
        ownGroup?.shutdownGracefully { _ in }
    }

    /// `.hooksOnLoop` when built with `hooksOnLoop`, `.tls` when built with a TLS context.
    public var capabilities: DriverCapabilities {
        var capabilities: DriverCapabilities = []
        if executor != nil { capabilities.insert(.hooksOnLoop) }
        if tls != nil { capabilities.insert(.tls) }
        return capabilities
    }

    // MARK: - Listening and the loop

    /// Binds with accepting off (the server channel's autoRead): nothing is reported before `run()`.
    public func start(host: String, port: Int, events: DriverEvents) throws -> Int {
        self.events = events
        guard listens else { return port }
        let bootstrap = ServerBootstrap(group: eventLoop)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(tls.makeHandler()) }
                    try pipeline.addHandler(NIOConnectionHandler(driver: self))
                }
            }
        let channel: Channel
        do { channel = try bootstrap.bind(host: host, port: port).wait() } catch {
            throw StartupError(message: "Cannot listen on \(host):\(port): \(error)")
        }
        serverChannel = channel
        return channel.localAddress?.port ?? port
    }

    /// Hands the works queued before it to the loop, starts accepting and the timers, then
    /// waits for `stop()`; on the way out, closes every channel without reporting.
    public func run() {
        if gate.openUnlessStopped() {
            eventLoop.execute { [self] in
                live = true
                armWake()
                try? serverChannel?.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            }
            gate.waitForStop()
        }
        finish()
    }

    private func finish() {
        gate.close()
        try? eventLoop.submit { [self] in
            halted = true
            wake?.cancel()
            serverChannel?.close(promise: nil)
            for connection in connections.values { connection.channel.close(promise: nil) }
            connections = [:]
        }.wait()
        if listens { try? ownGroup?.syncShutdownGracefully() }
    }

    public func stop() { gate.stop() }

    /// `Channel.close` may be called from any thread (NIO hops to the loop).
    public func stopAccepting() {
        adoptionClosed.withLock { $0 = true }
        serverChannel?.close(promise: nil)
    }

    /// Takes over a connection another server accepted (a driver made with `listens: false`):
    /// from now on the channel's bytes go to the engine, starting with `buffered`, what that
    /// server read already (the HTTP request head, for example). Call it on the channel's
    /// EventLoop, with the handlers before it in the pipeline passing bytes through (or
    /// removed). A channel that arrives after `stop` or `stopAccepting`, or already closed, is
    /// closed without being reported.
    ///
    /// The channel may be on another EventLoop than the driver's (an app's server on a group of
    /// several loops): the engine stays on the driver's loop, and the channel's reads and end
    /// are handed to it there, its writes and closes to the channel's loop (a hop each way;
    /// channels on the driver's own loop need none).
    public func adopt(_ channel: Channel, buffered: ByteBuffer) throws {
        precondition(channel.eventLoop.inEventLoop, "adopt: call it on the channel's EventLoop")
        guard channel.isActive, !adoptionClosed.withLock({ $0 }) else {
            channel.close(promise: nil)
            return
        }
        let connection = NIOConnection(id: takeID(), channel: channel, loop: eventLoop)
        try channel.pipeline.syncOperations.addHandler(NIOConnectionHandler(driver: self, connection: connection))
        if connection.onDriverLoop {
            register(connection, buffered: buffered)
        } else {
            // Before any read the handler hands over: the loop runs its works in order.
            eventLoop.execute { [self] in register(connection, buffered: buffered) }
        }
    }

    /// On the loop: an adopted connection becomes the engine's, or is closed unreported once
    /// the driver is not running.
    private func register(_ connection: NIOConnection, buffered: ByteBuffer) {
        guard live, !halted else {
            connection.channel.close(promise: nil)
            return
        }
        connections[connection.id] = connection
        reportOpened(connection)
        if buffered.readableBytes > 0 { received(connection, buffered) }
    }

    private func takeID() -> ConnectionID { nextID.wrappingAdd(1, ordering: .relaxed).oldValue }

    /// Before `run()` the work waits (in order); after `run()` returned it is dropped.
    public func execute(_ work: @escaping @Sendable () -> Void) { gate.execute(work) }

    public var inLoop: Bool { eventLoop.inEventLoop }

    /// NIO's monotonic clock (the scale of `scheduleTask` deadlines), read at each call.
    public var now: Now {
        let monotonic = Self.monotonicMilliseconds()
        return Now(monotonic: monotonic, wall: monotonic + wallOffset)
    }

    public func spawn(_ operation: @escaping @Sendable () async -> Void) {
        if let executor {
            Task(executorPreference: executor) { await operation() }
        } else {
            Task { await operation() }
        }
    }

    static func monotonicMilliseconds() -> Int64 { Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000) }

    // MARK: - Connections (on the loop, from NIOConnectionHandler)

    /// A new channel gets its id; nil (and closed) once the driver is stopping.
    func accepted(_ channel: Channel) -> NIOConnection? {
        guard !halted, live else {
            channel.close(promise: nil)
            return nil
        }
        let connection = NIOConnection(id: takeID(), channel: channel, loop: eventLoop)
        connections[connection.id] = connection
        return connection
    }

    func reportOpened(_ connection: NIOConnection) {
        events?.connectionOpened(connection.id, peer: connection.channel.remoteAddress?.ipAddress ?? "unknown")
    }

    /// Bytes NIO read: reported now, or held while paused or behind bytes held before.
    func received(_ connection: NIOConnection, _ buffer: ByteBuffer) {
        guard !halted, !connection.closeRequested, connections[connection.id] === connection else { return }
        if connection.paused || connection.resuming || !connection.held.isEmpty {
            connection.held.append(buffer)
            return
        }
        buffer.withUnsafeReadableBytes { events?.bytesReceived(connection.id, $0) }
    }

    /// The channel closed. NIO may report it inside a `close` the engine called, so the report
    /// always waits for a task of its own; behind held bytes it waits for their delivery.
    func ended(_ connection: NIOConnection) {
        connection.inactive = true
        connection.linger?.cancel()
        guard !halted, connections[connection.id] === connection else { return }
        if !connection.held.isEmpty, !connection.closeRequested {
            connection.endPending = true
            return
        }
        eventLoop.execute { [self] in reportClosed(connection) }
    }

    private func reportClosed(_ connection: NIOConnection) {
        guard !halted, connections[connection.id] === connection else { return }
        connections[connection.id] = nil
        events?.connectionClosed(connection.id)
    }

    // MARK: - Writes

    public func write(_ connection: ConnectionID, _ bytes: SharedBytes) {
        guard let c = writable(connection) else { return }
        if lastShared !== bytes {
            lastShared = bytes
            lastSharedBuffer = c.channel.allocator.buffer(bytes: bytes.bytes)
        }
        c.append(lastSharedBuffer)
        markDirty(c)
    }

    public func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer) {
        guard let c = writable(connection) else { return }
        c.append(copying: bytes)
        markDirty(c)
    }

    public func bufferedAmount(_ connection: ConnectionID) -> Int { connections[connection]?.buffered ?? 0 }

    public func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer, ifBufferedAtMost limit: Int) -> Bool {
        guard refuses(connection, limit) == false else { return false }
        write(connection, copying: bytes)
        return true
    }

    public func write(_ connection: ConnectionID, _ bytes: SharedBytes, ifBufferedAtMost limit: Int) -> Bool {
        guard refuses(connection, limit) == false else { return false }
        write(connection, bytes)
        return true
    }

    public func write(_ connection: ConnectionID, copying first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
                      ifBufferedAtMost limit: Int) -> Bool {
        guard refuses(connection, limit) == false else { return false }
        write(connection, copying: first)
        write(connection, copying: second)
        return true
    }

    private func writable(_ connection: ConnectionID) -> NIOConnection? {
        guard let c = connections[connection], !c.closeRequested, !c.inactive else { return nil }
        return c
    }

    /// More than `limit` bytes queued on a live connection: the write is refused and a drain owed.
    private func refuses(_ connection: ConnectionID, _ limit: Int) -> Bool {
        guard let c = writable(connection), c.buffered > limit else { return false }
        c.drainOwed = true
        return true
    }

    /// The turn's first write queues the flush task: it runs after what NIO is doing now (a
    /// read batch, the tasks queued before it), which is the end of the turn.
    private func markDirty(_ connection: NIOConnection) {
        if !connection.dirty {
            connection.dirty = true
            dirty.append(connection)
        }
        if !flushQueued {
            flushQueued = true
            eventLoop.execute { [self] in flushDirty() }
        }
    }

    private func flushDirty() {
        flushQueued = false
        lastShared = nil
        lastSharedBuffer = ByteBuffer()
        for connection in dirty {
            connection.dirty = false
            if !connection.inactive { connection.flush(written) }
        }
        dirty.removeAll(keepingCapacity: true)
    }

    /// A flush completed. The drain is reported by a task of its own: the promise may complete
    /// inside `flush`, which can run inside a driver call (`close`).
    private var written: @Sendable (NIOConnection) -> Void {
        { [self] connection in
            guard connection.buffered == 0, connection.drainOwed, !connection.closeRequested else { return }
            connection.drainOwed = false
            eventLoop.execute { [self] in
                guard !halted, !connection.closeRequested, connections[connection.id] === connection else { return }
                events?.connectionDrained(connection.id)
            }
        }
    }

    // MARK: - Closing and reading

    public func close(_ connection: ConnectionID, flushFirst: Bool) {
        guard let c = connections[connection] else { return }
        let first = !c.closeRequested
        c.closeRequested = true
        c.held = []
        if c.inactive {  // the channel is gone; only the report can be left
            if c.endPending {
                c.endPending = false
                eventLoop.execute { [self] in reportClosed(c) }
            }
            return
        }
        if !flushFirst {
            c.linger?.cancel()
            c.channel.close(promise: nil)
        } else if first {
            c.finish(lingerMilliseconds: lingerMilliseconds, written: written)
        }
    }

    public func pauseReading(_ connection: ConnectionID) {
        guard let c = connections[connection], !c.paused, !c.closeRequested else { return }
        c.paused = true
        c.setAutoRead(false)
    }

    /// Held bytes are delivered by a task of their own, never inside this call; reading starts
    /// again only after them, so nothing overtakes them.
    public func resumeReading(_ connection: ConnectionID) {
        guard let c = connections[connection], c.paused else { return }
        c.paused = false
        c.resuming = true
        eventLoop.execute { [self] in deliverHeld(c) }
    }

    private func deliverHeld(_ c: NIOConnection) {
        guard !c.paused, c.resuming else { return }
        c.resuming = false
        guard !halted, connections[c.id] === c else { return }
        while !c.held.isEmpty, !c.paused, !c.closeRequested, connections[c.id] === c {
            let buffer = c.held.removeFirst()
            buffer.withUnsafeReadableBytes { events?.bytesReceived(c.id, $0) }
        }
        guard !c.paused, !c.closeRequested, connections[c.id] === c else { return }
        if c.endPending {
            c.endPending = false
            reportClosed(c)
        } else if !c.inactive {
            c.setAutoRead(true)
        }
    }

    // MARK: - Timers

    public func schedule(_ token: UInt64, at deadline: Int64) {
        timers.schedule(token, at: deadline)
        armWake()
    }

    public func cancel(_ token: UInt64) { timers.cancel(token) }

    /// One NIO task at the earliest deadline; a cancelled timer's wake finds nothing due and
    /// re-arms for the next.
    private func armWake() {
        guard live, !halted, let next = timers.nextDeadline() else { return }
        if wake != nil, wakeDeadline <= next { return }
        wake?.cancel()
        wakeDeadline = next
        let at = NIODeadline.uptimeNanoseconds(UInt64(max(0, next)) * 1_000_000)
        wake = eventLoop.scheduleTask(deadline: at) { [self] in
            wake = nil
            wakeDeadline = .max
            fireTimers()
        }
    }

    private func fireTimers() {
        guard !halted else { return }
        timers.collectDue(now: now.monotonic, into: &due)
        for entry in due where timers.claim(entry) { events?.timerFired(entry.token) }
        due.removeAll(keepingCapacity: true)
        armWake()
    }
}
