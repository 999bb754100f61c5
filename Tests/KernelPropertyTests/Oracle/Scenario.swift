import SwitchboardJSON
import SwitchboardKernel
import TestSupport

/// The oracle draws from TestSupport's SplitMix64, whose sequence depends on the seed alone, in
/// every process and every Swift version (the standard library's `random(in:using:)` makes no
/// such promise): the golden traces stay valid.
extension SeededRandom {
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// What kind of input an op becomes. The op's parameters are resolved when it runs, against
/// the clients, hook calls and timers that exist then (`Harness.input(for:)`), so any
/// subsequence of ops is still a meaningful run: that is what shrinking relies on.
enum OpKind: String, CaseIterable {
    case start, open, message, activity, close, backpressure, answer, staleAnswer, fireTimer, staleTimer
    case advance, deliver, bus, shutdown, disconnect, presence, proxyCall

    /// Relative frequency in generated scenarios.
    var weight: Int {
        switch self {
        case .start, .shutdown, .disconnect, .presence, .proxyCall: 0  // placed by `Scenario`
        case .message: 30
        case .answer: 11
        case .open: 9
        case .fireTimer, .advance, .deliver: 7
        case .bus: 5
        case .staleAnswer: 6
        case .close: 4
        case .activity, .backpressure: 3
        case .staleTimer: 3
        }
    }
}

/// One step of a scenario: a kind and the random bits its parameters are drawn from.
struct Op: Equatable {
    var kind: OpKind
    var bits: UInt64
}

/// Settings and ops drawn from one seed. The same seed gives the same scenario everywhere.
struct Scenario {
    let seed: UInt64
    let settings: KernelSettings
    let ops: [Op]

    init(seed: UInt64, length: Int = 160) {
        var rng = SeededRandom(seed: seed)
        var settings = KernelSettings()
        settings.requireEncryption = rng.chance(50)
        settings.handshakeConfigured = rng.chance(85)
        settings.validateRoomConfigured = rng.chance(70)
        settings.messageHandlerConfigured = rng.chance(80)
        settings.outboundTransformerConfigured = rng.chance(50)
        settings.closeOnBackpressure = rng.chance(40)
        settings.maxMessagesBeforeAuth = rng.chance(30) ? 1 + rng.below(5) : 0
        settings.authTimeout = rng.pick([50, 1_000, 5_000])
        settings.heartbeatInterval = rng.pick([100, 3_000, 30_000])
        settings.heartbeatTimeout = rng.pick([200, 9_000, 90_000])
        settings.defaultRooms = rng.pick([settings.defaultRooms, [], ["lobby"], ["lobby", "a", "lobby"]])

        let kinds = OpKind.allCases.flatMap { Array(repeating: $0, count: $0.weight) }
        var ops = (0..<length).map { _ in Op(kind: rng.pick(kinds), bits: rng.next()) }
        if rng.chance(30) { ops.insert(Op(kind: .shutdown, bits: 0), at: length - rng.below(length / 4)) }  // late, if at all
        if !rng.chance(5) { ops.insert(Op(kind: .start, bits: 0), at: rng.below(6)) }  // sometimes never started
        // The application's disconnects, drawn last so that the ops above stay those of the seed.
        if rng.chance(30) {
            for _ in 0...rng.below(3) { ops.insert(Op(kind: .disconnect, bits: rng.next()), at: rng.below(ops.count + 1)) }
        }
        // Presence, drawn after everything else for the same reason: rooms with presence, and
        // `presence` queries placed among the ops.
        var presenceRooms: [String] = []
        if rng.chance(60) {
            presenceRooms = rng.pick([["lobby"], ["a", "ü-*"], ["*"], ["b", "ws-default", "c*"]])
            for _ in 0..<(4 + rng.below(12)) { ops.insert(Op(kind: .presence, bits: rng.next()), at: rng.below(ops.count + 1)) }
        } else if rng.chance(40) {
            // Presence off: `presence` is a custom event for the messageHandler.
            for _ in 0..<(2 + rng.below(4)) { ops.insert(Op(kind: .presence, bits: rng.next()), at: rng.below(ops.count + 1)) }
        }
        settings.presenceRooms = presenceRooms
        // Drawn after the ops, so that the ops of a seed stayed what they were before refreshFn.
        settings.refreshConfigured = rng.chance(70)
        // The proxy hooks (issue 18), drawn last for the same reason: the rpc and publish hooks,
        // reportJoinFailures, and `rpc`/`publish` messages and answers placed among the ops.
        settings.rpcConfigured = rng.chance(60)
        settings.publishConfigured = rng.chance(60)
        settings.reportJoinFailures = rng.chance(50)
        if rng.chance(60) {
            for _ in 0..<(8 + rng.below(16)) { ops.insert(Op(kind: .proxyCall, bits: rng.next()), at: rng.below(ops.count + 1)) }
        }
        self.ops = ops
        self.settings = settings
        self.seed = seed
    }

