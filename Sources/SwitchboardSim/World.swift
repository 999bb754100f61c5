import Dispatch
import Switchboard
import SwitchboardBus
import SwitchboardCodec
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Everything that can happen in the simulated world, in one heap.
enum SimEvent {
    /// Work for a server's loop (`Driver.execute`), maybe a hook's answer or a bus message.
    case work(driver: Int, body: @Sendable () -> Void, tag: WorkTag?)
    case timer(driver: Int, token: UInt64, generation: UInt64)
    case connect(client: Int)
    case clientAction(client: Int, index: Int)
    case clientFinal(client: Int)
    case stallEnd(client: Int)
    /// Client bytes reach the server.
    case toServer(ConnectionID, [UInt8])
    /// The client's FIN or RST reaches the server.
    case finToServer(ConnectionID)
    /// Server bytes reach the client.
    case toClient(ConnectionID, [UInt8])
    case eofToClient(ConnectionID)
    case resetToClient(ConnectionID)
    /// The network takes bytes from a connection's send buffer.
    case drain(ConnectionID)
    case notifyClosed(ConnectionID)
    case notifyDrained(ConnectionID)
    case linger(ConnectionID)
    case bus(BusDelivery)
    case worldAction(Int)
    case end
}

enum WorkTag {
    case hookAnswer(HookAnswer)
    /// The bus messages of one read (`MessageBus.start(receiveBatch:)`), in order.
    case bus([BusDelivery])
    /// What another loop of the server (its driver index) handed over in one of its turns:
    /// `ShardSet`'s hand-off, posted from that loop to this one.
    case handOff(from: Int)
    /// The part of an application's call (the model's number for it) made off the loops.
    case appPost(Int)
    /// The loop's queued flush after a hand-off or an app post (`Engine.inputQueued`): the
    /// frames those inputs made are written here.
    case flush
}

/// The shared simulated world: one virtual clock and event heap for every server instance,
/// client and bus link. Runs on one thread; hooks run in Tasks while that thread waits.
public final class SimWorld: @unchecked Sendable {
    public let config: SimConfig
    /// Virtual milliseconds since the start of the run.
    public private(set) var now: Int64 = 0
    /// The wall clock at virtual time 0 (2025-11-25T22:00:00.000Z).
    public let wallBase: Int64 = 1_764_108_000_000
    /// Every server's drivers, one per loop: a server's loops are consecutive, its first first.
    public private(set) var drivers: [SimDriver] = []
    /// The server of each driver, and each server's drivers.
    var driverServer: [Int] = []
    var serverDrivers: [[Int]] = []
    /// The loop (driver) whose event is processed now: its driver alone is `inLoop` then, in a
    /// server with several loops. Nil between such events (every loop counts as the caller's,
    /// as the sim thread always did); `offLoops`: none (an application thread).
    var active: Int?
    static let offLoops = -1
    /// The tag of the work item being processed.
    var processing: WorkTag?
    /// The application call whose parts are being posted now (`WorkTag.appPost`).
    var currentAppPost: Int?
    /// Cross-loop posts (`Driver.execute` from another thread) reach a loop after a seeded
    /// delay, in the order posted: one queue per loop, as a driver's mailbox.
    var mailboxRNG: SimRandom
    var lastMailbox: [Int64] = []
    /// Between events, work posted to a loop runs at once (`metrics(ofServer:)`).
    var answering = false
    /// A hand-off `SimConfig.faults.delayHandOff` holds back, by target loop.
    var heldBack: [Int: (body: @Sendable () -> Void, tag: WorkTag?)] = [:]
    /// Hand-offs posted so far; `SimConfig.faults.dropHandOff` drops one of them.
    var handOffsPosted = 0
    public private(set) var servers: [Server] = []
    var buses: [SimBus] = []
    var clients: [SimClient] = []
    var sockets: [ConnectionID: Socket] = [:]
    var nextConnection: ConnectionID = 1
    var queue = EventQueue<SimEvent>()
    var trace = Trace()
    let model: ReferenceModel
    var busRNG: [SimRandom] = []
    var lastBus: [Int64] = []
    var busSerial = 0
    var busDetached: [Bool] = []
    var worldRNG: SimRandom
    var appSeq: [Int] = []
    /// How far a driver's `run()` steps (servers start at time 0; the simulation then steps
    /// the world itself with `run(until:)`).
    var horizon: Int64 = 0
    var running = false
    var aborted = false
    var problems: [String] = []
    var stats = SimStats()

