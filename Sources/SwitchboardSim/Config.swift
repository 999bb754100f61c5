import Switchboard

/// Everything one run does, drawn from one seed by `SimConfig.swarm(seed:)` or written by hand
/// for a named scenario. Times are virtual milliseconds from the start of the run.
public struct SimConfig: Sendable {
    public var seed: UInt64
    /// Server instances sharing the virtual clock and the bus (1...3).
    public var serverCount = 1
    /// Event loops of each server (`ServerOptions.loops`), by server index; a server not
    /// listed runs one. Each loop has its own simulated driver; connections are spread over
    /// them by the seed, as SO_REUSEPORT spreads them.
    public var loops: [Int] = []
    /// How long work posted to a loop from elsewhere (another loop's hand-off, the bus reader,
    /// an application thread) waits before the loop takes it (virtual ms).
    public var handOffDelay: ClosedRange<Int64> = 0...3
    /// Faults seeded on purpose, to prove the model catches them.
    public var faults = Faults()
    public var options = ServerOptions()
    public var hooks = HookSettings()
    public var network = NetworkSettings()
    public var bus = BusSettings()
    public var clients: [ClientPlan] = []
    /// Application calls and shutdowns at given times.
    public var actions: [WorldAction] = []
    /// Clients still open at `duration` leave (their `finalAction`), or every server shuts down.
    public var duration: Int64 = 5000
    public var ending: Ending = .clientsLeave
    /// Virtual time after `duration` for timers, lingering closes and slow hooks to finish.
    public var settle: Int64 = 20000

    public enum Ending: Sendable, Equatable { case clientsLeave, shutdown }

    /// Faults the world makes in the library's machinery (none by default).
    public struct Faults: Sendable {
        /// Lose the n-th hand-off between two loops of a server (1: the first).
        public var dropHandOff: Int?
        /// Perform the n-th hand-off twice.
        public var duplicateHandOff: Int?
        /// Hold the n-th hand-off back until the next one to the same loop has been posted,
        /// and post it behind that one: the two swap.
        public var delayHandOff: Int?
        public init() {}
    }

    /// The loops of server `index`.
    public func loopCount(_ index: Int) -> Int { loops.indices.contains(index) ? loops[index] : 1 }

    public init(seed: UInt64) { self.seed = seed }

    /// Adjusts timings so that every kernel timer fires at an even millisecond and every input
    /// that comes from outside (bytes, hook answers, bus messages) arrives at an odd one. Then no
    /// timer ever ties with an input, and the reference model can order them without knowing
    /// the heap's tie-break. The idle sweep still runs at even times; the model tolerates its
    /// ties (an idle close and a kernel timer at the same millisecond).
    public mutating func normalize() {
        if options.authTimeout % 2 == 0 { options.authTimeout += 1 }
        if options.heartbeatInterval % 2 != 0 { options.heartbeatInterval += 1 }
        options.idleTimeout = (options.idleTimeout + 7) / 8 * 8
        options.upgradeTimeout = (options.upgradeTimeout + 3) / 4 * 4
        serverCount = max(1, min(serverCount, 8))
        loops = (0..<serverCount).map { max(1, min(loopCount($0), 4)) }
        for index in clients.indices {
            clients[index].server = min(max(0, clients[index].server), serverCount - 1)
        }
    }
}

public struct HookSettings: Sendable {
    public var validateRoomConfigured = true
    /// handshakeFn is configured (only used when `requireEncryption`).
    public var handshakeConfigured = true
    public var validateThrowRate = 0.0
    public var callbackThrowRate = 0.0
    /// Latency of validateRoomFn and of the connect/disconnect callbacks.
    public var latency: ClosedRange<Int64> = 1...20
    public init() {}
}

public struct NetworkSettings: Sendable {
    /// One-way latency per chunk.
    public var latency: ClosedRange<Int64> = 1...5
    /// Chance that a client write is split into several chunks (partial reads at the server).
    public var splitChance = 0.3
    /// Bytes the network takes from a connection's send buffer per tick.
    public var drainPerTick: ClosedRange<Int> = 16384...65536
    public var tick: Int64 = 2
    /// Bytes in flight plus unread at the client before the server's buffer grows (the TCP window).
    public var window: ClosedRange<Int> = 65536...262_144
    /// How long a flushing close waits for the peer before it drops the connection (POSIX: 2000).
    public var linger: Int64 = 2000
    public init() {}
}

public struct BusSettings: Sendable {
    /// Publisher-to-subscriber delay; each publisher's messages keep their order.
    public var delay: ClosedRange<Int64> = 1...10
    /// Windows (virtual ms, half-open) in which Redis is down: what is published then is lost.
    public var outages: [Range<Int64>] = []
    public init() {}

    func isDown(at time: Int64) -> Bool { outages.contains { $0.contains(time) } }
}

