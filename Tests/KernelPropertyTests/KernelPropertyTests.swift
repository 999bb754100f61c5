import PropertyBased
import SwitchboardJSON
import Testing
@testable import SwitchboardKernel

/// Random interleavings of many clients' messages, hook answers, timer firings, transport
/// events, bus messages and deliveries, checked against the kernel's invariants after every
/// step. Each op is an integer (so the shrinker can drop and shrink them); `Driver` decodes it.
@Suite struct KernelPropertyTests {
    static let ops = Gen.int(in: 0...9_999_999).array(of: 1...250)

    @Test func invariantsHoldForRandomInterleavings() async {
        await propertyCheck(count: 300, input: Self.ops) { ops in
            var driver = FakeDriver()
            for op in ops { driver.apply(op) }
            driver.closeEverything()
            #expect(driver.violations == [], "after \(ops.count) ops")
        }
    }

    /// Issue 18: tokens that expire (some at once) and refreshes (some for another user, some
    /// stale) among everything else.
    @Test func expiringTokensAndRefreshesKeepInvariants() async {
        var settings = KernelSettings()
        settings.refreshConfigured = true
        settings.validateRoomConfigured = true
        await propertyCheck(count: 150, input: Self.ops) { ops in
            var driver = FakeDriver(settings: settings)
            for op in ops { driver.apply(op) }
            driver.closeEverything()
            #expect(driver.violations == [])
        }
    }

    @Test func encryptionAndTightLimitsKeepInvariants() async {
        var settings = KernelSettings()
        settings.requireEncryption = true
        settings.outboundTransformerConfigured = true
        settings.closeOnBackpressure = true
        settings.validateRoomConfigured = false
        settings.maxMessagesBeforeAuth = 3
        await propertyCheck(count: 150, input: Self.ops) { ops in
            var driver = FakeDriver(settings: settings)
            for op in ops { driver.apply(op) }
            driver.closeEverything()
            #expect(driver.violations == [])
        }
    }

    @Test func sameOpsGiveSameEffects() async {
        await propertyCheck(count: 100, input: Self.ops) { ops in
            var first = FakeDriver()
            var second = FakeDriver()
            for op in ops {
                first.apply(op)
                second.apply(op)
            }
            #expect(first.log == second.log)
        }
    }

    @Test func shutdownClosesEveryClientExactlyOnceWith1001() async {
        await propertyCheck(count: 100, input: Self.ops) { ops in
            var driver = FakeDriver()
            for op in ops { driver.apply(op) }
            let live = driver.kernel.clientHandles
            driver.step(.shutdown)
            for handle in live {
                #expect(driver.closes[handle] == .serverShutdown, "\(handle) closed with \(String(describing: driver.closes[handle]))")
            }
            #expect(driver.kernel.clientCount == 0)
            #expect(driver.violations == [])
        }
    }
}

/// A driver for the kernel alone: it keeps what a real driver would (armed timers, pending
/// hook calls, what each client received) and checks the promises of PROTOCOL.md.
struct FakeDriver {
    var kernel: Kernel
    var now = Now(monotonic: 1_000, wall: 1_764_000_000_000)
    var log: [Effect] = []
    var violations: [String] = []
    var nextHandle: UInt64 = 1
    var armed: [TimerID: Int64] = [:]
    var pending: [(handle: ClientHandle, attempt: AttemptID, hook: Hook)] = []
    var answered: [(handle: ClientHandle, attempt: AttemptID, hook: Hook)] = []
    var connected: Set<ClientHandle> = []
    var closes: [ClientHandle: CloseCode] = [:]
    var transportClosed: Set<ClientHandle> = []

    init(settings: KernelSettings = KernelSettings()) {
        kernel = Kernel(settings: settings, serverID: "server-under-test")
        step(.started)
    }

    static let messages: [String] = [
        "not json", "null", "5", "[]", #"{"event":5}"#, #"{"event":""}"#,
        #"{"event":"heartbeat"}"#,
        #"{"event":"authenticate","data":{"token":"user:alice"}}"#,
        #"{"event":"authenticate","data":{"token":"anon"}}"#,
        #"{"event":"authenticate"}"#,
        #"{"event":"join","data":{"rooms":["public-a","ws:no","",5,"public-b"]}}"#,
        #"{"event":"join","data":{"rooms":"not a list"}}"#,
        #"{"event":"join","data":null}"#,
        #"{"event":"leave","data":{"rooms":["public-a","never-joined","ws-default"]}}"#,
        #"{"event":"leave","data":{"rooms":7}}"#,
        #"{"event":"chat","data":{"text":"hi"},"id":"m1"}"#,
        #"{"event":"encrypted","data":{"iv":"x","ct":"y"}}"#,
        #"{"event":"refresh","data":{"token":"user:alice"}}"#,
        #"{"event":"refresh"}"#,
    ]

