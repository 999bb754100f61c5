import SwitchboardJSON

/// An encoded message (`{"event":..,"data":..}` as UTF-8 JSON), made once and shared by every
/// recipient. Drivers may cache their framed form in `driverCache` (loop thread only).
public final class Payload: @unchecked Sendable, Equatable, CustomStringConvertible {
    /// Never changes while anyone but the kernel holds the payload (see `refill`).
    public var bytes: [UInt8] { storedBytes }
    /// For the driver: e.g. the WebSocket frame built from `bytes`, computed once per payload.
    /// Loop thread only, like the effects that carry the payload.
    public var driverCache: AnyObject? {
        get { storedCache }
        set { storedCache = newValue }
    }

    // Stored apart from the public accessors, which this module compiles: other modules would
    // check exclusivity dynamically on every access to a mutable stored property of a class.
    // Without these two marks measured: 391 instructions per echo round trip
    // (scripts/callgrind-echo, 7,687 -> 8,078).
    // `storedBytes` is visible to inlined code (`withUnsafeBytes`), not to other modules' source.
    @exclusivity(unchecked) @usableFromInline internal private(set) var storedBytes: [UInt8]
    @exclusivity(unchecked) private var storedCache: AnyObject?

    /// `bytes.count`, without the retain and release of the array that reading `bytes` costs
    /// another module (with `withUnsafeBytes`: Outbox.send 621 -> 558 instructions per echo).
    public var count: Int { storedBytes.count }

    /// Runs `body` on the bytes in place (see `count`); inlined, so specialized where it is used.
    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storedBytes.withUnsafeBytes(body)
    }

    public init(bytes: [UInt8]) { self.storedBytes = bytes }
    public convenience init(event: String, data: JSONValue?) {
        self.init(bytes: OutboundEnvelope.encode(event: event, data: data))
    }

    /// Re-encodes a payload nobody else holds, in its own storage: a reply to one client costs
    /// no allocation once the previous reply has been written.
    func refill(event: String, data: JSONValue?) {
        storedBytes.removeAll(keepingCapacity: true)
        OutboundEnvelope.encode(event: event, data: data, into: &storedBytes)
        storedCache = nil
    }
    public static func == (a: Payload, b: Payload) -> Bool { a === b || a.bytes == b.bytes }
    public var description: String { String(decoding: bytes, as: UTF8.self) }
}

/// A message from a client as the app's messageHandler sees it.
public struct InboundMessage: Equatable, Sendable {
    public var event: String
    public var data: JSONValue?
    public var id: JSONValue?
    public init(event: String, data: JSONValue?, id: JSONValue?) {
        self.event = event
        self.data = data
        self.id = id
    }
}

public enum LogLevel: UInt8, Comparable, Sendable {
    case debug, info, warning, error
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// What the kernel asks the driver to do. Plain values only: the driver runs one exhaustive
/// `switch` and reports outcomes back as inputs.
public enum Effect: Equatable, Sendable {
    /// Write this payload to one client.
    case send(ClientHandle, Payload)
    /// Write the same payload to every listed client (encoded once).
    case fanOut([ClientHandle], Payload)
    /// Deliver `{event, data}` to an encrypted client through the outbound transformer.
    case sendTransformed(ClientHandle, event: String, data: JSONValue?)
    /// Send a close frame with this code and reason, then close. The client gets nothing more.
    case close(ClientHandle, CloseCode)
    case armTimer(TimerID, deadline: Int64)
    case cancelTimer(TimerID)
    case callAuthenticate(ClientHandle, AttemptID, data: JSONValue)
    case callHandshake(ClientHandle, AttemptID, clientID: String, userID: String?, data: JSONValue)
    case callValidateRoom(ClientHandle, AttemptID, clientID: String, userID: String?, rooms: [String])
    /// refreshFn for an authenticated client's `refresh`; `data` is the event's data (`{}` when absent).
    case callRefresh(ClientHandle, AttemptID, clientID: String, userID: String?, data: JSONValue)
    case callMessageHandler(ClientHandle, clientID: String, userID: String?, message: InboundMessage)
    /// The rpc hook for an authenticated client's `rpc`: the whole message (its `id` and
    /// `data.method` come back in `rpc_reply`).
    case callRPC(ClientHandle, clientID: String, userID: String?, call: InboundMessage)
    /// The publish hook for a `publish` to a room the client is in; `data` is `data.data`.
    case callPublish(ClientHandle, clientID: String, userID: String?, room: String, data: JSONValue?)
    case callClientConnected(ClientHandle, clientID: String, userID: String?, metadata: JSONValue?)
    case callClientDisconnected(ClientHandle, clientID: String, userID: String?)
    /// Publish a bus message (PROTOCOL.md 8) on this channel.
    case publish(channel: String, message: [UInt8])
    case log(LogLevel, String, ClientHandle?)
    /// The kernel forgot this client; the driver may free what it keeps for it.
    case released(ClientHandle)
    /// A client joined or left a room with presence: the presence store (Redis) follows.
    case presenceChanged(room: String, member: PresenceMember, joined: Bool)
    /// A `presence` query: answer the client with `local` merged with the store's members of
    /// the room on other instances (`Kernel.presenceAnswer`, delivered to `clientID`).
    case queryPresence(ClientHandle, clientID: String, room: String, local: [PresenceMember])
    /// A message to a room with history: record it once (the history store gives it the
    /// room's next offset) and deliver it to the room's members with that offset
    /// (`KernelInput.historyMessage`, or the bus envelope the Redis store publishes).
    indirect case appendHistory(HistoryAppend)
    /// A client joined a room with history: read where the room is (and with `since`, what
    /// came after it) and answer with `KernelInput.historyRead` and the same `request`.
    indirect case readHistory(ClientHandle, request: UInt64, room: String, since: HistoryPosition?)
    /// A `history` query: read the room's kept messages as `query` asks and answer the client
    /// with `history` (`HistoryAnswer`, delivered to `clientID`).
    indirect case queryHistory(ClientHandle, clientID: String, HistoryQuery)
}

/// authenticateFn's answer. `expiresAt` (wall-clock ms, nil: never) arms the token expiry timer;
/// `rooms` are joined with the default rooms when the client is admitted (after the room name
/// filter, without validateRoomFn: the authenticator chose them).
public enum AuthOutcome: Equatable, Sendable {
    case ok(userID: String?, metadata: JSONValue?, expiresAt: Int64? = nil, rooms: [String] = [])
    case rejected
    case threw(String)
}

/// handshakeFn's answer.
public enum HandshakeOutcome: Equatable, Sendable {
    case ok(serverPublicKey: String, salt: String)
    case rejected
    case threw(String)
}

/// refreshFn's answer: the user the new token names (it must be the client's) and its expiry
/// (wall-clock ms, nil: never).
public enum RefreshOutcome: Equatable, Sendable {
    case ok(userID: String?, expiresAt: Int64?)
    case rejected
    case threw(String)
}

/// The rpc hook's answer: a result (nil: JSON null), a refusal, or a failure.
public enum RPCOutcome: Equatable, Sendable {
    case ok(JSONValue?)
    case rejected
    case threw(String)
}

/// The publish hook's answer: the data to publish, a refusal, or a failure.
public enum PublishOutcome: Equatable, Sendable {
    case ok(JSONValue?)
    case rejected
    case threw(String)
}

/// validateRoomFn's answer.
public enum RoomsOutcome: Equatable, Sendable {
    case ok([String])
    case threw(String)
}
