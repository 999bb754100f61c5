import Switchboard
import SwitchboardCodec
import SwitchboardDriverSupport

/// The reference model: what each client's server should do, from PROTOCOL.md alone.
///
/// It is written apart from the kernel and shares none of its routing. The world tells it
/// what the servers received (each client item as its last byte arrives, hook answers, bus
/// messages, API calls) and what they wrote (decoded where the driver takes the bytes). The
/// model keeps its own client states, rooms, users and timers (fired lazily: every kernel timer
/// is at an even millisecond and every input at an odd one, so the order is never in doubt),
/// predicts every write, hook call, publish and close, and reconciles at the end of each event:
/// a server writes synchronously, so whatever it should have written in an event is there by
/// the event's end. The only excuse for a missing message is backpressure seen in that event.
///
/// A server of several event loops is, to the model, one kernel per loop (its clients, sweep
/// and shutdown) under one server id and one publisher; what one loop does for the others
/// arrives in their later turns, checked when they perform it (`ReferenceModel+Loops`).
final class ReferenceModel {
    let config: SimConfig
    let wallBase: Int64
    weak var world: SimWorld?
    var serverIDs: [String] = []
    var clients: [Client] = []
    var idIndex: [String: Int] = [:]
    /// By loop (driver index): a server with several loops has one kernel, clients, timers and
    /// shutdown per loop (`setUp(loops:)`).
    var serverDown: [Bool]
    var authenticated: [Set<Int>]
    var nextSweep: [Int64]
    /// The server of each loop, and each server's loops.
    var loopServer: [Int] = []
    var serverLoops: [[Int]] = []
    /// What one loop hands another: items not yet posted, and posted batches not yet performed,
    /// by origin and target loop. Parts of application calls made off the loops, by call and loop.
    var unposted: [[[LoopItem]]] = []
    var posted: [[[[LoopItem]]]] = []
    var appPosts: [Int: [Int: LoopItem]] = [:]
    /// Clients whose expectations wait for a loop's flush (`WorkTag.flush`), by loop; the loop
    /// whose hand-off or app post this event performs.
    var held: [[Int]] = []
    var holding: Int?
    var timers = TimerHeap()
    var dueTimers: [TimerHeap.Entry] = []
    var touched: [Int] = []
    var touchedFlags: [Bool] = []
    var pendingPublishes: [Publish] = []
    var publishes: [Int: Publish] = [:]
    var expectThrow: Bool?
    var timedCloses: [Int] = []
    private(set) var event = 0

    var now: Int64 { world?.now ?? 0 }

    struct Client {
        enum Phase: String { case waiting, refused, accepted, unauthorized, authenticating, handshaking, authenticated, closed }
        let index: Int
        let server: Int
        /// The loop (driver index) that accepted it; -1 before.
        var loop = -1
        var phase = Phase.waiting
        var acceptedAt: Int64 = 0
        var lastReceive: Int64 = 0
        var lastActivity: Int64 = 0
        var authDeadline: Int64 = -1
        var inProgressDeadline: Int64 = -1
        var authData: JSONValue?
        var userID: String?
        var encrypted = false
        var id: String?
        var rooms: Set<String> = []
        var ownRoom = false
        var admitted = false
        /// The upgrade completed and the kernel made a record: clientDisconnectedFn is due once.
        var opened = false
        /// The server stops reading: close frame or HTTP answer written, or dropped.
        var closing = false
        var aborted = false
        var overLimitEvent = -1
        /// The event in which the server closed it with 1008 for backpressure.
        var backpressureClosed = -1
        var everOverLimit = false
        var connectedCalls = 0
        var disconnectedCalls = 0
        // Expectations for the current event (and a close that may come later).
        var expectHTTP: [Int] = []
        var expectErrors: [String] = []
        var expectConnected: Connected?
        var expectDeliveries: [Tag: (event: String, wrapped: Bool)] = [:]
        var expectHooks: [HookCall] = []
        var expectClose: Close?
        var expectPongs = 0

        var isLive: Bool { [.unauthorized, .authenticating, .handshaking, .authenticated].contains(phase) }
    }

    struct Connected {
        var userID: String?
        var keys: (key: String, salt: String)?
    }

    /// The close frame a client must get: one of `options` (reason nil: any).
    struct Close {
        var options: [(code: UInt16?, reason: String?)]
        var at: Int64
        /// Shutdown closes go out in batches, maybe in a later event.
        var batched: Bool
        /// From a timer the model fired lazily: due by the end of its millisecond, not of this event.
        var timed = false

        func matches(_ code: UInt16?, _ reason: String) -> Bool {
            options.contains { $0.code == code && ($0.reason == nil || $0.reason == reason) }
        }
        var text: String { options.map { "\($0.code.map(String.init) ?? "-") \($0.reason ?? "*")" }.joined(separator: " | ") }
    }

