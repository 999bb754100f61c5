@_exported import SwitchboardKernel
@_exported import SwitchboardJSON
// `SharedBytes`, the timer heap, the loop executor and the outbound queue: below every driver,
// so a custom driver needs nothing of SwitchboardPOSIX.
@_exported import SwitchboardDriverSupport

/// A connection as a driver names it. Never reused within a process.
public typealias ConnectionID = UInt64

/// What a driver can do beyond the required calls; `Server.init` throws when an option asks
/// for something the driver does not declare, instead of ignoring the option.
public struct DriverCapabilities: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// `spawn` runs hooks serialised with the loop (as tasks on the loop's thread, for example
    /// with a `LoopTaskExecutor`), which `ServerOptions.hooksOnLoop` (the default) promises.
    public static let hooksOnLoop = DriverCapabilities(rawValue: 1 << 0)
    /// The driver serves TLS (`wss://`), configured when it was built; needed when
    /// `ServerOptions.tlsCertificateFile` or `tlsKeyFile` is set.
    public static let tls = DriverCapabilities(rawValue: 1 << 1)
}

/// The IO side of a server: listening, bytes, timers and a loop to run on. Switchboard ships
/// a POSIX driver (epoll) and tests with a simulation driver; implement this protocol to run
/// the gateway on anything else. `docs/drivers.md` is the full contract, with the reasons;
/// `SwitchboardDriverConformance` checks a driver against it.
///
/// **The loop.** A driver has one loop: a serial context (one thread, or one queue) on which
/// every `DriverEvents` callback runs. The engine calls every method but `execute`, `stop`,
/// `stopAccepting` and `inLoop` on the loop (or, for `start`, before `run()`); a driver need
/// not lock its state for them.
///
/// **Re-entrancy.** A driver MUST NOT call a `DriverEvents` method from inside another one or
/// from inside one of its own methods: the engine calls `close` inside `connectionOpened` and
/// `bytesReceived`, writes inside every callback, and `resumeReading` inside `execute` work, and
/// what those cause (`connectionClosed`, `connectionDrained`, held bytes) is reported after the
/// current callback returns.
///
/// **Ownership.** The server owns the driver and the engine; the engine holds the driver
/// strongly. The driver MUST NOT hold `events` strongly (that is a cycle): keep it `unowned`
/// or `weak`. It MAY rely on `events` staying alive until `run()` returns.
///
/// **Sendable.** `Driver` is `Sendable` because `execute`, `stop` and `stopAccepting` are
/// called from other threads; everything else is loop-confined state that Swift cannot see is
/// confined, hence the usual `@unchecked Sendable` on a driver class.
public protocol Driver: AnyObject, Sendable {
    /// Binds the listener and returns the bound port (0 asks for a free one). Called once,
    /// before `run()`, on the thread that will call `run()` or before it starts. No event may
    /// be delivered before `run()`.
    func start(host: String, port: Int, events: DriverEvents) throws -> Int
    /// Runs the loop on the calling thread until `stop()`: every callback and every `execute`
    /// work item runs here.
    func run()
    /// Ends `run()` soon. MUST be callable from any thread, and before `run()` (then `run()`
    /// returns at once).
    func stop()
    /// Closes the listener: no `connectionOpened` after it takes effect; open connections
    /// carry on. MUST be callable from any thread (graceful shutdown calls it on the loop).
    func stopAccepting()
    /// Runs `work` on the loop, later. MUST be callable from any thread and before `run()`
    /// (then the work waits for it), MUST always queue (never run `work` inside the call, even
    /// on the loop), and MUST run works queued from one thread in that order.
    func execute(_ work: @escaping @Sendable () -> Void)
    /// Whether the caller is on the loop (where the engine may be touched directly).
    var inLoop: Bool { get }
    /// The time now: `monotonic` (milliseconds on a clock that never goes back, the scale of
    /// timer deadlines) and `wall` (Unix milliseconds, for `connected.time` and logs). It MAY be
    /// cached for the duration of a loop turn (the POSIX driver reads the clock once per turn);
    /// it MUST NOT go back.
    var now: Now { get }
    /// Queues bytes for a connection; they go out in call order, with no further event needed:
    /// by the end of the current loop turn at the latest (the POSIX driver corks them until
    /// then, one `writev` per connection). Unknown and closing connections: ignored. The
    /// driver keeps `bytes` (shared, immutable) until written.
    func write(_ connection: ConnectionID, _ bytes: SharedBytes)
    /// Queues a copy of small bytes; consecutive copies for one connection may be merged
    /// into one buffer (fewer iovecs than many shared chunks). `bytes` is valid only during
    /// the call.
    func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer)
    /// Bytes queued for a connection and not yet handed to the network; 0 if unknown.
    func bufferedAmount(_ connection: ConnectionID) -> Int
    /// `write(_:copying:)` unless more than `limit` bytes are queued already: then nothing is
    /// queued and the answer is false (backpressure; a `connectionDrained` MUST follow once
    /// the queue empties). Unknown or closing connections: nothing queued, true.
    func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer, ifBufferedAtMost limit: Int) -> Bool
    /// `write(_:_:)` unless more than `limit` bytes are queued already (then false).
    func write(_ connection: ConnectionID, _ bytes: SharedBytes, ifBufferedAtMost limit: Int) -> Bool
    /// Two pieces (a frame's header and its payload) copied one after the other, unless more
    /// than `limit` bytes are queued already: then nothing is queued and the answer is false.
    func write(_ connection: ConnectionID, copying first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
               ifBufferedAtMost limit: Int) -> Bool
    /// Closes a connection. `flushFirst: false`: now, queued bytes dropped. `flushFirst: true`:
    /// the queued bytes are written, then FIN, then the driver waits (lingers) a bounded time
    /// for the peer's FIN before closing. Either way `connectionClosed` follows exactly once,
    /// later (never inside this call); writes after it are ignored; a second close is ignored,
    /// except that `flushFirst: false` cuts a linger short. Unknown connections: ignored.
    func close(_ connection: ConnectionID, flushFirst: Bool)
    /// Stops reporting `bytesReceived` for a connection (the engine has too much of its input
    /// in hand). Bytes already read are held. The peer's FIN MAY wait behind unread bytes
    /// until the resume (then: the bytes, then `connectionClosed`); a reset or a local `close`
    /// is reported as usual. Repeats and unknown connections are ignored. Required: a driver
    /// that reads on threads of its own would otherwise queue a flooding client's bytes
    /// without bound.
    func pauseReading(_ connection: ConnectionID)
    /// Reports `bytesReceived` again, starting with anything held, in a later callback (never
    /// inside this call). Repeats and unknown connections are ignored.
    func resumeReading(_ connection: ConnectionID)
    /// A one-shot timer firing `timerFired(token)` once `now.monotonic >= deadline`; scheduling
    /// an armed token replaces it; equal deadlines fire in scheduling order. Tokens below 16
    /// are the engine's own (1: transport sweep, 2: shutdown batches).
    func schedule(_ token: UInt64, at deadline: Int64)
    /// Disarms a token; it does not fire afterwards, even if it was due this turn.
    func cancel(_ token: UInt64)
    /// Runs an application hook off the callback (it answers through `execute`). The default is
    /// a `Task` on the global pool; a driver with `.hooksOnLoop` runs it on its loop's executor;
    /// a simulation runs it to completion at once.
    func spawn(_ operation: @escaping @Sendable () async -> Void)
    /// What the driver does beyond the required calls. Default: nothing.
    var capabilities: DriverCapabilities { get }
}