    /// One line naming the settings that vary, for reports and golden traces.
    var settingsLine: String {
        let s = settings
        return "requireEncryption \(s.requireEncryption) handshake \(s.handshakeConfigured) validateRoom \(s.validateRoomConfigured)"
            + " messageHandler \(s.messageHandlerConfigured) transformer \(s.outboundTransformerConfigured)"
            + " closeOnBackpressure \(s.closeOnBackpressure) maxMessagesBeforeAuth \(s.maxMessagesBeforeAuth)"
            + " authTimeout \(s.authTimeout) heartbeat \(s.heartbeatInterval)/\(s.heartbeatTimeout)"
            + " defaultRooms \(s.defaultRooms) refresh \(s.refreshConfigured)" + (s.presenceRooms.isEmpty ? "" : " presenceRooms \(s.presenceRooms)")
            + " rpc \(s.rpcConfigured) publish \(s.publishConfigured) reportJoinFailures \(s.reportJoinFailures)"
    }
}

/// Values inputs are made of: messages, room lists, hook answers, deliveries, bus envelopes.
enum Values {
    static let users: [String?] = ["alice", "bob", nil, "carol"]
    /// Room names around every edge of the name filter: reserved prefix, empty, 256/257 UTF-16
    /// units (astral characters count two), a default room, duplicates come from picking twice.
    static let roomNames: [String] = ["a", "b", "lobby", "ws-default", "ws:secret", "", "ü-room", "c1"]
    static let longNames: [String] = [
        String(repeating: "r", count: 256), String(repeating: "r", count: 257), String(repeating: "😀", count: 128),
        String(repeating: "😀", count: 129), String(repeating: "é", count: 256),
    ]
    /// A room name; now and then one at the length limit (they make traces hard to read).
    static func roomName(_ rng: inout SeededRandom) -> String {
        rng.chance(8) ? rng.pick(longNames) : rng.pick(roomNames)
    }
    static let dataValues: [JSONValue?] = [nil, .null, 7, "text", ["k": "v"], ["nested": [1, ["x": true]]], [], 1.5]

    static func roomList(_ rng: inout SeededRandom, ids: [String]) -> [JSONValue] {
        (0..<rng.below(5)).map { _ in
            switch rng.below(10) {
            case 0: 5
            case 1: .null
            case 2: .string(ids.isEmpty ? "c1" : rng.pick(ids))
            default: .string(roomName(&rng))
            }
        }
    }

    /// A client message: invalid JSON, JSON without a usable event, or an envelope of any
    /// event, written canonically or not (spaces, member order, escapes, duplicate keys).
    static func message(_ rng: inout SeededRandom, ids: [String]) -> [UInt8] {
        switch rng.below(100) {
        case 0..<7:
            return rng.pick(["", "not json", "{", #"{"event":"chat""#, "[1,]", #"{"event":"chat"} x"#, "\u{FF}"].map { Array($0.utf8) }
                + [[0xFF, 0xFE], [0x7B, 0x22, 0xC3]])
        case 7..<14:
            return Array(rng.pick(["null", "5", "[]", #""event""#, "{}", #"{"event":5}"#, #"{"event":""}"#, #"{"event":null}"#,
                                   #"{"data":{"event":"x"}}"#, #"{"event":"chat","event":7}"#]).utf8)
        default:
            break
        }
        let event: String
        var data: JSONValue?
        switch rng.below(100) {
        case 0..<15:
            event = "heartbeat"
            data = rng.chance(70) ? nil : [:]
        case 15..<35:
            event = "authenticate"
            data = rng.pick([["token": .string("t\(rng.below(9))")], nil, .null, "token", [:], ["token": "x", "deep": [1, ["a": []]]]])
        case 35..<55, 55..<65:
            event = rng.chance(67) ? "join" : "leave"
            let rooms = JSONValue.array(roomList(&rng, ids: ids))
            data = rng.chance(85) ? ["rooms": rooms] : rng.pick([nil, .null, ["rooms": "a"], ["rooms": 5], rooms])
        case 65..<75:
            event = "refresh"
            data = rng.pick([["token": .string("t\(rng.below(9))")], nil, [:]])
        default:
            event = rng.pick(["chat", "encrypted", "disconnect", "connected", "error", "ünï", "JOIN", "heartbeat "])
            data = rng.pick(dataValues)
        }
        let id: JSONValue? = rng.chance(75) ? nil : rng.pick(["m1", 7, .null, [:]])
        return Array(envelopeText(&rng, event: event, data: data, id: id).utf8)
    }

    static func envelopeText(_ rng: inout SeededRandom, event: String, data: JSONValue?, id: JSONValue?) -> String {
        var eventText = JSONValue.string(event).serialized()
        if event == "heartbeat" || event == "join", rng.chance(15) {
            eventText = "\"\\u00" + String(event.unicodeScalars.first!.value, radix: 16) + event.dropFirst() + "\""
        }
        var members = [("\"event\"", eventText)]
        if let data { members.append(("\"data\"", data.serialized())) }
        if let id { members.append(("\"id\"", id.serialized())) }
        if rng.chance(10) { members.append(("\"other\"", "[1, {\"event\": \"x\"}]")) }
        if rng.chance(15) { members.reverse() }
        if rng.chance(5) { members.insert(("\"event\"", "\"decoy\""), at: 0) }  // the last `event` wins
        let spaced = rng.chance(15)
        let body = members.map { spaced ? "\($0.0) : \($0.1)" : "\($0.0):\($0.1)" }.joined(separator: spaced ? " , " : ",")
        return spaced ? "  {\(body)}\n" : "{\(body)}"
    }
}