    struct Publish {
        var server: Int
        var channel: String
        var type: String
        var target: String?
        var event: String
        var tag: Tag
        var exclude: [String]
    }

    init(config: SimConfig, wallBase: Int64) {
        self.config = config
        self.wallBase = wallBase
        serverDown = Array(repeating: false, count: config.serverCount)
        authenticated = Array(repeating: [], count: config.serverCount)
        nextSweep = Array(repeating: config.options.heartbeatInterval, count: config.serverCount)
    }

    /// The loops of every server (driver indices), the first's first.
    func setUp(loops: [[Int]]) {
        serverLoops = loops
        loopServer = loops.enumerated().flatMap { server, drivers in drivers.map { _ in server } }
        let count = loopServer.count
        serverDown = Array(repeating: false, count: count)
        authenticated = Array(repeating: [], count: count)
        nextSweep = Array(repeating: config.options.heartbeatInterval, count: count)
        unposted = Array(repeating: Array(repeating: [], count: count), count: count)
        posted = Array(repeating: Array(repeating: [], count: count), count: count)
        held = Array(repeating: [], count: count)
    }

    func setUp(clients plans: [ClientPlan]) {
        clients = plans.enumerated().map { Client(index: $0.offset, server: $0.element.server) }
        touchedFlags = Array(repeating: false, count: plans.count)
    }

    func problem(_ text: String) { world?.record(text) }

    func touch(_ k: Int) {
        if !touchedFlags[k] {
            touchedFlags[k] = true
            touched.append(k)
        }
    }

    // MARK: - Ids

    func client(forID id: String) -> Int? { idIndex[id] }
    func id(ofClient k: Int) -> String? { clients.indices.contains(k) ? clients[k].id : nil }
    /// Ids of authenticated clients anywhere, by client index.
    func knownIDs() -> [String] {
        clients.filter { $0.phase == .authenticated }.compactMap(\.id)
    }

    /// The server named client `k` when its upgrade completed.
    func assigned(id: String, to k: Int) { learnID(id, for: k) }

    func learnID(_ id: String, for k: Int) {
        if let known = clients[k].id {
            if known != id { problem("c\(k) has id \(id) but was \(known)") }
            return
        }
        if let other = idIndex[id], other != k { problem("c\(k) and c\(other) share the id \(id)") }
        let parts = id.split(separator: "-")
        if id.count != 36 || parts.map(\.count) != [8, 4, 4, 4, 12] || parts[2].first != "4" {
            problem("c\(k) id \(id) is not a version-4 UUID")
        }
        clients[k].id = id
        idIndex[id] = k
    }

    // MARK: - Client lifecycle

    /// The kernel forgets the client: out of every index; a close frame is expected.
    func closeClient(_ k: Int, _ options: [(UInt16?, String?)], at time: Int64? = nil, batched: Bool = false) {
        release(k)
        if !options.isEmpty {
            clients[k].expectClose = Close(options: options.map { (code: $0.0, reason: $0.1) }, at: time ?? now,
                                           batched: batched, timed: time != nil)
            if time != nil { timedCloses.append(k) }
        }
        touch(k)
    }

    func release(_ k: Int) {
        var c = clients[k]
        if c.phase == .authenticated { authenticated[c.loop].remove(k) }
        c.phase = .closed
        c.rooms = []
        c.ownRoom = false
        clients[k] = c
    }

    func accepted(client k: Int, connection: ConnectionID, loop: Int) {
        advance()
        let s = clients[k].server
        clients[k].loop = loop
        if serverDown[loop] { problem("c\(k) accepted by S\(s) (loop \(loop)) after it stopped accepting") }
        clients[k].phase = .accepted
        clients[k].acceptedAt = now
        clients[k].lastReceive = now
    }

    func refused(client k: Int) {
        advance()
        let s = clients[k].server
        if !serverLoops[s].allSatisfy({ serverDown[$0] }) { problem("c\(k) refused by S\(s) while it accepts") }
        clients[k].phase = .refused
    }

    func chunkArrived(client k: Int) {
        advance()
        if !clients[k].closing { clients[k].lastReceive = now }
    }

