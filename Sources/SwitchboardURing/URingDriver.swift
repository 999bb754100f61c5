import Glibc
import Switchboard

/// A driver on io_uring (Linux 6.0 and later): the epoll driver's model (one loop thread,
/// writes corked per turn, one send per connection per turn) with the readiness calls gone.
/// Every turn makes one `io_uring_enter`, which submits the turn's sends and re-armed
/// requests and waits for the next completions; accepts and receives are multishot requests
/// that stay in the kernel, receiving into a pool of provided buffers (`BufferRing`).
/// `docs/drivers.md` ("The io_uring driver") has the design and the measurements.
///
/// ```swift
/// let driver: (any Driver)?
/// do { driver = try URingDriver() } catch { driver = nil }  // nil: the epoll default
/// let server = try Server(options: options, hooks: hooks, driver: driver)
/// ```
///
/// `init` throws `URingUnavailable` when io_uring is missing or forbidden (`ENOSYS`, `EPERM`
/// under a container's seccomp profile or `kernel.io_uring_disabled`) or lacks a feature
/// (provided buffer rings, multishot receive). No TLS: it does not declare `.tls`, so TLS
/// options with it are a start-up error.
public final class URingDriver: Driver, @unchecked Sendable {
    private let loop: URingLoop
    private let mailbox: Mailbox
    private let wallOffset: Int64
    private var executor: LoopTaskExecutor?
    /// Listen with `SO_REUSEPORT` (set before `start`).
    public var reusePort = false

    /// - Parameters:
    ///   - hooksOnLoop: hooks run as tasks on the loop's thread (`.hooksOnLoop`), as with
    ///     `POSIXDriver`; false runs them on the global pool.
    ///   - receiveBuffers: buffers in the receive pool (a power of two). The kernel is
    ///     offered 64 at first, twice as many each time a turn's receives took them all (those
    ///     left without one are re-armed a turn later), at most the whole pool.
    ///   - receiveBufferSize: bytes per buffer; a longer read comes as several completions.
    ///   - lingerMilliseconds: how long `close(flushFirst: true)` waits for the peer's FIN.
    public init(hooksOnLoop: Bool = true, receiveBuffers: Int = 512, receiveBufferSize: Int = 4096,
                lingerMilliseconds: Int64 = 2000) throws(URingUnavailable) {
        try Self.checkKernelVersion()
        let ring = try Ring(entries: 4096, completions: 16384)
        guard ring.supportsNetworkOperations else {
            throw URingUnavailable(step: "IORING_REGISTER_PROBE (accept, recv, send, sendmsg, read, cancel)", code: ENOTSUP)
        }
        let buffers = try BufferRing(ring: ring, count: receiveBuffers, size: receiveBufferSize)
        let mailbox = try Mailbox()
        let loop = URingLoop(ring: ring, buffers: buffers, mailbox: mailbox, lingerMilliseconds: lingerMilliseconds)
        self.mailbox = mailbox
        self.loop = loop
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        wallOffset = Int64(wall.tv_sec) * 1000 + Int64(wall.tv_nsec) / 1_000_000 - loop.cachedNow
        if hooksOnLoop { executor = LoopTaskExecutor(execute: { work in mailbox.execute(work) }) }
    }

    /// Why `URingDriver()` would throw here, or nil if it would not (sets a ring up and
    /// tears it down).
    public static func unavailability() -> URingUnavailable? {
        do throws(URingUnavailable) {
            _ = try URingDriver()
            return nil
        } catch {
            return error
        }
    }

    /// Multishot receive needs Linux 6.0; older kernels accept the request and fail it.
    private static func checkKernelVersion() throws(URingUnavailable) {
        var name = utsname()
        guard uname(&name) == 0 else { return }
        let release = withUnsafeBytes(of: &name.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2, (numbers[0], numbers[1]) < (6, 0) else { return }
        throw URingUnavailable(step: "multishot receive needs Linux 6.0, this is \(release)", code: ENOTSUP)
    }

    public func start(host: String, port: Int, events: DriverEvents) throws -> Int {
        loop.events = events
        do {
            let (fd, bound) = try Listener.open(host: host, port: port, reusePort: reusePort)
            loop.listenFD = fd
            return bound
        } catch {
            throw StartupError(message: "Cannot listen on \(host):\(port): \(error)")
        }
    }

    public func run() { loop.run() }
    public func stop() { mailbox.requestStop() }

    public func stopAccepting() {
        if mailbox.isLoopThread {
            loop.stopAccepting()
        } else {
            mailbox.post { [loop] in loop.stopAccepting() }
        }
    }

    public func execute(_ work: @escaping @Sendable () -> Void) { mailbox.execute(work) }
    public var inLoop: Bool { mailbox.isLoopThread }

    public func spawn(_ operation: @escaping @Sendable () async -> Void) {
        if let executor {
            Task(executorPreference: executor) { await operation() }
        } else {
            Task { await operation() }
        }
    }

    /// `.hooksOnLoop` when built with `hooksOnLoop`; never `.tls`.
    public var capabilities: DriverCapabilities { executor != nil ? [.hooksOnLoop] : [] }

    /// Read once per turn, after the turn's `io_uring_enter`; the wall clock follows the
    /// monotonic one from start-up, as in `POSIXDriver`.
    public var now: Now { Now(monotonic: loop.cachedNow, wall: loop.cachedNow + wallOffset) }

    public func write(_ connection: ConnectionID, _ bytes: SharedBytes) {
        _ = loop.write(connection, bytes, ifBufferedAtMost: .max)
    }
    public func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer) {
        _ = loop.write(connection, copying: bytes, ifBufferedAtMost: .max)
    }
    public func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer,
                      ifBufferedAtMost limit: Int) -> Bool {
        loop.write(connection, copying: bytes, ifBufferedAtMost: limit)
    }
    public func write(_ connection: ConnectionID, _ bytes: SharedBytes, ifBufferedAtMost limit: Int) -> Bool {
        loop.write(connection, bytes, ifBufferedAtMost: limit)
    }
    public func write(_ connection: ConnectionID, copying first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
                      ifBufferedAtMost limit: Int) -> Bool {
        loop.write(connection, copying: first, second, ifBufferedAtMost: limit)
    }
    public func bufferedAmount(_ connection: ConnectionID) -> Int { loop.bufferedAmount(connection) }
    public func close(_ connection: ConnectionID, flushFirst: Bool) { loop.close(connection, flushFirst: flushFirst) }
    /// Cancels the connection's multishot receive (at the end of the turn); bytes it had
    /// already taken are held. The rest waits in the socket, and TCP's window slows the peer.
    public func pauseReading(_ connection: ConnectionID) { loop.pauseReading(connection) }
    public func resumeReading(_ connection: ConnectionID) { loop.resumeReading(connection) }
    public func schedule(_ token: UInt64, at deadline: Int64) { loop.schedule(token, at: deadline) }
    public func cancel(_ token: UInt64) { loop.cancel(token) }

    /// Open connections (for tests and metrics).
    public var connectionCount: Int { loop.connectionCount }
}