    // Threading: the sim thread owns everything. Hooks run in Tasks whose jobs the sim thread
    // runs itself (`spawn`); other threads reach the world only through `execute` (`foreign`).
    var simThread: pthread_t?
    var spawnContext: SpawnContext?
    /// A hook's Task is running (on this thread, through `hookExecutor`).
    var runningHook = false
    let hookExecutor = InlineExecutor()
    var currentBus: [BusDelivery]?
    /// The client whose bytes a server is reading now: an id the server draws meanwhile is
    /// that client's (the engine names a client when its upgrade completes).
    var readingFor: Int?
    let foreign = Locked<[(driver: Int, work: @Sendable () -> Void)]>([])
    let foreignSignal = DispatchSemaphore(value: 0)
    let shutdownReturned: Locked<[Bool]>
    var shutdownRequested: [Bool] = []
    var writesThisEvent: [(ConnectionID, Int)] = []
    var firstProblemLine = 0
    var serverOutcomes: [ServerOutcome] = []

    struct SpawnContext {
        var driver: Int
        var latency: Int64?
        var answer: HookAnswer?
    }

    public init(config: SimConfig) {
        var config = config
        config.normalize()
        self.config = config
        self.worldRNG = SimRandom(seed: config.seed, domain: 3)
        self.mailboxRNG = SimRandom(seed: config.seed, domain: 11)
        self.model = ReferenceModel(config: config, wallBase: wallBase)
        self.shutdownReturned = Locked(Array(repeating: false, count: config.serverCount))
    }

    var isSimThread: Bool {
        guard let simThread else { return false }
        return pthread_equal(simThread, pthread_self()) != 0
    }

    // MARK: - Lanes and scheduling

    static let controlLane: UInt64 = 0
    static func timerLane(_ driver: Int) -> UInt64 { 10 + 2 * UInt64(driver) }
    static func workLane(_ driver: Int) -> UInt64 { 11 + 2 * UInt64(driver) }
    static func busLane(_ from: Int, _ to: Int) -> UInt64 { 100 + 16 * UInt64(from) + UInt64(to) }
    static func mailboxLane(_ driver: Int) -> UInt64 { 500 + UInt64(driver) }
    static func clientLane(_ client: Int) -> UInt64 { 1000 + UInt64(client) }
    static func connectionLane(_ connection: ConnectionID) -> UInt64 { 1_000_000 + connection }

    func push(_ event: SimEvent, at time: Int64, lane: UInt64) {
        queue.push(event, at: max(time, now), lane: lane)
    }

    /// Inputs from outside the servers arrive at odd milliseconds (see `SimConfig.normalize`).
    static func odd(_ time: Int64) -> Int64 { time | 1 }

    func record(_ problem: String) {
        if problems.isEmpty { firstProblemLine = trace.lines }
        problems.append("t=\(now) \(problem)")
    }

    // MARK: - Set-up