    mutating func step(_ input: KernelInput) {
        var out: [Effect] = []
        kernel.handle(input, now: now, into: &out)
        for effect in out { observe(effect) }
        log.append(contentsOf: out)
        violations.append(contentsOf: kernel.invariantViolations())
        let believed = kernel.armedTimers
        if believed != Set(armed.keys) {
            violations.append("kernel believes \(believed.count) timers armed, driver has \(armed.count)")
        }
    }

    mutating func observe(_ effect: Effect) {
        func received(_ handle: ClientHandle, _ event: String) {
            if closes[handle] != nil || transportClosed.contains(handle) {
                violations.append("\(handle) received \(event) after close")
            }
            if !connected.contains(handle) && event != "error" && event != "connected" {
                violations.append("\(handle) received \(event) before connected")
            }
            if event == "connected" {
                if connected.contains(handle) { violations.append("\(handle) got connected twice") }
                connected.insert(handle)
            }
        }
        switch effect {
        case .send(let handle, let payload):
            received(handle, Self.event(of: payload))
        case .fanOut(let handles, let payload):
            let event = Self.event(of: payload)
            if Set(handles).count != handles.count { violations.append("duplicate recipients in a fan-out") }
            for handle in handles { received(handle, event) }
        case .sendTransformed(let handle, let event, _):
            if kernel.client(handle)?.encrypted != true { violations.append("\(handle) transformed but not encrypted") }
            received(handle, event)
        case .close(let handle, let code):
            if closes[handle] != nil { violations.append("\(handle) closed twice") }
            if transportClosed.contains(handle) { violations.append("\(handle) closed after its transport closed") }
            if code.origin != .kernel { violations.append("kernel used codec close code \(code)") }
            closes[handle] = code
        case .armTimer(let timer, let deadline):
            if armed[timer] != nil { violations.append("\(timer) armed twice") }
            if deadline < now.monotonic { violations.append("\(timer) armed in the past") }
            armed[timer] = deadline
        case .cancelTimer(let timer):
            if armed.removeValue(forKey: timer) == nil { violations.append("cancelled unarmed \(timer)") }
        case .callAuthenticate(let handle, let attempt, _):
            pending.append((handle, attempt, .authenticate))
        case .callHandshake(let handle, let attempt, _, _, _):
            pending.append((handle, attempt, .handshake))
        case .callValidateRoom(let handle, let attempt, _, _, let rooms):
            if rooms.isEmpty || rooms.contains(where: { $0.hasPrefix("ws:") || $0.isEmpty }) {
                violations.append("validateRoom asked with unfiltered rooms \(rooms)")
            }
            pending.append((handle, attempt, .validateRoom))
        case .callRefresh(let handle, let attempt, _, _, _):
            if !connected.contains(handle) { violations.append("\(handle) refresh called before connected") }
            pending.append((handle, attempt, .refresh))
                case .queryPresence(let handle, _, _, _):
            if !connected.contains(handle) { violations.append("\(handle) asked for presence before connected") }
        case .readHistory(let handle, _, _, _):
            if !connected.contains(handle) { violations.append("\(handle) read history before connected") }
        case .queryHistory(let handle, _, _):
            if !connected.contains(handle) { violations.append("\(handle) asked for history before connected") }
        case .callRPC(let handle, _, _, _), .callPublish(let handle, _, _, _, _):
            if !connected.contains(handle) { violations.append("\(handle) rpc or publish called before connected") }
        case .callMessageHandler, .callClientConnected, .callClientDisconnected, .publish, .log, .released, .presenceChanged,
             .appendHistory:
            break
        }
    }

    static func event(of payload: Payload) -> String {
        guard case .object(let object)? = try? JSONValue.parse(payload.bytes), case .string(let event)? = object["event"] else {
            return "<unparseable>"
        }
        return event
    }

