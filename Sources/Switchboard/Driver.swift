@_exported import SwitchboardKernel
@_exported import SwitchboardJSON
// `SharedBytes`: below every driver, so a custom driver needs nothing of SwitchboardPOSIX.
@_exported import SwitchboardDriverSupport

/// A connection as a driver names it. Never reused within a process.
public typealias ConnectionID = UInt64

/// The IO side of a server: listening, bytes, timers and a loop to run on. Switchboard ships
/// a POSIX driver (epoll) and tests with a simulation driver; implement this protocol to run
/// the gateway on anything else.
///
/// Threading: the engine calls every method but `execute` on the driver's loop, and the
/// driver calls every `DriverEvents` method on that same loop, never re-entrantly.
public protocol Driver: AnyObject, Sendable {
    /// Binds the listener and starts delivering events. Returns the bound port.
    func start(host: String, port: Int, events: DriverEvents) throws -> Int
    /// Runs the loop on the calling thread until `stop()`.
    func run()
    /// Ends `run()`. Thread-safe.
    func stop()
    /// Stops accepting new connections (shutdown).
    func stopAccepting()
    /// Runs `work` on the loop soon. Thread-safe.
    func execute(_ work: @escaping @Sendable () -> Void)
    /// Whether the caller is on the loop thread.
    var inLoop: Bool { get }
    /// The time now: monotonic and wall clock, in milliseconds.
    var now: Now { get }
    /// Queues bytes for a connection; they go out at the end of the loop turn.
    func write(_ connection: ConnectionID, _ bytes: SharedBytes)
    /// Queues a copy of small bytes; consecutive copies for one connection may be merged
    /// into one buffer (fewer iovecs than many shared chunks).
    func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer)
    /// Bytes queued for a connection and not yet handed to the network.
    func bufferedAmount(_ connection: ConnectionID) -> Int
    /// `write(_:copying:)` unless more than `limit` bytes are queued already: then nothing is
    /// queued and the answer is false (backpressure). One lookup for the check and the write.
    func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer, ifBufferedAtMost limit: Int) -> Bool
    /// `write(_:_:)` unless more than `limit` bytes are queued already (then false).
    func write(_ connection: ConnectionID, _ bytes: SharedBytes, ifBufferedAtMost limit: Int) -> Bool
    /// Two pieces (a frame's header and its payload) copied one after the other, unless more
    /// than `limit` bytes are queued already: then nothing is queued and the answer is false.
    func write(_ connection: ConnectionID, copying first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
               ifBufferedAtMost limit: Int) -> Bool
    /// Closes a connection, after writing what is queued when `flushFirst`.
    func close(_ connection: ConnectionID, flushFirst: Bool)
    /// A one-shot timer; scheduling the same token again replaces it.
    func schedule(_ token: UInt64, at deadline: Int64)
    func cancel(_ token: UInt64)
    /// Runs an application hook off the loop. The default is a `Task`; a simulation runs it
    /// to completion at once and delivers its answer (via `execute`) at a virtual time.
    func spawn(_ operation: @escaping @Sendable () async -> Void)
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
}

/// What a driver reports; implemented by the engine.
public protocol DriverEvents: AnyObject {
    /// `peer` is the client's address (host only), used for per-address limits and logs.
    func connectionOpened(_ connection: ConnectionID, peer: String)
    func bytesReceived(_ connection: ConnectionID, _ bytes: UnsafeRawBufferPointer)
    /// The connection's queued bytes were all written after it had been backpressured.
    func connectionDrained(_ connection: ConnectionID)
    /// Reported exactly once per opened connection.
    func connectionClosed(_ connection: ConnectionID)
    func timerFired(_ token: UInt64)
}
