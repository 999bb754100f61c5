import Dispatch
import Switchboard
import SwitchboardBus
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A `Driver` on the simulated world: virtual clock, virtual sockets (partial reads, a send
/// buffer drained at a seeded rate, stalls and resets), timers on the world's heap, and hooks
/// run to completion with their answers delivered after a seeded latency.
///
/// It is the proof that a custom IO driver plugs in: the servers of a simulation are ordinary
/// `Server`s built with `Server(options:hooks:driver:bus:)`.
public final class SimDriver: Driver, @unchecked Sendable {
    unowned let world: SimWorld
    public let index: Int
    /// What the world reports to: the engine, behind the driver's read gate (`pauseReading`).
    var events: DriverEvents? { gate.engine == nil ? nil : gate }
    private let gate = ReadGate()
    /// Armed timers: token -> generation of the heap entry that may fire.
    var timers: [UInt64: UInt64] = [:]
    private var generation: UInt64 = 0
    var accepting = true
    let stopped = Atomic<Bool>(false)
    /// The world of a `standalone()` driver, kept alive by it (a simulation's world owns its
    /// drivers instead).
    private let ownWorld: SimWorld?
    /// `run()` steps the world: the first loop of each server. The server starts its other
    /// loops' `run()` on threads of their own, as with POSIX drivers; theirs return at once,
    /// since every loop's events are the one world's, stepped on the sim thread.
    private let steps: Bool

    init(world: SimWorld, index: Int, owningWorld: Bool = false, steps: Bool = true) {
        self.world = world
        self.index = index
        self.ownWorld = owningWorld ? world : nil
        self.steps = steps
    }

    /// Timer tokens armed now (for leak checks).
    public var armedTimers: [UInt64] { timers.keys.sorted() }
    /// Whether `stop()` was called (the end of `Server.shutdown()`).
    public var isStopped: Bool { stopped.load(ordering: .acquiring) }

    public func start(host: String, port: Int, events: DriverEvents) throws -> Int {
        gate.engine = events
        return 40000 + index
    }

    /// Steps the shared world until it is idle or reaches its current horizon; a standalone
    /// driver's until `stop()`.
    public func run() {
        if ownWorld != nil {
            runStandalone()
        } else if steps {
            world.run(until: world.horizon)
        }
    }

    public func stop() {
        stopped.store(true, ordering: .releasing)
        if ownWorld != nil { world.foreignSignal.signal() }  // wakes runStandalone's wait
    }
    public func stopAccepting() { world.stopAccepting(index) }
    public func execute(_ work: @escaping @Sendable () -> Void) { world.execute(driver: index, work) }
    /// True on the sim thread, except inside a hook (hooks run off the loop, as with a real
    /// driver); of a server with several loops, only while this loop's event is processed (or
    /// between events, where the world queries the servers).
    public var inLoop: Bool { world.isSimThread && !world.runningHook && world.isCurrent(index) }
    public var now: Now { Now(monotonic: world.now, wall: world.wallBase + world.now) }
    public func write(_ connection: ConnectionID, _ bytes: SharedBytes) { world.serverWrite(index, connection, bytes) }
    public func bufferedAmount(_ connection: ConnectionID) -> Int { world.sockets[connection]?.bufferedAmount ?? 0 }
    public func close(_ connection: ConnectionID, flushFirst: Bool) { world.serverClose(index, connection, flushFirst: flushFirst) }

    /// Hooks run to completion on the sim thread between the world's events: serialised with
    /// the loop, as `hooksOnLoop` promises.
    public var capabilities: DriverCapabilities { [.hooksOnLoop] }

    /// Chunks that arrive for a paused connection wait in the gate, as unread bytes wait in a
    /// socket's receive buffer.
    public func pauseReading(_ connection: ConnectionID) {
        guard let socket = world.sockets[connection], socket.loop == index, !socket.destroyed else { return }
        gate.paused.insert(connection)
    }

    /// Held chunks are replayed by a work item at the current virtual time, after the caller.
    public func resumeReading(_ connection: ConnectionID) {
        guard gate.paused.remove(connection) != nil, gate.held[connection] != nil else { return }
        world.execute(driver: index) { [self] in
            guard !gate.paused.contains(connection), let chunks = gate.held.removeValue(forKey: connection),
                  let socket = world.sockets[connection], !socket.destroyed, !socket.closeRequested else { return }
            for (i, chunk) in chunks.enumerated() {
                if socket.destroyed || socket.closeRequested { return }
                if gate.paused.contains(connection) {
                    // Paused again by what it just read: keep the rest for the next resume.
                    gate.held[connection] = Array(chunks[i...])
                    return
                }
                chunk.withUnsafeBytes { gate.engine?.bytesReceived(connection, $0) }
            }
        }
    }

    /// Whether reading is paused for a connection (for tests).
    public func isReadingPaused(_ connection: ConnectionID) -> Bool { gate.paused.contains(connection) }

    public func schedule(_ token: UInt64, at deadline: Int64) {
        generation += 1
        timers[token] = generation
        world.push(.timer(driver: index, token: token, generation: generation), at: deadline, lane: SimWorld.timerLane(index))
    }

    public func cancel(_ token: UInt64) { timers[token] = nil }

    public func spawn(_ operation: @escaping @Sendable () async -> Void) { world.spawn(driver: index, operation) }
}

// MARK: - On its own, for the conformance kit

extension SimDriver {
    /// A driver on an empty world of its own (no servers, clients or bus), for checks that
    /// drive a `Driver` directly, as SwitchboardDriverConformance does (`sockets: false`: its
    /// connections are the world's clients, which such a world has none of). Its `run()` steps
    /// the world until `stop()`, taking `execute` work from other threads as it comes; when
    /// nothing is due now, virtual time jumps to the next event (a timer fires as soon as the
    /// loop gets to it, at its virtual deadline).
    public static func standalone(seed: UInt64 = 0) -> SimDriver {
        let world = SimWorld(config: SimConfig(seed: seed))
        let driver = SimDriver(world: world, index: 0, owningWorld: true)
        world.attach(driver)
        return driver
    }

    /// The loop of a standalone driver, on the calling thread. On the way out the world lets go
    /// of the driver (which holds the world), so both are freed once the caller drops it.
    private func runStandalone() {
        world.simThread = pthread_self()
        defer {
            world.simThread = nil  // a later thread may get this one's id
            world.detachDrivers()
        }
        while !isStopped {
            let works = world.foreign.withLock { list -> [(driver: Int, work: @Sendable () -> Void)] in
                defer { list.removeAll() }
                return list
            }
            // On the sim thread `execute` queues at the current virtual time, in order.
            for (driver, work) in works { world.execute(driver: driver, work) }
            if let next = world.queue.nextTime {
                world.run(until: next)
            } else if works.isEmpty {
                _ = world.foreignSignal.wait(timeout: .now() + .milliseconds(100))
            }
        }
    }
}

/// The engine's events, passed through; bytes for a paused connection are held instead.
final class ReadGate: DriverEvents {
    weak var engine: DriverEvents?
    var paused: Set<ConnectionID> = []
    var held: [ConnectionID: [[UInt8]]] = [:]

    func connectionOpened(_ connection: ConnectionID, peer: String) { engine?.connectionOpened(connection, peer: peer) }
    func bytesReceived(_ connection: ConnectionID, _ bytes: UnsafeRawBufferPointer) {
        // Behind held chunks (paused, or resumed and waiting for the replay) in arrival order.
        if paused.contains(connection) || held[connection] != nil {
            held[connection, default: []].append(Array(bytes))
        } else {
            engine?.bytesReceived(connection, bytes)
        }
    }
    func connectionDrained(_ connection: ConnectionID) { engine?.connectionDrained(connection) }
    func connectionClosed(_ connection: ConnectionID) {
        paused.remove(connection)
        held[connection] = nil
        engine?.connectionClosed(connection)
    }
    func timerFired(_ token: UInt64) { engine?.timerFired(token) }
}

/// The simulated Redis: every instance's bus on one link table. Each publisher's messages
/// reach each subscriber in order after a seeded delay (order across publishers is free);
/// a message published during an outage is lost for everyone, as with Redis pub/sub. Like
/// Redis, a publisher hears its own messages (the kernel drops them by server id).
public final class SimBus: MessageBus, @unchecked Sendable {
    unowned let world: SimWorld
    let server: Int
    /// Takes the messages of one read (`SimWorld.busRead`).
    var receiver: (@Sendable ([BusMessage]) -> Void)?
    let closed = Atomic<Bool>(false)

    init(world: SimWorld, server: Int) {
        self.world = world
        self.server = server
    }

    public var isClosed: Bool { closed.load(ordering: .acquiring) }

    public func start(receive: @escaping @Sendable (String, [UInt8]) -> Void,
                      ready: @escaping @Sendable (Result<Void, BusError>) -> Void) {
        start(receiveBatch: { for item in $0 { receive(item.channel, item.message) } }, ready: ready)
    }

    public func start(receiveBatch: @escaping @Sendable ([BusMessage]) -> Void,
                      ready: @escaping @Sendable (Result<Void, BusError>) -> Void) {
        receiver = receiveBatch
        ready(.success(()))
    }

    public func publish(channel: String, message: [UInt8]) {
        world.busPublish(from: server, channel: channel, message: message)
    }

    /// Called by `Server.shutdown()` from its Task once the loop finished; only recorded, so
    /// the run does not depend on when that thread gets to it.
    public func close() { closed.store(true, ordering: .releasing) }
}
