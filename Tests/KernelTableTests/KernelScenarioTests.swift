import SwitchboardJSON
import Testing
@testable import SwitchboardKernel

/// One line per step: feed an input, expect the effects (postgres-nio style, no loop, no mocks).
@Suite struct KernelScenarioTests {
    struct Machine {
        var kernel: Kernel
        var now = Now(monotonic: 10_000, wall: 1_764_108_000_123)  // 2025-11-25T22:00:00.123Z

        init(_ configure: (inout KernelSettings) -> Void = { _ in }) {
            var settings = KernelSettings()
            configure(&settings)
            kernel = Kernel(settings: settings, serverID: "me")
        }

        mutating func feed(_ input: KernelInput) -> [Effect] {
            var out: [Effect] = []
            kernel.handle(input, now: now, into: &out)
            return out
        }
        mutating func text(_ handle: UInt64, _ json: String) -> [Effect] {
            feed(.message(ClientHandle(handle), Array(json.utf8)))
        }
        /// Opens client `handle` and authenticates it as `user`; returns the effects of the answer.
        mutating func connect(_ handle: UInt64, user: String?) -> [Effect] {
            _ = feed(.opened(ClientHandle(handle), id: "c\(handle)"))
            let call = text(handle, #"{"event":"authenticate","data":{"token":"t"}}"#)
            guard case .callAuthenticate(_, let attempt, _)? = call.last else { return [] }
            return feed(.authenticateReturned(ClientHandle(handle), attempt, .ok(userID: user, metadata: nil)))
        }
    }

    static func sent(_ effects: [Effect]) -> [String] {
        effects.compactMap {
            switch $0 {
            case .send(let handle, let payload): "\(handle.rawValue) \(payload)"
            case .fanOut(let handles, let payload): "\(handles.map(\.rawValue)) \(payload)"
            case .close(let handle, let code): "\(handle.rawValue) close \(code.code) \(code.reason)"
            default: nil
            }
        }
    }

