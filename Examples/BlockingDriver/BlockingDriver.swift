import Foundation
import Switchboard
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A minimal `Driver`: blocking sockets, a reader and a writer thread per connection, and a
/// loop that is one thread running queued work. It is the example of `docs/drivers.md` and of
/// the README: what a driver for another runtime must do, without epoll's speed. It passes
/// `SwitchboardDriverConformance` (Tests/DriverConformanceTests).
///
/// Threads never touch the engine: they `post` what they saw to the loop, which reports it.
/// Writes are queued on the loop and handed to the writer threads at the end of each turn.
public final class BlockingDriver: Driver, @unchecked Sendable {
    /// Not retained: the engine owns the driver (`Driver`, ownership).
    private unowned(unsafe) var events: DriverEvents?
    private let loop = WorkQueue()
    /// The listening socket; -1 once the accept thread has closed it.
    private let listener = Mutex<Int32>(-1)
    private var connections: [ConnectionID: BlockingConnection] = [:]
    private var nextID: ConnectionID = 1
    private var timers = TimerHeap()
    private var due: [TimerHeap.Entry] = []
    private var dirty: [BlockingConnection] = []
    private var lingers: [(deadline: Int64, connection: BlockingConnection)] = []
    private var turnNow: Int64 = 0
    private let wallOffset: Int64
    private lazy var executor = LoopTaskExecutor(execute: { [loop] work in loop.post(work) })
    /// How long `close(flushFirst: true)` waits for the peer's FIN, in milliseconds.
    public let lingerMilliseconds: Int64 = 2000

    public init() {
        wallOffset = Int64(Date().timeIntervalSince1970 * 1000) - Self.monotonic()
        turnNow = Self.monotonic()
    }

    public var capabilities: DriverCapabilities { [.hooksOnLoop] }

    // MARK: - Listening and the loop

    public func start(host: String, port: Int, events: DriverEvents) throws -> Int {
        self.events = events
        let fd = try Self.listen(host: host, port: port)
        listener.withLock { $0 = fd }
        Thread.detachNewThread { [self] in
            while true {
                let connection = accept(fd, nil, nil)
                if connection < 0 {
                    if errno == EINTR { continue }
                    break  // stopAccepting shut the listener down
                }
                loop.post { [self] in opened(connection) }
            }
            listener.withLock {
                Glibc.close($0)
                $0 = -1
            }
        }
        return try Self.boundPort(fd)
    }

    public func run() {
        while let batch = loop.next(deadline: [timers.nextDeadline(), lingers.first?.deadline].compactMap { $0 }.min()) {
            for work in batch {
                turnNow = max(turnNow, Self.monotonic())
                work()
            }
            turnNow = max(turnNow, Self.monotonic())
            fireTimers()
            expireLingers()
            for connection in dirty { connection.flush() }  // the end of the turn: writers go
            dirty.removeAll()
        }
        stopAccepting()
        for connection in connections.values { connection.abort() }  // their threads end
    }

    public func stop() { loop.stop() }
    /// Shutting the listener down wakes its blocked `accept`, which then ends the thread.
    public func stopAccepting() { listener.withLock { if $0 >= 0 { _ = shutdown($0, Int32(SHUT_RDWR)) } } }
    public func execute(_ work: @escaping @Sendable () -> Void) { loop.post(work) }
    public var inLoop: Bool { loop.isCurrent }
    public var now: Now { Now(monotonic: turnNow, wall: turnNow + wallOffset) }
    public func spawn(_ operation: @escaping @Sendable () async -> Void) {
        Task(executorPreference: executor) { await operation() }
    }

    // MARK: - Connections (on the loop)

    private func opened(_ fd: Int32) {
        let id = nextID
        nextID += 1
        let connection = BlockingConnection(id: id, fd: fd, loop: loop)
        connections[id] = connection
        connection.startThreads(
            received: { [self] bytes in received(connection, bytes) },
            ended: { [self] in closed(connection) },
            drained: { [self] in if connections[id] === connection { events?.connectionDrained(id) } })
        events?.connectionOpened(id, peer: Self.peerHost(fd))
    }