    func startServers() throws {
        simThread = pthread_self()
        model.world = self
        busRNG = (0..<(config.serverCount * config.serverCount)).map { SimRandom(seed: config.seed, domain: 4, index: UInt64($0)) }
        lastBus = Array(repeating: 0, count: config.serverCount * config.serverCount)
        busDetached = Array(repeating: false, count: config.serverCount)
        shutdownRequested = Array(repeating: false, count: config.serverCount)
        appSeq = Array(repeating: 0, count: config.serverCount)
        for (index, plan) in config.clients.enumerated() {
            clients.append(SimClient(index: index, plan: plan, seed: config.seed))
        }
        model.setUp(clients: config.clients)
        for index in 0..<config.serverCount {
            var loops: [SimDriver] = []
            for loop in 0..<config.loopCount(index) {
                let driver = SimDriver(world: self, index: drivers.count, steps: loop == 0)
                loops.append(driver)
                driverServer.append(index)
                drivers.append(driver)
            }
            serverDrivers.append(loops.map(\.index))
        }
        lastMailbox = Array(repeating: 0, count: drivers.count)
        model.setUp(loops: serverDrivers)
        for index in 0..<config.serverCount {
            let bus = SimBus(world: self, server: index)
            buses.append(bus)
            let ref = WorldRef(self)
            let logger = Logger(level: .warning) { level, message in ref.world?.log(level, message) }
            let idSource = Locked(SimRandom(seed: config.seed, domain: 5, index: UInt64(index)))
            let ids = IDGenerator {
                let bits = idSource.withLock { ($0.next(), $0.next()) }
                ref.world?.idDrawn(bits)
                return bits
            }
            var options = config.options
            options.loops = serverDrivers[index].count
            let server = try Server(options: options, hooks: makeHooks(server: index),
                                    drivers: serverDrivers[index].map { drivers[$0] }, bus: bus, logger: logger, ids: ids)
            servers.append(server)
            model.serverIDs.append(server.serverID)
            try server.run { _ in }
        }
        for (index, plan) in config.clients.enumerated() {
            push(.connect(client: index), at: SimWorld.odd(plan.connectAt), lane: SimWorld.clientLane(index))
        }
        for (index, action) in config.actions.enumerated() {
            push(.worldAction(index), at: SimWorld.odd(action.at), lane: SimWorld.controlLane)
        }
        push(.end, at: SimWorld.odd(config.duration), lane: SimWorld.controlLane)
    }

    /// A driver of a world with no servers (`SimDriver.standalone()`), and letting go of it.
    func attach(_ driver: SimDriver) { drivers.append(driver) }
    func detachDrivers() { drivers.removeAll() }

    /// A driver's name in the trace: `S1` for a server with one loop, `S1.0` for its first of several.
    func name(_ driver: Int) -> String {
        guard driverServer.indices.contains(driver) else { return "S\(driver)" }  // a standalone driver
        let server = driverServer[driver]
        let loops = serverDrivers[server]
        return loops.count == 1 ? "S\(server)" : "S\(server).\(driver - loops[0])"
    }

    /// Whether a driver is one of several loops of its server (one alone keeps the sim's first
    /// rules: on the sim thread it is always the loop, and `execute` runs its work now).
    func isSharded(driver: Int) -> Bool {
        driverServer.indices.contains(driver) && serverDrivers[driverServer[driver]].count > 1
    }

    /// Whether the sim thread counts as this driver's loop now (`SimDriver.inLoop`).
    func isCurrent(_ driver: Int) -> Bool {
        !isSharded(driver: driver) || active == nil || active == driver
    }

    func log(_ level: LogLevel, _ message: String) {
        trace.append("\(now) log \(level) \(message.prefix(160))")
    }

    // MARK: - Running

    /// Steps events up to virtual time `deadline` (inclusive), or until nothing is left.
    public func run(until deadline: Int64) {
        guard !running else { return }
        running = true
        defer { running = false }
        while !aborted, let time = queue.nextTime, time <= deadline {
            let (key, event) = queue.pop()!
            now = key.time
            writesThisEvent.removeAll(keepingCapacity: true)
            active = loop(of: event)
            let line = process(event)
            active = nil
            processing = nil
            if !writesThisEvent.isEmpty {
                writesThisEvent.sort { $0.0 < $1.0 }
                trace.append("\(now) \(line) w" + writesThisEvent.map { "\($0.0):\($0.1)" }.joined(separator: ","))
            } else {
                trace.append("\(now) \(line)")
            }
            stats.events += 1
            // A Task that waited on this event (Server.shutdown) goes on now, on this thread.
            if hookExecutor.hasJobs { hookExecutor.runPending() }
            model.endOfEvent()
        }
        if deadline > now, queue.nextTime.map({ $0 > deadline }) ?? true { now = deadline }
    }