    /// Decodes one op. The low digits choose the kind, the rest its parameters.
    mutating func apply(_ op: Int) {
        let kind = op % 16
        let arg = op / 16
        let clients = kernel.clientHandles
        func someClient() -> ClientHandle? { clients.isEmpty ? nil : clients[arg % clients.count] }
        switch kind {
        case 0, 1:
            let handle = ClientHandle(nextHandle)
            nextHandle += 1
            step(.opened(handle, id: "client-\(handle.rawValue)"))
        case 2, 3, 4, 5:
            guard let handle = someClient() else { return }
            step(.message(handle, Array(Self.messages[(arg / 7) % Self.messages.count].utf8)))
        case 6, 7:
            guard !pending.isEmpty else { return }
            let call = pending.remove(at: arg % pending.count)
            answered.append(call)
            step(answer(call, choice: arg / 5))
        case 8:
            // A stale or duplicate answer: replay one already answered.
            guard !answered.isEmpty else { return }
            step(answer(answered[arg % answered.count], choice: arg / 3))
        case 9:
            // Fire the earliest timer, advancing the clock to it.
            guard let (timer, deadline) = armed.min(by: { ($0.value, $0.key.generation) < ($1.value, $1.key.generation) }) else { return }
            now.monotonic = max(now.monotonic, deadline)
            armed[timer] = nil
            step(.timerFired(timer))
        case 10:
            now.monotonic += Int64(arg % 40_000)
            now.wall += Int64(arg % 40_000)
        case 11:
            guard let handle = someClient() else { return }
            transportClosed.insert(handle)
            step(.closed(handle))
        case 12:
            guard let handle = someClient() else { return }
            step(.activity(handle))
        case 13:
            guard let handle = someClient() else { return }
            step(.backpressured(handle))
        case 14:
            let deliveries: [Delivery] = [
                .broadcast(event: "news", data: 1, exclude: clients.prefix(1).map { "client-\($0.rawValue)" }),
                .toRoom(room: "public-a", event: "room", data: nil, exclude: []),
                .toRoom(room: "ws-default", event: "room", data: "x", exclude: ["client-1"]),
                .toUser(userID: "alice", event: "dm", data: true),
                .toClient(id: "client-\(arg % 8)", event: "direct", data: nil),
                .send(destination: nil, topic: "all", data: nil),
                .send(destination: "client-\(arg % 8)", topic: "one", data: nil),
                .send(destination: "public-b", topic: "room", data: nil),
            ]
            step(.deliver(deliveries[(arg / 11) % deliveries.count]))
        default:
            let messages: [String] = [
                #"{"serverId":"other","type":"broadcast","event":"b","data":{}}"#,
                #"{"serverId":"other","type":"room","target":"public-a","event":"r","data":1,"exclude":["client-2"]}"#,
                #"{"serverId":"other","type":"user","target":"alice","event":"u","data":null}"#,
                #"{"serverId":"server-under-test","type":"broadcast","event":"self","data":{}}"#,
                #"{"serverId":"other","type":"room","event":"no target","data":1}"#,
                "garbage",
            ]
            step(.busMessage(channel: "ws:broadcast", message: Array(messages[(arg / 13) % messages.count].utf8)))
        }
    }

    func answer(_ call: (handle: ClientHandle, attempt: AttemptID, hook: Hook), choice: Int) -> KernelInput {
        switch call.hook {
        case .authenticate:
            let outcomes: [AuthOutcome] = [.ok(userID: "alice", metadata: ["role": "member"]), .ok(userID: nil, metadata: nil), .rejected, .threw("boom"),
                                           .ok(userID: "alice", metadata: nil, expiresAt: now.wall + 5_000),
                                           .ok(userID: "alice", metadata: nil, expiresAt: now.wall - 5_000)]
            return .authenticateReturned(call.handle, call.attempt, outcomes[choice % outcomes.count])
        case .refresh:
            let outcomes: [RefreshOutcome] = [.ok(userID: "alice", expiresAt: now.wall + 20_000), .ok(userID: "alice", expiresAt: nil),
                                              .ok(userID: "bob", expiresAt: now.wall + 20_000), .rejected, .threw("boom")]
            return .refreshReturned(call.handle, call.attempt, outcomes[choice % outcomes.count])
        case .handshake:
            let outcomes: [HandshakeOutcome] = [.ok(serverPublicKey: "key", salt: "salt"), .rejected, .threw("boom")]
            return .handshakeReturned(call.handle, call.attempt, outcomes[choice % outcomes.count])
        default:
            let outcomes: [RoomsOutcome] = [.ok(["public-a"]), .ok(["public-b", "ws:sneaky", ""]), .ok([]), .threw("boom")]
            return .validateRoomReturned(call.handle, call.attempt, outcomes[choice % outcomes.count])
        }
    }

    /// Closes every transport: afterwards nothing may be left but the sweep timer.
    mutating func closeEverything() {
        for handle in kernel.clientHandles {
            transportClosed.insert(handle)
            step(.closed(handle))
        }
        if kernel.clientCount != 0 { violations.append("\(kernel.clientCount) client records leaked") }
        let leaked = armed.keys.filter { if case .client = $0.owner { true } else { false } }
        if !leaked.isEmpty { violations.append("timers leaked: \(leaked)") }
    }
}