    /// Bytes a reader read: held while paused (it may have read them just before the pause).
    private func received(_ connection: BlockingConnection, _ bytes: [UInt8]) {
        guard connections[connection.id] === connection, !connection.closeRequested else { return }
        if connection.paused || !connection.held.isEmpty {
            connection.held.append(bytes)
            return
        }
        bytes.withUnsafeBytes { events?.bytesReceived(connection.id, $0) }
    }

    /// Both threads ended. A FIN behind held bytes waits for the resume that delivers them.
    private func closed(_ connection: BlockingConnection) {
        guard connections[connection.id] === connection else { return }
        if !connection.held.isEmpty, !connection.closeRequested {
            connection.endPending = true
            return
        }
        connections[connection.id] = nil
        events?.connectionClosed(connection.id)
    }

    public func write(_ connection: ConnectionID, _ bytes: SharedBytes) {
        bytes.bytes.withUnsafeBytes { write(connection, copying: $0) }
    }

    public func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer) {
        guard let c = connections[connection], !c.closeRequested else { return }
        if c.enqueue(bytes) { dirty.append(c) }
    }

    public func bufferedAmount(_ connection: ConnectionID) -> Int { connections[connection]?.buffered ?? 0 }

    /// A refused write marks the connection backlogged: its writer reports the drain.
    public func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer, ifBufferedAtMost limit: Int) -> Bool {
        if let c = connections[connection], !c.closeRequested, !c.accepts(limit) { return false }
        write(connection, copying: bytes)
        return true
    }

    public func write(_ connection: ConnectionID, _ bytes: SharedBytes, ifBufferedAtMost limit: Int) -> Bool {
        bytes.bytes.withUnsafeBytes { write(connection, copying: $0, ifBufferedAtMost: limit) }
    }

    public func close(_ connection: ConnectionID, flushFirst: Bool) {
        guard let c = connections[connection] else { return }
        if c.endPending {  // its threads are gone already: only the report is left
            c.closeRequested = true
            loop.post { [self] in closed(c) }
            return
        }
        if !flushFirst {
            c.abort()
        } else if !c.closeRequested {
            c.closeRequested = true
            c.finishWriting()
            dirty.append(c)
            lingers.append((turnNow + lingerMilliseconds, c))
        }
        c.closeRequested = true
    }

    public func pauseReading(_ connection: ConnectionID) { connections[connection]?.setPaused(true) }

    /// Held bytes are reported by a later work item, never inside this call.
    public func resumeReading(_ connection: ConnectionID) {
        guard let c = connections[connection], c.paused else { return }
        c.setPaused(false)
        loop.post { [self] in
            guard !c.paused, connections[connection] === c else { return }
            let held = c.held
            c.held = []
            for (index, bytes) in held.enumerated() {
                guard !c.paused, !c.closeRequested, connections[connection] === c else {
                    if !c.closeRequested { c.held = Array(held[index...]) }
                    return
                }
                bytes.withUnsafeBytes { events?.bytesReceived(connection, $0) }
            }
            if c.endPending { closed(c) }
        }
    }

    // MARK: - Timers

    public func schedule(_ token: UInt64, at deadline: Int64) { timers.schedule(token, at: deadline) }
    public func cancel(_ token: UInt64) { timers.cancel(token) }

    private func fireTimers() {
        timers.collectDue(now: turnNow, into: &due)
        for entry in due where timers.claim(entry) { events?.timerFired(entry.token) }
        due.removeAll()
    }

    private func expireLingers() {
        while let first = lingers.first, first.deadline <= turnNow {
            lingers.removeFirst()
            first.connection.abort()
        }
    }

    static func monotonic() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}