    func process(_ event: SimEvent) -> String {
        switch event {
        case .work(let driver, let body, let tag):
            processing = tag
            switch tag {
            case .hookAnswer(let answer)?:
                model.hookAnswered(answer, server: driver)
                body()
                return "\(name(driver)) answer \(answer.label)"
            case .bus(let deliveries)?:
                for delivery in deliveries { model.busArrived(delivery, loop: driver) }
                body()
                return "\(name(driver)) bus-in " + deliveries.map { "m\($0.serial) \($0.channel)" }.joined(separator: ", ")
            case .handOff(let from)?:
                model.handOffPerformed(from: from, to: driver)
                stats.handOffs += 1
                body()
                return "\(name(driver)) hand-off from \(name(from))"
            case .appPost(let call)?:
                model.appPostPerformed(call, loop: driver)
                stats.appPosts += 1
                body()
                return "\(name(driver)) app-post a\(call)"
            case .flush?:
                body()
                model.flushed(loop: driver)
                return "\(name(driver)) flush"
            case nil:
                body()
                return "\(name(driver)) work"
            }
        case .timer(let driver, let token, let generation):
            guard drivers[driver].timers[token] == generation else { return "\(name(driver)) stale-timer \(token)" }
            drivers[driver].timers[token] = nil
            drivers[driver].events?.timerFired(token)
            return "\(name(driver)) timer \(token)"
        case .connect(let k):
            return connect(k)
        case .clientAction(let k, let index):
            return clients[k].perform(index, world: self)
        case .clientFinal(let k):
            return clients[k].performFinal(world: self)
        case .stallEnd(let k):
            return clients[k].stallEnded(world: self)
        case .toServer(let id, let bytes):
            return arriveAtServer(id, bytes)
        case .finToServer(let id):
            guard let socket = sockets[id], !socket.destroyed else { return "#\(id) fin (gone)" }
            destroy(socket)
            return "#\(id) fin"
        case .toClient(let id, let bytes):
            guard let socket = sockets[id] else { return "#\(id) >cli (gone)" }
            socket.inFlight -= bytes.count
            clients[socket.client].receive(bytes, world: self)
            return "#\(id) >c\(socket.client) \(bytes.count)B"
        case .eofToClient(let id):
            guard let socket = sockets[id] else { return "#\(id) eof" }
            clients[socket.client].receiveEOF(world: self)
            return "#\(id) eof>c\(socket.client)"
        case .resetToClient(let id):
            guard let socket = sockets[id] else { return "#\(id) rst" }
            clients[socket.client].receiveReset(world: self)
            return "#\(id) rst>c\(socket.client)"
        case .drain(let id):
            return drain(id)
        case .notifyClosed(let id):
            guard let socket = sockets[id], !socket.notified else { return "#\(id) closed (again)" }
            socket.notified = true
            model.transportClosed(client: socket.client)
            drivers[socket.loop].events?.connectionClosed(id)
            return "\(name(socket.loop)) #\(id) closed"
        case .notifyDrained(let id):
            guard let socket = sockets[id], !socket.destroyed, !socket.closing else { return "#\(id) drained (gone)" }
            drivers[socket.loop].events?.connectionDrained(id)
            return "\(name(socket.loop)) #\(id) drained"
        case .linger(let id):
            guard let socket = sockets[id], !socket.destroyed else { return "#\(id) linger (done)" }
            model.serverAborted(client: socket.client, why: .linger)
            destroy(socket, resetClient: true)
            return "\(name(socket.loop)) #\(id) linger-expired"
        case .bus(let delivery):
            guard !busDetached[delivery.to], let receive = buses[delivery.to].receiver else {
                return "bus m\(delivery.serial) to S\(delivery.to) dropped (detached)"
            }
            let batch = busRead(delivery)
            currentBus = batch
            receive(batch.map { BusMessage(channel: $0.channel, message: $0.message) })
            currentBus = nil
            return "bus " + batch.map { "m\($0.serial)" }.joined(separator: ",") + " S\(delivery.from)>S\(delivery.to)"
        case .worldAction(let index):
            return performWorldAction(config.actions[index])
        case .end:
            return end()
        }
    }