    /// An item the client sent is complete at the server, which processes it next.
    func itemArrived(client k: Int, _ item: SentItem) {
        advance()
        var c = clients[k]
        guard !c.closing else { return }
        if case .ping = item {
            // RFC 6455 5.5.2: answered at once, whatever the client's state.
            clients[k].expectPongs += 1
            c.expectPongs += 1
            touch(k)
        }
        if c.phase == .closed {
            // Released by shutdown but still waiting for its 1001 batch: the engine answers
            // a close frame or a protocol error itself.
            guard var close = c.expectClose, close.batched else { return }
            switch item {
            case .close(let code): close.options.append((code: code, reason: ""))
            case .violation(let violation): close.options.append((code: violation.closeCode, reason: nil))
            default: break
            }
            clients[k].expectClose = close
            return
        }
        if c.phase == .accepted {
            guard case .upgrade(let style) = item else {
                problem("c\(k) sent \(item.label) before its upgrade completed")
                return
            }
            touch(k)
            if style == .normal {
                c.phase = .unauthorized
                c.opened = true
                c.lastActivity = now
                c.authDeadline = now + config.options.authTimeout
                timers.schedule(ClientTimer.token(k, .auth), at: c.authDeadline)
                c.expectHTTP = [101]
            } else {
                c.phase = .closed
                c.expectHTTP = [style.expectedStatus ?? 0]
            }
            clients[k] = c
            return
        }
        guard c.isLive else {
            problem("c\(k) item \(item.label) in phase \(c.phase)")
            return
        }
        touch(k)
        switch item {
        case .upgrade:
            problem("c\(k) upgraded twice")
        case .ping, .pong, .fragment:
            // PROTOCOL.md 1: every frame received from a client counts as activity.
            clients[k].lastActivity = now
        case .close(let code):
            closeClient(k, [(code, "")])
        case .violation(let violation):
            closeClient(k, [(violation.closeCode, nil)])
        case .message(let inbound):
            clients[k].lastActivity = now
            message(k, inbound)
        }
    }

    /// PROTOCOL.md 4, in its order.
    func message(_ k: Int, _ inbound: Inbound) {
        let c = clients[k]
        switch inbound {
        case .invalidJSON:
            clients[k].expectErrors.append("Invalid message format")
        case .noEvent, .heartbeat:
            break
        case .authenticate(let data):
            guard c.phase == .unauthorized else {
                clients[k].expectErrors.append("Already authenticated")
                return
            }
            clients[k].phase = .authenticating
            clients[k].authDeadline = -1
            clients[k].inProgressDeadline = now + 3 * config.options.authTimeout
            timers.schedule(ClientTimer.token(k, .inProgress), at: clients[k].inProgressDeadline)
            clients[k].authData = data
            clients[k].expectHooks.append(.authenticate(client: k, data: data))
        case .join, .leave, .custom, .app:
            guard c.phase == .authenticated else {
                clients[k].expectErrors.append("Not authenticated")
                return
            }
            switch inbound {
            case .join(let data):
                var rooms: [String] = []
                for case .string(let name) in data?["rooms"]?.arrayValue ?? [] {
                    let length = name.utf16.count
                    if length >= 1, length <= 256, !name.hasPrefix("ws:"), !rooms.contains(name) { rooms.append(name) }
                }
                if !rooms.isEmpty, config.hooks.validateRoomConfigured {
                    clients[k].expectHooks.append(.validateRoom(client: k, clientID: c.id ?? "?", userID: c.userID, rooms: rooms))
                }
            case .leave(let data):
                for case .string(let name) in data?["rooms"]?.arrayValue ?? [] {
                    if name == c.id { clients[k].ownRoom = false }
                    clients[k].rooms.remove(name)
                }
            case .app(let target, let tag):
                appMessage(from: k, target, tag)
            default:
                break
            }
        }
    }

    /// The app's messageHandler routing (AppHooks.handleMessage), predicted. It runs on the
    /// sender's loop: what it sends is done there now and handed to the server's other loops.
    func appMessage(from k: Int, _ target: Target, _ tag: Tag) {
        let s = clients[k].server
        let origin = clients[k].loop
        // Once `Server.shutdown()` was called every API call throws, also from a loop that has
        // not begun shutting down yet (with several loops it begins a turn later): nothing is sent.
        guard world?.shutdownRequested[s] != true else { return }
        switch target {
        case .echo:
            expect(k, tag, "echo")
        case .broadcast:
            route(.send(nil), server: s, origin: origin, tag: tag, event: "broadcast")
        case .room(let room):
            route(.send(room), server: s, origin: origin, tag: tag, event: "room-message")
        case .client(let id):
            route(.send(id), server: s, origin: origin, tag: tag, event: "client-message")
        case .user(let user):
            route(.toUser(user), server: s, origin: origin, tag: tag, event: "user-message")
            route(.publish(type: "user", target: user, exclude: []), server: s, origin: origin, tag: tag, event: "user-message")
        }
    }

    func roomMembers(_ loop: Int, _ room: String) -> [Int] {
        authenticated[loop].filter { clients[$0].rooms.contains(room) || (clients[$0].ownRoom && clients[$0].id == room) }
    }

    func userMembers(_ loop: Int, _ user: String) -> [Int] {
        authenticated[loop].filter { clients[$0].userID == user }
    }