/// What the application or the operator does at a given time.
public struct WorldAction: Sendable {
    public var at: Int64
    public var kind: Kind
    public init(at: Int64, _ kind: Kind) {
        self.at = at
        self.kind = kind
    }

    public enum Kind: Sendable {
        /// `Server.shutdown()` of one instance.
        case shutdown(server: Int)
        /// A delivery call on one instance's public API (event `app`).
        case app(server: Int, AppCall)
    }
}

/// The server API calls the simulated application makes; `exclude` counts ids drawn from the
/// clients known at that moment.
public enum AppCall: Sendable, Equatable {
    case broadcast(exclude: Int)
    case toRoom(String, exclude: Int)
    case toUser(String)
    case toClient(Int)
    case send(destination: String?)
    case publishBroadcast(exclude: Int)
    case publishRoom(String, exclude: Int)
}

/// One simulated client: where and when it connects, and what it does.
public struct ClientPlan: Sendable {
    public var server: Int
    public var connectAt: Int64
    public var upgrade: UpgradeStyle = .normal
    public var actions: [TimedAction] = []
    /// What the client does at `duration` if it is still open.
    public var finalAction: FinalAction = .close(1000)
    /// Chance that a message goes out as a binary frame, or split into fragments.
    public var binaryChance = 0.0
    public var fragmentChance = 0.0
    /// Sends frames right behind the upgrade request instead of waiting for the 101.
    public var pipelines = false
    /// The loop of its server that accepts it (for scenarios); nil: drawn by the seed.
    public var loop: Int?

    public init(server: Int = 0, connectAt: Int64 = 1) {
        self.server = server
        self.connectAt = connectAt
    }

    public enum FinalAction: Sendable, Equatable { case close(UInt16?), reset, stay }
}

public struct TimedAction: Sendable {
    public var at: Int64
    public var action: ClientAction
    public init(at: Int64, _ action: ClientAction) {
        self.at = at
        self.action = action
    }
}

public enum ClientAction: Sendable, Equatable {
    case authenticate(AuthScript)
    case heartbeat
    case join([String])
    /// `join` whose `rooms` is not a list (nothing happens).
    case joinMalformed
    case leave([String])
    /// A custom event carrying a tag (`from`, `seq`), routed by the app's messageHandler.
    case app(AppKind, pad: Int)
    /// A custom event the app ignores.
    case custom(String)
    case invalidJSON
    /// Valid JSON that is not an envelope with an event (`null`, `5`, `{"event":""}`...).
    case noEvent(String)
    case ping
    /// One frame of a text message sent in pieces over time; the last one completes it.
    case fragment(String, last: Bool)
    /// Stop reading for this long (sending goes on).
    case stall(Int64)
    case violation(Violation)
    case close(UInt16?)
    case reset
}

public enum AppKind: Sendable, Equatable {
    case broadcast
    case echo
    case toRoom(String)
    case toUser(String)
    /// To another simulated client by index (its wire id as known then), or to an unknown id.
    case toClient(Int?)
}

/// Frames a server must refuse, with the close code RFC 6455 gives them.
public enum Violation: Sendable, Equatable {
    case unmasked
    case reservedOpcode
    case invalidUTF8
    case tooBig

    var closeCode: UInt16 {
        switch self {
        case .unmasked, .reservedOpcode: 1002
        case .invalidUTF8: 1007
        case .tooBig: 1009
        }
    }
}

/// What authenticateFn (and handshakeFn) will answer for this client, and how late.
public struct AuthScript: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable { case ok(user: String?), reject, falseValue, fail }
    public enum HandshakeOutcome: Sendable, Equatable { case ok, reject, fail }
    public var outcome: Outcome
    public var latency: Int64
    public var handshake: HandshakeOutcome = .ok
    public var handshakeLatency: Int64 = 1
    public init(_ outcome: Outcome, latency: Int64 = 1) {
        self.outcome = outcome
        self.latency = latency
    }
}

extension ClientAction {
    /// A short form for the trace.
    var label: String {
        switch self {
        case .authenticate(let script): "authenticate(\(script.outcome) +\(script.latency)ms)"
        case .heartbeat: "heartbeat"
        case .join(let rooms): "join(\(rooms.map { $0.count > 12 ? "\($0.prefix(8))…" : $0 }))"
        case .joinMalformed: "join(malformed)"
        case .leave(let rooms): "leave(\(rooms))"
        case .app(let kind, let pad): "app(\(kind), pad \(pad))"
        case .custom(let event): "custom(\(event))"
        case .invalidJSON: "invalid-json"
        case .noEvent(let text): "no-event(\(text))"
        case .ping: "ping"
        case .fragment(let text, let last): "fragment(\(text)\(last ? ", last" : ""))"
        case .stall(let length): "stall(\(length)ms)"
        case .violation(let violation): "violation(\(violation))"
        case .close(let code): "close(\(code.map(String.init) ?? "-"))"
        case .reset: "reset"
        }
    }
}