    @Test func openArmsTheAuthTimer() {
        var m = Machine()
        #expect(m.feed(.opened(ClientHandle(1), id: "c1")) == [
            .armTimer(TimerID(.client(ClientHandle(1), .auth), generation: 1), deadline: 15_000),
        ])
    }

    @Test func authenticateReplacesTheTimerAndCallsTheHook() {
        var m = Machine()
        _ = m.feed(.opened(ClientHandle(1), id: "c1"))
        #expect(m.text(1, #"{"event":"authenticate","data":{"token":"x"}}"#) == [
            .cancelTimer(TimerID(.client(ClientHandle(1), .auth), generation: 1)),
            .armTimer(TimerID(.client(ClientHandle(1), .authInProgress), generation: 2), deadline: 25_000),
            .callAuthenticate(ClientHandle(1), AttemptID(1), data: ["token": "x"]),
        ])
    }

    @Test func successSendsConnectedAndJoinsDefaultRooms() {
        var m = Machine()
        let effects = m.connect(1, user: "alice")
        #expect(Self.sent(effects) == [#"1 {"event":"connected","data":{"id":"c1","userId":"alice","time":"2025-11-25T22:00:00.123Z"}}"#])
        #expect(effects.contains(.callClientConnected(ClientHandle(1), clientID: "c1", userID: "alice", metadata: nil)))
        #expect(m.kernel.client(id: "c1")?.rooms == ["c1", "ws-default", "ws-notification"])
        #expect(m.kernel.clients(ofUser: "alice") == ["c1"])
    }

    @Test func anonymousConnectedHasNoUserId() {
        var m = Machine()
        #expect(Self.sent(m.connect(1, user: nil)) == [#"1 {"event":"connected","data":{"id":"c1","time":"2025-11-25T22:00:00.123Z"}}"#])
    }

    @Test func rejectionSendsTheErrorThenCloses4003() {
        var m = Machine()
        _ = m.feed(.opened(ClientHandle(1), id: "c1"))
        _ = m.text(1, #"{"event":"authenticate"}"#)
        let effects = m.feed(.authenticateReturned(ClientHandle(1), AttemptID(1), .rejected))
        #expect(Self.sent(effects) == [
            #"1 {"event":"error","data":{"message":"Authentication failed"}}"#,
            "1 close 4003 Authentication failed",
        ])
        #expect(effects.last == .released(ClientHandle(1)))
        #expect(m.kernel.clientCount == 0)
    }

    @Test func aStaleAnswerIsDropped() {
        var m = Machine()
        _ = m.feed(.opened(ClientHandle(1), id: "c1"))
        _ = m.text(1, #"{"event":"authenticate"}"#)
        #expect(Self.sent(m.feed(.authenticateReturned(ClientHandle(1), AttemptID(99), .rejected))) == [])
        #expect(m.kernel.client(ClientHandle(1))?.state == .authenticating)
    }

    @Test func nothingButErrorBeforeConnected() {
        var m = Machine()
        _ = m.feed(.opened(ClientHandle(1), id: "c1"))
        _ = m.connect(2, user: "bob")
        #expect(Self.sent(m.text(1, #"{"event":"chat"}"#)) == [#"1 {"event":"error","data":{"message":"Not authenticated"}}"#])
        let broadcast = m.feed(.deliver(.broadcast(event: "news", data: nil, exclude: [])))
        #expect(Self.sent(broadcast) == [#"[2] {"event":"news"}"#])
        #expect(Self.sent(m.feed(.deliver(.toClient(id: "c1", event: "direct", data: nil)))) == [])
    }

    @Test func joinFiltersNamesThenAsksTheHook() {
        var m = Machine()
        _ = m.connect(1, user: "alice")
        let long = String(repeating: "x", count: 257)
        let effects = m.text(1, #"{"event":"join","data":{"rooms":["ws:x","","\#(long)",7,"a","a","b"]}}"#)
        #expect(effects.contains(.callValidateRoom(ClientHandle(1), AttemptID(2), clientID: "c1", userID: "alice", rooms: ["a", "b"])))
        _ = m.feed(.validateRoomReturned(ClientHandle(1), AttemptID(2), .ok(["a", "ws:sneaky"])))
        #expect(m.kernel.client(id: "c1")?.rooms == ["a", "c1", "ws-default", "ws-notification"])
        _ = m.text(1, #"{"event":"leave","data":{"rooms":["a","never"]}}"#)
        #expect(m.kernel.client(id: "c1")?.rooms == ["c1", "ws-default", "ws-notification"])
    }

    @Test func joinWithoutValidateRoomJoinsNothing() {
        var m = Machine { $0.validateRoomConfigured = false }
        _ = m.connect(1, user: nil)
        #expect(m.text(1, #"{"event":"join","data":{"rooms":["a"]}}"#).allSatisfy { if case .callValidateRoom = $0 { false } else { true } })
        #expect(m.kernel.client(id: "c1")?.rooms.contains("a") == false)
    }

    @Test func heartbeatSweepClosesOnlyOverdueClients() {
        var m = Machine { $0.heartbeatTimeout = 1000; $0.heartbeatInterval = 500 }
        _ = m.feed(.started)
        _ = m.connect(1, user: nil)
        _ = m.connect(2, user: nil)
        m.now.monotonic += 800
        _ = m.text(2, #"{"event":"heartbeat"}"#)
        m.now.monotonic += 300
        let effects = m.feed(.timerFired(TimerID(.server(.heartbeatSweep), generation: 1)))
        #expect(Self.sent(effects) == ["1 close 4002 Heartbeat timeout"])
        #expect(m.kernel.client(id: "c2") != nil)
    }

    @Test func requireEncryptionWithoutHandshakeCloses4004WithoutError() {
        var m = Machine { $0.requireEncryption = true; $0.handshakeConfigured = false }
        let effects = m.connect(1, user: "u")
        #expect(Self.sent(effects) == ["1 close 4004 Encryption required"])
    }

    @Test func encryptedClientsGetTheTransformerAndConnectedInPlain() {
        var m = Machine { $0.requireEncryption = true; $0.outboundTransformerConfigured = true }
        let handshake = m.connect(1, user: "u")
        guard case .callHandshake(_, let attempt, _, _, let data)? = handshake.last else {
            Issue.record("no handshake call: \(handshake)")
            return
        }
        #expect(data == ["token": "t"])
        let effects = m.feed(.handshakeReturned(ClientHandle(1), attempt, .ok(serverPublicKey: "K", salt: "S")))
        #expect(Self.sent(effects) == [#"1 {"event":"connected","data":{"id":"c1","userId":"u","time":"2025-11-25T22:00:00.123Z","serverPublicKey":"K","salt":"S"}}"#])
        _ = m.connect(2, user: nil)  // a plain-text client would also need the handshake; it stays pending
        let broadcast = m.feed(.deliver(.broadcast(event: "news", data: 1, exclude: [])))
        #expect(broadcast == [.sendTransformed(ClientHandle(1), event: "news", data: 1)])
    }

    @Test func roomDeliveryIsEncodedOnceAndHonoursExclude() {
        var m = Machine()
        for handle in 1...3 { _ = m.connect(UInt64(handle), user: nil) }
        let effects = m.feed(.deliver(.toRoom(room: "ws-default", event: "r", data: nil, exclude: ["c2"])))
        #expect(Self.sent(effects) == [#"[1, 3] {"event":"r"}"#])
    }

    @Test func sendPublishesAndDeliversByDestination() {
        var m = Machine()
        _ = m.connect(1, user: nil)
        #expect(m.feed(.deliver(.send(destination: "elsewhere", topic: "t", data: nil))) == [], "no data: nothing")
        #expect(m.feed(.deliver(.send(destination: "c1", topic: "", data: 1))) == [], "no topic: nothing")
        let toRoom = m.feed(.deliver(.send(destination: "elsewhere", topic: "t", data: .null)))
        #expect(toRoom == [.publish(channel: "ws:room:elsewhere",
                                    message: Array(#"{"serverId":"me","type":"room","target":"elsewhere","event":"t","data":null}"#.utf8))])
        let toClient = m.feed(.deliver(.send(destination: "c1", topic: "t", data: 2)))
        #expect(Self.sent(toClient) == [#"1 {"event":"t","data":2}"#])
        #expect(toClient.last == .publish(channel: "ws:client:c1",
                                          message: Array(#"{"serverId":"me","type":"client","target":"c1","event":"t","data":2}"#.utf8)))
    }

    @Test func busMessagesFromOthersAreDeliveredOwnAndMalformedDropped() {
        var m = Machine()
        _ = m.connect(1, user: "alice")
        let other = #"{"serverId":"them","type":"user","target":"alice","event":"dm","data":{"x":1}}"#
        #expect(Self.sent(m.feed(.busMessage(channel: "ws:user:alice", message: Array(other.utf8)))) == [#"1 {"event":"dm","data":{"x":1}}"#])
        let own = #"{"serverId":"me","type":"broadcast","event":"b","data":1}"#
        #expect(m.feed(.busMessage(channel: "ws:broadcast", message: Array(own.utf8))) == [])
        let bad = m.feed(.busMessage(channel: "ws:broadcast", message: Array("{".utf8)))
        guard case .log(.warning, let text, nil)? = bad.first else {
            Issue.record("expected a warning, got \(bad)")
            return
        }
        #expect(text.contains("malformed"))
    }

    @Test func shutdownClosesEveryoneWith1001AndCallsDisconnected() {
        var m = Machine()
        _ = m.feed(.started)
        _ = m.connect(1, user: "a")
        _ = m.feed(.opened(ClientHandle(2), id: "c2"))
        let effects = m.feed(.shutdown)
        #expect(Self.sent(effects) == ["1 close 1001 Server shutting down", "2 close 1001 Server shutting down"])
        #expect(effects.contains(.callClientDisconnected(ClientHandle(1), clientID: "c1", userID: "a")))
        #expect(effects.contains(.callClientDisconnected(ClientHandle(2), clientID: "c2", userID: nil)))
        #expect(m.kernel.clientCount == 0)
    }

    /// PROTOCOL.md 6: clientDisconnectedFn runs for every disconnect, in any state, after the
    /// client left every index; userId is absent when authenticateFn named none.
    @Test func everyDisconnectCallsClientDisconnected() {
        var rejected = Machine()
        _ = rejected.feed(.opened(ClientHandle(1), id: "c1"))
        _ = rejected.text(1, #"{"event":"authenticate"}"#)
        var effects = rejected.feed(.authenticateReturned(ClientHandle(1), AttemptID(1), .rejected))
        #expect(effects.suffix(2) == [.callClientDisconnected(ClientHandle(1), clientID: "c1", userID: nil),
                                      .released(ClientHandle(1))])

        var timedOut = Machine()
        _ = timedOut.feed(.opened(ClientHandle(1), id: "c1"))
        timedOut.now.monotonic += 5000
        effects = timedOut.feed(.timerFired(TimerID(.client(ClientHandle(1), .auth), generation: 1)))
        #expect(Self.sent(effects) == ["1 close 4001 Authentication timeout"])
        #expect(effects.contains(.callClientDisconnected(ClientHandle(1), clientID: "c1", userID: nil)))

        var left = Machine()
        _ = left.feed(.opened(ClientHandle(1), id: "c1"))
        #expect(left.feed(.closed(ClientHandle(1))) == [
            .cancelTimer(TimerID(.client(ClientHandle(1), .auth), generation: 1)),
            .callClientDisconnected(ClientHandle(1), clientID: "c1", userID: nil),
            .released(ClientHandle(1)),
        ])

        var handshake = Machine { $0.requireEncryption = true; $0.handshakeConfigured = true }
        _ = handshake.feed(.opened(ClientHandle(1), id: "c1"))
        _ = handshake.text(1, #"{"event":"authenticate"}"#)
        _ = handshake.feed(.authenticateReturned(ClientHandle(1), AttemptID(1), .ok(userID: "u", metadata: nil)))
        effects = handshake.feed(.handshakeReturned(ClientHandle(1), AttemptID(2), .rejected))
        #expect(Self.sent(effects).last == "1 close 4004 Encryption required")
        #expect(effects.contains(.callClientDisconnected(ClientHandle(1), clientID: "c1", userID: "u")))
        #expect(handshake.kernel.clientCount == 0)
    }

    @Test func floodingBeforeConnectedCloses4008WhenLimited() {
        var m = Machine { $0.maxMessagesBeforeAuth = 2 }
        _ = m.feed(.opened(ClientHandle(1), id: "c1"))
        #expect(Self.sent(m.text(1, #"{"event":"heartbeat"}"#)) == [])
        #expect(Self.sent(m.text(1, #"{"event":"chat"}"#)) == [#"1 {"event":"error","data":{"message":"Not authenticated"}}"#])
        #expect(Self.sent(m.text(1, #"{"event":"heartbeat"}"#)) == ["1 close 4008 Too many messages before authentication"])
        #expect(m.kernel.clientCount == 0)
        var unlimited = Machine()
        _ = unlimited.feed(.opened(ClientHandle(1), id: "c1"))
        for _ in 0..<100 { _ = unlimited.text(1, #"{"event":"heartbeat"}"#) }
        #expect(unlimited.kernel.clientCount == 1)
    }

    @Test func iso8601MatchesJavaScript() {
        #expect(iso8601(unixMilliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(iso8601(unixMilliseconds: 951_782_400_000) == "2000-02-29T00:00:00.000Z")
        #expect(iso8601(unixMilliseconds: -1) == "1969-12-31T23:59:59.999Z")
        #expect(iso8601(unixMilliseconds: 4_102_444_799_999) == "2099-12-31T23:59:59.999Z")
        // Outside 0...9999 JavaScript writes a sign and six digits.
        #expect(iso8601(unixMilliseconds: 253_402_300_800_000) == "+010000-01-01T00:00:00.000Z")
        #expect(iso8601(unixMilliseconds: -62_198_755_200_000) == "-000001-01-01T00:00:00.000Z")
        #expect(iso8601(unixMilliseconds: -62_167_219_200_000) == "0000-01-01T00:00:00.000Z")
    }
}

/// Every sequence of up to four inputs for one client, from a fresh kernel (exhaustigen-style):
/// the invariants hold after each step and a closed client never hears anything again.
@Suite struct ExhaustiveSequenceTests {
    static let alphabet: [(String, KernelInput?)] = [
        ("authenticate", .message(ClientHandle(1), Array(#"{"event":"authenticate","data":{"token":"t"}}"#.utf8))),
        ("join", .message(ClientHandle(1), Array(#"{"event":"join","data":{"rooms":["r"]}}"#.utf8))),
        ("custom", .message(ClientHandle(1), Array(#"{"event":"chat"}"#.utf8))),
        ("garbage", .message(ClientHandle(1), Array("{".utf8))),
        ("heartbeat", .message(ClientHandle(1), Array(#"{"event":"heartbeat"}"#.utf8))),
        ("answer-ok", nil), ("answer-rejected", nil), ("answer-threw", nil),
        ("fire-timers", nil), ("closed", .closed(ClientHandle(1))), ("shutdown", .shutdown),
        ("broadcast", .deliver(.broadcast(event: "b", data: nil, exclude: []))),
    ]

    @Test(arguments: [false, true])
    func everySequenceUpToFour(requireEncryption: Bool) {
        var settings = KernelSettings()
        settings.requireEncryption = requireEncryption
        let n = Self.alphabet.count
        var sequences = 0
        for length in 1...4 {
            var counter = Array(repeating: 0, count: length)
            while true {
                run(counter, settings: settings)
                sequences += 1
                var position = length - 1
                while position >= 0 {
                    counter[position] += 1
                    if counter[position] < n { break }
                    counter[position] = 0
                    position -= 1
                }
                if position < 0 { break }
            }
        }
        #expect(sequences == n + n * n + n * n * n + n * n * n * n)
    }

    func run(_ sequence: [Int], settings: KernelSettings) {
        var kernel = Kernel(settings: settings, serverID: "me")
        var now = Now(monotonic: 0, wall: 0)
        var out: [Effect] = []
        var armed: [TimerID: Int64] = [:]
        var lastCall: (attempt: AttemptID, hook: Hook)?
        var closed = false
        var connected = false
        var disconnectCalls = 0
        let client = ClientHandle(1)
        kernel.handle(.opened(client, id: "c1"), now: now, into: &out)
        for case .armTimer(let timer, let deadline) in out { armed[timer] = deadline }
        let names = sequence.map { Self.alphabet[$0].0 }
        for index in sequence {
            var input = Self.alphabet[index].1
            let name = Self.alphabet[index].0
            if name.hasPrefix("answer-") {
                guard let call = lastCall else { continue }
                switch (call.hook, name) {
                case (.authenticate, "answer-ok"): input = .authenticateReturned(client, call.attempt, .ok(userID: "u", metadata: nil))
                case (.authenticate, "answer-rejected"): input = .authenticateReturned(client, call.attempt, .rejected)
                case (.authenticate, _): input = .authenticateReturned(client, call.attempt, .threw("x"))
                case (.handshake, "answer-ok"): input = .handshakeReturned(client, call.attempt, .ok(serverPublicKey: "k", salt: "s"))
                case (.handshake, "answer-rejected"): input = .handshakeReturned(client, call.attempt, .rejected)
                case (.handshake, _): input = .handshakeReturned(client, call.attempt, .threw("x"))
                case (_, "answer-threw"): input = .validateRoomReturned(client, call.attempt, .threw("x"))
                default: input = .validateRoomReturned(client, call.attempt, .ok(["r"]))
                }
            }
            if name == "fire-timers" {
                guard let (timer, deadline) = armed.min(by: { $0.value < $1.value }) else { continue }
                now.monotonic = deadline
                armed[timer] = nil
                input = .timerFired(timer)
            }
            guard let input else { continue }
            out.removeAll()
            kernel.handle(input, now: now, into: &out)
            for effect in out {
                switch effect {
                case .armTimer(let timer, let deadline): armed[timer] = deadline
                case .cancelTimer(let timer):
                    #expect(armed.removeValue(forKey: timer) != nil, "\(names): cancelled an unarmed timer")
                case .callAuthenticate(_, let attempt, _): lastCall = (attempt, .authenticate)
                case .callHandshake(_, let attempt, _, _, _): lastCall = (attempt, .handshake)
                case .callValidateRoom(_, let attempt, _, _, _): lastCall = (attempt, .validateRoom)
                case .send(_, let payload), .fanOut(_, let payload):
                    let text = payload.description
                    #expect(!closed, "\(names): sent after close: \(text)")
                    if text.hasPrefix(#"{"event":"connected""#) { connected = true }
                    #expect(connected || text.hasPrefix(#"{"event":"error""#), "\(names): \(text) before connected")
                case .close:
                    #expect(!closed, "\(names): closed twice")
                    closed = true
                case .callClientDisconnected:
                    disconnectCalls += 1
                    #expect(kernel.client(client) == nil, "\(names): clientDisconnectedFn before the release")
                default: break
                }
            }
            // Every way out (close, reject, timeout, shutdown) calls clientDisconnectedFn once.
            #expect(disconnectCalls == (kernel.clientCount == 0 ? 1 : 0), "\(names): \(disconnectCalls) disconnect calls")
            if case .closed = input { closed = true }
            #expect(kernel.invariantViolations() == [], "\(names)")
        }
        if kernel.clientCount == 0 {
            #expect(armed.keys.allSatisfy { if case .client = $0.owner { false } else { true } }, "\(names): timers leaked")
        }
    }
}

/// A reply to one client reuses the previous reply's payload once nothing holds it, and never
/// while something does (a driver still writing it, an effect kept by the caller).
@Suite struct ReplyPayloadReuseTests {
    static func reply(_ m: inout KernelScenarioTests.Machine, _ event: String, _ data: JSONValue) -> [Effect] {
        m.feed(.deliver(.toClient(id: "c1", event: event, data: data)))
    }

    static func identity(_ effects: [Effect]) -> ObjectIdentifier? {
        if case .send(_, let payload)? = effects.last { return ObjectIdentifier(payload) }
        return nil
    }

    @Test func aReleasedReplyIsRefilledAndAHeldOneIsNot() {
        var m = KernelScenarioTests.Machine()
        _ = m.connect(1, user: "u")
        var held = ReplyPayloadReuseTests.reply(&m, "a", 1)
        // Still held: the next reply gets its own payload, and the held one is unchanged.
        var effects = ReplyPayloadReuseTests.reply(&m, "b", 2)
        #expect(ReplyPayloadReuseTests.identity(held) != ReplyPayloadReuseTests.identity(effects))
        #expect(KernelScenarioTests.sent(held) == [#"1 {"event":"a","data":1}"#])
        #expect(KernelScenarioTests.sent(effects) == [#"1 {"event":"b","data":2}"#])
        // Released: the same object carries the next reply.
        let released = ReplyPayloadReuseTests.identity(effects)
        effects = []
        effects = ReplyPayloadReuseTests.reply(&m, "c", "x")
        #expect(ReplyPayloadReuseTests.identity(effects) == released)
        #expect(KernelScenarioTests.sent(effects) == [#"1 {"event":"c","data":"x"}"#])
        #expect(KernelScenarioTests.sent(held) == [#"1 {"event":"a","data":1}"#])
        held = []
    }
}