    /// The loop an event is processed on (see `active`): a driver's work and timers, and what a
    /// connection's driver reports; nil for clients, the bus reader and the operator.
    func loop(of event: SimEvent) -> Int? {
        switch event {
        case .work(let driver, _, _), .timer(let driver, _, _): return driver
        case .toServer(let id, _), .finToServer(let id), .notifyClosed(let id), .notifyDrained(let id), .linger(let id):
            return sockets[id]?.loop
        default: return nil
        }
    }
}

/// A weak handle for closures the servers keep (hooks, logger), so no cycle outlives the run.
final class WorldRef: @unchecked Sendable {
    weak var world: SimWorld?
    init(_ world: SimWorld) { self.world = world }
}

/// Counters for the report.
public struct SimStats: Sendable, CustomStringConvertible {
    public var events = 0
    public var spawns = 0
    public var published = 0
    public var busLost = 0
    /// Bus messages handed over in a read with others (`SimWorld.busRead`).
    public var busBatched = 0
    /// Hand-offs between the loops of a server performed, and app calls' parts posted to loops.
    public var handOffs = 0
    public var appPosts = 0
    public var bytesWritten = 0
    public var deliveriesChecked = 0
    public var excusedLosses = 0
    /// Of those, how many the engine may not count: due to a client it closed for
    /// backpressure in the same event, after the close.
    public var excusedUncounted = 0
    public var staleAnswers = 0
    public var closes: [String: Int] = [:]

    public var description: String {
        let closeText = closes.sorted { $0.key < $1.key }.map { "\($0.key)x\($0.value)" }.joined(separator: " ")
        return "events \(events), hooks \(spawns), deliveries \(deliveriesChecked) (excused \(excusedLosses)), "
            + "published \(published) (lost \(busLost), \(busBatched) in shared reads), hand-offs \(handOffs), app posts \(appPosts), stale answers \(staleAnswers), closes [\(closeText)]"
    }
}

/// A value behind a mutex, shareable by reference.
final class Locked<Value>: @unchecked Sendable {
    private let mutex: Mutex<Value>
    init(_ value: sending Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout sending Value) throws -> sending R) rethrows -> R {
        try mutex.withLock(body)
    }
}

/// A task executor whose jobs run on the thread that calls `run(until:)`: the sim thread runs a
/// hook's Task to completion itself. A job enqueued from elsewhere (a hook that really waits)
/// wakes it.
final class InlineExecutor: TaskExecutor, @unchecked Sendable {
    private let jobs = Locked<[UnownedJob]>([])
    private let signal = DispatchSemaphore(value: 0)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        signal.signal()
    }

    var hasJobs: Bool { jobs.withLock { !$0.isEmpty } }

    /// Runs the jobs queued now, and those they queue.
    func runPending() {
        while let next = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
            next.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    /// Runs jobs until `done()`; false if nothing happened for 60 real seconds.
    func run(until done: () -> Bool) -> Bool {
        while !done() {
            let next = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            if let next {
                next.runSynchronously(on: asUnownedTaskExecutor())
            } else if signal.wait(timeout: .now() + .seconds(60)) == .timedOut {
                return false
            }
        }
        return true
    }
}
