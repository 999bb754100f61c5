import Switchboard

/// A message's identity on the wire: the simulated sender and its sequence number.
struct Tag: Hashable, CustomStringConvertible {
    var from: String
    var seq: Int
    var description: String { "\(from)/\(seq)" }

    var json: JSONValue { ["from": .string(from), "seq": JSONValue(seq)] }

    init(from: String, seq: Int) {
        self.from = from
        self.seq = seq
    }

    /// Reads `{"from": ..., "seq": ...}`.
    init?(_ value: JSONValue?) {
        guard let from = value?["from"]?.stringValue, let seq = value?["seq"]?.numberValue?.int else { return nil }
        self.init(from: from, seq: seq)
    }
}

/// Where a tagged message goes, resolved at send time.
enum Target: Equatable, CustomStringConvertible {
    case broadcast, echo
    case room(String)
    case user(String)
    case client(String)

    var description: String {
        switch self {
        case .broadcast: "broadcast"
        case .echo: "echo"
        case .room(let room): "room:\(room)"
        case .user(let user): "user:\(user)"
        case .client(let id): "client:\(id.prefix(8))"
        }
    }
}

/// What the server receives from a client, as the client meant it (the model never parses it).
enum Inbound {
    case invalidJSON
    case noEvent
    case heartbeat
    case authenticate(JSONValue)
    case join(JSONValue?)
    case leave(JSONValue?)
    case custom(String)
    case app(Target, Tag)
}

/// One complete unit a client sent; the server has it once its last byte arrived.
enum SentItem {
    case upgrade(UpgradeStyle)
    case message(Inbound)
    /// A non-final frame of a fragmented message (a frame, so activity; PROTOCOL.md 1).
    case fragment
    case ping
    case pong
    case close(UInt16?)
    case violation(Violation)

    var label: String {
        switch self {
        case .upgrade(let style): "upgrade(\(style))"
        case .message(let inbound):
            switch inbound {
            case .invalidJSON: "invalid-json"
            case .noEvent: "no-event"
            case .heartbeat: "heartbeat"
            case .authenticate: "authenticate"
            case .join: "join"
            case .leave: "leave"
            case .custom(let name): "custom(\(name))"
            case .app(let target, let tag): "app(\(target) \(tag))"
            }
        case .fragment: "fragment"
        case .ping: "ping"
        case .pong: "pong"
        case .close(let code): "close(\(code.map(String.init) ?? "-"))"
        case .violation(let violation): "violation(\(violation))"
        }
    }
}

/// A call of one of the app's async hooks, as the sim's hooks saw it.
enum HookCall {
    case authenticate(client: Int, data: JSONValue)
    case handshake(client: Int, clientID: String, userID: String?, data: JSONValue)
    case validateRoom(client: Int, clientID: String, userID: String?, rooms: [String])
}

/// A hook's answer, delivered to the server after its latency.
enum HookAnswer {
    enum Auth: Equatable { case ok(user: String?), rejected, threw }
    enum Handshake: Equatable { case ok(key: String, salt: String), rejected, threw }
    case authenticate(client: Int, Auth)
    case handshake(client: Int, Handshake)
    /// nil: the hook threw.
    case validateRoom(client: Int, [String]?)
    case callback

    var label: String {
        switch self {
        case .authenticate(let k, let answer): "auth c\(k) \(answer)"
        case .handshake(let k, let answer): "handshake c\(k) \(answer)"
        case .validateRoom(let k, let rooms): "validate c\(k) \(rooms.map { "\($0)" } ?? "threw")"
        case .callback: "callback"
        }
    }
}

/// A published bus message on its way to one subscriber.
struct BusDelivery {
    var serial: Int
    var from: Int
    var to: Int
    var channel: String
    var message: [UInt8]
}

struct SimHookError: Error, CustomStringConvertible {
    var description: String
}
