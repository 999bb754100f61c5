/// What authenticateFn answers on success.
public struct AuthResult: Sendable, Equatable {
    public var userID: String?
    public var metadata: JSONValue?
    public init(userID: String? = nil, metadata: JSONValue? = nil) {
        self.userID = userID
        self.metadata = metadata
    }
}

/// handshakeFn's input: the client, its userId and its `authenticate` data.
public struct HandshakeRequest: Sendable {
    public let clientID: String
    public let userID: String?
    public let data: JSONValue
}

/// What handshakeFn answers on success (both base64).
public struct HandshakeResult: Sendable, Equatable {
    public var serverPublicKey: String
    public var salt: String
    public init(serverPublicKey: String, salt: String) {
        self.serverPublicKey = serverPublicKey
        self.salt = salt
    }
}

/// validateRoomFn's input: the requested rooms after the name filter.
public struct RoomRequest: Sendable {
    public let clientID: String
    public let userID: String?
    public let rooms: [String]
}

/// A custom event from an authenticated client.
public struct ClientMessage: Sendable {
    public let clientID: String
    public let userID: String?
    public let message: InboundMessage
}

/// A client that connected or disconnected.
public struct ClientEvent: Sendable {
    public let clientID: String
    public let userID: String?
    public let metadata: JSONValue?
}

/// The outbound transformer's input: one message for one encrypted client.
public struct OutboundMessage: Sendable {
    public let clientID: String
    public let userID: String?
    public let event: String
    public let data: JSONValue?
}

/// The application's callbacks. All but `authenticate` are optional. Async hooks run off the
/// loop; their answers come back as kernel inputs, so a slow hook never blocks anyone else.
/// `messageHandler` and `outboundTransformer` run on the loop (keep them fast; hand slow work
/// to a Task) so that per-message work costs no thread hop.
public struct Hooks: Sendable {
    public var authenticate: (@Sendable (JSONValue) async throws -> AuthResult?)?
    public var handshake: (@Sendable (HandshakeRequest) async throws -> HandshakeResult?)?
    public var validateRoom: (@Sendable (RoomRequest) async throws -> [String])?
    public var clientConnected: (@Sendable (ClientEvent) async throws -> Void)?
    public var clientDisconnected: (@Sendable (ClientEvent) async throws -> Void)?
    public var messageHandler: (@Sendable (ClientMessage) throws -> Void)?
    /// Replaces `{event, data}` for an encrypted client; nil keeps the original.
    public var outboundTransformer: (@Sendable (OutboundMessage) throws -> (event: String, data: JSONValue?)?)?

    public init(authenticate: (@Sendable (JSONValue) async throws -> AuthResult?)? = nil) {
        self.authenticate = authenticate
    }
}