extension Driver {
    public func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer) {
        write(connection, SharedBytes(Array(bytes)))
    }

    public func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer,
                      ifBufferedAtMost limit: Int) -> Bool {
        guard bufferedAmount(connection) <= limit else { return false }
        write(connection, copying: bytes)
        return true
    }

    public func write(_ connection: ConnectionID, copying first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
                      ifBufferedAtMost limit: Int) -> Bool {
        guard write(connection, copying: first, ifBufferedAtMost: limit) else { return false }
        write(connection, copying: second)
        return true
    }

    public func write(_ connection: ConnectionID, _ bytes: SharedBytes, ifBufferedAtMost limit: Int) -> Bool {
        guard bufferedAmount(connection) <= limit else { return false }
        write(connection, bytes)
        return true
    }

    public func spawn(_ operation: @escaping @Sendable () async -> Void) {
        Task { await operation() }
    }

    public var capabilities: DriverCapabilities { [] }
}

/// What a driver reports; implemented by the engine. Every call MUST be made on the driver's
/// loop, one at a time, never from inside another (see `Driver`).
public protocol DriverEvents: AnyObject {
    /// A new connection. `peer` is the client's address (host only, `127.0.0.1`, `::1`), used
    /// for per-address limits and logs. The engine may `close` it inside this call.
    func connectionOpened(_ connection: ConnectionID, peer: String)
    /// Bytes read, in order. `bytes` belongs to the driver and is valid only during the call
    /// (the engine copies what it keeps). Never after `close` or `pauseReading` was called for
    /// the connection (until `resumeReading`), never after `connectionClosed`.
    func bytesReceived(_ connection: ConnectionID, _ bytes: UnsafeRawBufferPointer)
    /// The connection's queue emptied after a write was refused by an `ifBufferedAtMost`
    /// limit (backpressure). MUST be reported after a refused write, unless the connection
    /// closes first; MAY be reported after any emptying of a non-empty queue (which a driver
    /// keeping the default bounded writes must do: it never sees their refusals).
    func connectionDrained(_ connection: ConnectionID)
    /// Reported exactly once per opened connection, whoever closed it; the id is dead after.
    func connectionClosed(_ connection: ConnectionID)
    /// A `schedule`d token is due.
    func timerFired(_ token: UInt64)
}