    func expect(_ k: Int, _ tag: Tag, _ event: String) {
        touch(k)
        if clients[k].expectDeliveries[tag] != nil { problem("model: c\(k) expects \(tag) twice in one event") }
        clients[k].expectDeliveries[tag] = (event, config.options.requireEncryption && clients[k].encrypted && event != "echo")
    }

    func expectError(_ k: Int, _ message: String) {
        touch(k)
        clients[k].expectErrors.append(message)
    }

    func expectPublish(_ publish: Publish) { pendingPublishes.append(publish) }

    // MARK: - Reconciliation

    /// Every write, hook call and publish of an event happens within it.
    func endOfEvent() {
        if let loop = holding {
            // A hand-off or app post: its frames are written at the loop's flush, reconciled then.
            held[loop] += touched
            touched.removeAll(keepingCapacity: true)
            holding = nil
        }
        for k in touched {
            touchedFlags[k] = false
            var c = clients[k]
            // Over the limit now means over it at the engine's check too: within an event the
            // send buffer only grows (drains are events of their own).
            let excused = c.overLimitEvent == event || world?.isOverLimit(client: k) == true
            var missing: [String] = []
            missing += c.expectErrors.map { "error \"\($0)\"" }
            if c.expectConnected != nil { missing.append("`connected`") }
            missing += c.expectDeliveries.sorted { $0.key.description < $1.key.description }.map { "`\($0.value.event)` \($0.key)" }
            if !missing.isEmpty {
                if excused {
                    world?.stats.excusedLosses += missing.count
                    // Closed for backpressure in this event: the engine counts the messages it
                    // dropped before the close, at least the one that closed it, not those due
                    // to a client already gone.
                    if c.backpressureClosed == event { world?.stats.excusedUncounted += missing.count - 1 }
                } else {
                    problem("c\(k) never got \(missing.joined(separator: ", ")) (phase \(c.phase))")
                }
            }
            if !c.expectHooks.isEmpty { problem("c\(k): hooks not called: \(c.expectHooks)") }
            if c.expectPongs > 0 { problem("c\(k): \(c.expectPongs) ping(s) not answered") }
            c.expectPongs = 0
            if !c.expectHTTP.isEmpty { problem("c\(k): HTTP \(c.expectHTTP) not answered") }
            if let close = c.expectClose, !close.batched, !close.timed, !c.aborted {
                problem("c\(k) never got close \(close.text) (phase \(c.phase))")
                c.expectClose = nil
            }
            c.expectErrors = []
            c.expectConnected = nil
            c.expectDeliveries = [:]
            c.expectHooks = []
            c.expectHTTP = []
            clients[k] = c
        }
        touched.removeAll(keepingCapacity: true)
        for publish in pendingPublishes {
            problem("S\(publish.server) never published \(publish.tag) on \(publish.channel)")
        }
        pendingPublishes.removeAll()
        if !timedCloses.isEmpty {
            let time = now
            timedCloses.removeAll { k in
                guard let close = clients[k].expectClose, close.timed else { return true }
                guard (world?.queue.nextTime ?? .max) > close.at || time > close.at else { return false }
                if !clients[k].aborted { problem("c\(k) never got close \(close.text) due at \(close.at) (phase \(clients[k].phase))") }
                clients[k].expectClose = nil
                return true
            }
        }
        event += 1
    }

    /// After the run: every client gone, every close sent, callbacks exactly once.
    func finish() {
        advance()
        finishLoops()
        for c in clients {
            if c.phase != .closed && c.phase != .refused {
                problem("c\(c.index) still \(c.phase) at S\(c.server) at the end")
            }
            if let close = c.expectClose, !c.aborted { problem("c\(c.index) never got close \(close.text)") }
            // clientConnectedFn once per admitted client; clientDisconnectedFn once per client the
            // kernel knew, whatever state it left in (PROTOCOL.md 6).
            let connected = c.admitted ? 1 : 0
            let disconnected = c.opened ? 1 : 0
            if c.connectedCalls != connected { problem("clientConnectedFn ran \(c.connectedCalls)x for c\(c.index) (expected \(connected))") }
            if c.disconnectedCalls != disconnected { problem("clientDisconnectedFn ran \(c.disconnectedCalls)x for c\(c.index) (expected \(disconnected))") }
        }
    }
}

/// The model's per-client timers, as tokens of the shared `TimerHeap`: one auth and one
/// in-progress deadline per client (scheduling one again replaces it).
enum ClientTimer {
    enum Kind { case auth, inProgress }

    static func token(_ client: Int, _ kind: Kind) -> UInt64 {
        UInt64(client) << 1 | (kind == .auth ? 0 : 1)
    }

    static func decode(_ token: UInt64) -> (client: Int, kind: Kind) {
        (Int(token >> 1), token & 1 == 0 ? .auth : .inProgress)
    }
}
