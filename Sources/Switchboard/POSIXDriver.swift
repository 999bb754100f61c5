import SwitchboardPOSIX
#if canImport(Glibc)
import Glibc
#endif

/// The default driver: non-blocking sockets on epoll (SwitchboardPOSIX), one loop thread.
public final class POSIXDriver: Driver, EventLoopHandler, @unchecked Sendable {
    private let loop: EventLoop
    /// The engine; not retained (the server owns both), and not weak: a weak reference gives
    /// the engine a side table, which makes every retain of it a slow one.
    private unowned(unsafe) var events: DriverEvents?

    /// Wall clock minus monotonic clock, read once: `now` costs no system call.
    private let wallOffset: Int64
    /// The `wss://` certificate and key, nil for plain `ws://`; `TLSContext.reload()` swaps them
    /// for new handshakes (SIGHUP in `switchboard serve`).
    public let tls: TLSContext?
    private var executor: EventLoopTaskExecutor?
    /// The tasks hooks run on, with `hooksOnLoop`: reused from one hook to the next.
    private var hookTasks: HookTaskPool?
    /// Listen with `SO_REUSEPORT`: set by the server when it runs several loops on one port
    /// (`ServerOptions.loops`), before `start`.
    public var reusePort = false
    /// Where failed TLS handshakes are reported (the server sets it to its logger).
    public var logTLSFailure: (@Sendable (String) -> Void)?

    /// `tlsCertificateFile`/`tlsKeyFile`: serve `wss://`; a file that cannot be loaded is a
    /// start-up error naming it.
    ///
    /// `hooksOnLoop`: application hooks (authenticate, handshake, validateRoom, callbacks) run
    /// as tasks on the loop's thread, between events, as the original's hooks run on Bun's one
    /// JavaScript thread: no thread hop per hook. Their awaits still suspend without blocking
    /// the loop; a hook that blocks or computes for long should hop off itself, or pass
    /// `false` to run every hook on the global concurrent pool.
    public init(tlsCertificateFile: String? = nil, tlsKeyFile: String? = nil, hooksOnLoop: Bool = true) throws {
        switch (tlsCertificateFile, tlsKeyFile) {
        case (nil, nil):
            self.tls = nil
        case (let certificate?, let key?):
            do { self.tls = try TLSContext(certificateChainFile: certificate, privateKeyFile: key) } catch {
                throw StartupError(message: "TLS: \(error)")
            }
        default:
            throw StartupError(message: "TLS needs both a certificate file and a key file")
        }
        self.loop = try EventLoop()
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        let wallNow = Int64(wall.tv_sec) * 1000 + Int64(wall.tv_nsec) / 1_000_000
        self.wallOffset = wallNow - Instant.monotonic.milliseconds
        if hooksOnLoop {
            let executor = EventLoopTaskExecutor(loop: loop)
            self.executor = executor
            self.hookTasks = HookTaskPool(executor: executor)
        }
    }

    public func start(host: String, port: Int, events: DriverEvents) throws -> Int {
        self.events = events
        loop.handler = self
        do {
            return try loop.listen(host: host, port: port, tls: tls, reusePort: reusePort).port
        } catch {
            throw StartupError(message: "Cannot listen on \(host):\(port): \(error)")
        }
    }

    public func run() {
        loop.run()
        // The hook tasks parked for reuse end here: each holds the loop (its sockets and epoll
        // descriptor) through its executor.
        if let hookTasks {
            hookTasks.close()
            loop.runQueuedWork()
        }
    }

    public func stop() { loop.stop() }
    /// From another thread, the listener is closed on the loop (the loop owns its descriptors).
    public func stopAccepting() {
        if loop.isLoopThread {
            loop.stopAccepting()
        } else {
            loop.post { [loop] in loop.stopAccepting() }
        }
    }
    public func execute(_ work: @escaping @Sendable () -> Void) {
        if loop.isLoopThread { loop.runSoon(work) } else { loop.post(work) }
    }

