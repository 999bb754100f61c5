import SwitchboardJSON

/// Everything that can happen, as the kernel hears it. Client-scoped inputs are mapped onto
/// the generated `InputKind`s and run through the table; the rest is routing.
public enum KernelInput: Sendable {
    /// The kernel starts: arms the heartbeat sweep.
    case started
    /// A WebSocket upgrade completed; `id` is the client's wire id (a UUID the driver drew).
    case opened(ClientHandle, id: String)
    /// A text or binary message (binary is read as UTF-8 JSON too).
    case message(ClientHandle, [UInt8])
    /// A ping or pong frame.
    case activity(ClientHandle)
    /// The connection is gone.
    case closed(ClientHandle)
    case authenticateReturned(ClientHandle, AttemptID, AuthOutcome)
    case handshakeReturned(ClientHandle, AttemptID, HandshakeOutcome)
    case validateRoomReturned(ClientHandle, AttemptID, RoomsOutcome)
    case refreshReturned(ClientHandle, AttemptID, RefreshOutcome)
    /// The rpc hook answered the `rpc` message `call` (as `Effect.callRPC` carried it). Calls
    /// have no attempt: several may run at once, and each answer belongs to its own call.
    case rpcReturned(ClientHandle, call: InboundMessage, RPCOutcome)
    /// The publish hook answered a `publish` to `room`.
    case publishReturned(ClientHandle, room: String, PublishOutcome)
    case timerFired(TimerID)
    /// A message for this client was dropped: its unsent bytes passed backpressureLimit.
    case backpressured(ClientHandle)
    /// Graceful shutdown: every client is closed with 1001.
    case shutdown
    /// A bus message arrived on `channel` (PROTOCOL.md 8).
    case busMessage(channel: String, message: [UInt8])
    /// Application delivery (PROTOCOL.md 7).
    case deliver(Delivery)
    /// The application closes a client, or every client of a user, on this instance with a
    /// code of `origin: request` (any other code is logged and nothing closes).
    case disconnect(DisconnectTarget, CloseCode)
    /// A recorded message of a room with history, with its offset: delivered to the room's
    /// members here (the in-memory history store; with Redis it comes as a bus message).
    indirect case historyMessage(HistoryMessage)
    /// The history store answered the read `request` of a client's join of `room`.
    indirect case historyRead(ClientHandle, request: UInt64, room: String, HistoryRead)
}

/// Who a disconnect request closes.
public enum DisconnectTarget: Sendable, Equatable {
    /// One client by its id.
    case client(id: String)
    /// Every client of this user id (its sessions on this instance).
    case user(String)
}

extension CloseCode {
    /// The spec's close code with this number that a disconnect request may choose (`origin:
    /// request`), or nil: the only codes an application or the server API may send.
    public static func requested(_ number: Int) -> CloseCode? {
        allCases.first { $0.origin == .request && Int($0.code) == number }
    }

    /// Every code a disconnect request may choose, in spec order.
    public static var requestable: [CloseCode] { allCases.filter { $0.origin == .request } }
}

/// Application delivery requests (PROTOCOL.md 7). Local unless `publish` says otherwise.
public enum Delivery: Sendable, Equatable {
    case toClient(id: String, event: String, data: JSONValue?)
    case toUser(userID: String, event: String, data: JSONValue?)
    case toRoom(room: String, event: String, data: JSONValue?, exclude: [String])
    case broadcast(event: String, data: JSONValue?, exclude: [String])
    /// `send(destination?, topic, data)`: local by kind of destination, and always published.
    case send(destination: String?, topic: String, data: JSONValue?)
    /// Publish one envelope for the other instances (no local delivery).
    case publish(BusEnvelope)
}