    /// Hooks run as tasks that prefer the loop's thread (see `init`), reused from one hook to
    /// the next (`HookTaskPool`), or as tasks of their own on the global pool. The task runs
    /// `operation` itself (a closure around it cost an allocation per hook call).
    public func spawn(_ operation: @escaping @Sendable () async -> Void) {
        if let hookTasks {
            hookTasks.spawn(operation)
        } else {
            Task(operation: operation)
        }
    }
    public var inLoop: Bool { loop.isLoopThread }

    /// `.hooksOnLoop` when built with `hooksOnLoop`, `.tls` when built with TLS files.
    public var capabilities: DriverCapabilities {
        var capabilities: DriverCapabilities = []
        if executor != nil { capabilities.insert(.hooksOnLoop) }
        if tls != nil { capabilities.insert(.tls) }
        return capabilities
    }

    /// Cached per loop turn by the event loop; the wall clock follows the monotonic one
    /// from start-up (a jump of the system clock does not move `connected.time`).
    public var now: Now {
        let monotonic = loop.now.milliseconds
        return Now(monotonic: monotonic, wall: monotonic + wallOffset)
    }

    public func write(_ connection: ConnectionID, _ bytes: SharedBytes) {
        loop.write(SocketID(rawValue: connection), bytes)
    }
    public func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer) {
        loop.write(SocketID(rawValue: connection), copying: bytes)
    }
    public func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer,
                      ifBufferedAtMost limit: Int) -> Bool {
        loop.write(SocketID(rawValue: connection), copying: bytes, ifBufferedAtMost: limit)
    }
    public func write(_ connection: ConnectionID, _ bytes: SharedBytes, ifBufferedAtMost limit: Int) -> Bool {
        loop.write(SocketID(rawValue: connection), bytes, ifBufferedAtMost: limit)
    }
    public func write(_ connection: ConnectionID, copying first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
                      ifBufferedAtMost limit: Int) -> Bool {
        loop.write(SocketID(rawValue: connection), copying: first, second, ifBufferedAtMost: limit)
    }
    public func bufferedAmount(_ connection: ConnectionID) -> Int {
        loop.bufferedAmount(SocketID(rawValue: connection))
    }
    public func close(_ connection: ConnectionID, flushFirst: Bool) {
        loop.close(SocketID(rawValue: connection), flushFirst: flushFirst)
    }
    /// Takes the socket out of epoll's read interest; the kernel's receive buffer holds the
    /// rest (and TCP's window then slows the peer). Ignored while closing: the FIN must be seen.
    public func pauseReading(_ connection: ConnectionID) {
        loop.pauseReading(SocketID(rawValue: connection), true)
    }
    public func resumeReading(_ connection: ConnectionID) {
        loop.pauseReading(SocketID(rawValue: connection), false)
    }
    public func schedule(_ token: UInt64, at deadline: Int64) {
        loop.schedule(token, at: Instant(milliseconds: deadline))
    }
    public func cancel(_ token: UInt64) { loop.cancel(token) }

    /// Runs `handler` on the loop when one of `signals` arrives.
    public func onSignal(_ signals: [Int32], _ handler: @escaping () -> Void) {
        loop.onSignal(signals, handler)
    }

    // EventLoopHandler
    public func connectionAccepted(_ id: SocketID, peer: PeerAddress, listener: ListenerID) {
        events?.connectionOpened(id.rawValue, peer: peer.host)
    }
    public func bytesReceived(_ id: SocketID, _ bytes: UnsafeRawBufferPointer) {
        events?.bytesReceived(id.rawValue, bytes)
    }
    public func connectionDrained(_ id: SocketID) {
        events?.connectionDrained(id.rawValue)
    }
    public func connectionClosed(_ id: SocketID, reason: CloseReason) {
        if case .tlsFailed(let why) = reason { logTLSFailure?("TLS handshake failed: \(why)") }
        events?.connectionClosed(id.rawValue)
    }
    public func timerFired(_ token: UInt64) {
        events?.timerFired(token)
    }
}
