/// What authenticateFn answers on success.
public struct AuthResult: Sendable, Equatable {
    public var userID: String?
    public var metadata: JSONValue?
    /// When the credentials expire, in wall-clock milliseconds since 1970 (a JWT's `exp` × 1000);
    /// nil: never. At that instant the client is closed with 4005 (`CloseCode.tokenExpired`)
    /// unless a `refresh` answered by `Hooks.refresh` moved it. The server converts it to its
    /// monotonic clock when the client is admitted, so a wall-clock step does not move it.
    public var expiresAt: Int64?
    /// Rooms the client joins when it is admitted, after the default rooms: names that pass the
    /// room name rule (1-256 characters, no reserved prefix), without asking `validateRoom`
    /// (the authenticator chose them; the serve proxy's connect hook answers them).
    public var rooms: [String]
    public init(userID: String? = nil, metadata: JSONValue? = nil, expiresAt: Int64? = nil, rooms: [String] = []) {
        self.userID = userID
        self.metadata = metadata
        self.expiresAt = expiresAt
        self.rooms = rooms
    }
}

/// refreshFn's input: an authenticated client's `refresh` (its data, `{}` when absent, with
/// the new token in `token` by convention) and the user it is logged in as.
public struct RefreshRequest: Sendable {
    public let clientID: String
    public let userID: String?
    public let data: JSONValue
}

/// What refreshFn answers for a valid new credential.
public struct RefreshResult: Sendable, Equatable {
    /// The user the new credential names. It must be the client's own (`RefreshRequest.userID`):
    /// any other answer is refused with the error `Refresh rejected: token is for another user`,
    /// since a refresh never changes who the connection belongs to.
    public var userID: String?
    /// The new expiry (wall-clock ms since 1970); nil: never.
    public var expiresAt: Int64?
    public init(userID: String?, expiresAt: Int64?) {
        self.userID = userID
        self.expiresAt = expiresAt
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

/// authenticateFn's input when the application wants to know who is connecting
/// (`Hooks.authenticateClient`): what `Hooks.authenticate` gets, plus the connection.
public struct AuthenticateRequest: Sendable {
    public let clientID: String
    /// The peer's address as the driver reports it (host only); behind a trusted proxy, the
    /// address it forwarded (`trustedProxies`).
    public let remoteAddress: String
    /// The upgrade request's headers named by `ServerOptions.hookHeaders` (lower-cased names,
    /// in request order); empty unless the application asked for some.
    public let headers: [(String, String)]
    /// The `authenticate` event's data (`{}` when absent).
    public let data: JSONValue
}

/// The rpc hook's input: an authenticated client's `rpc` (spec `messages.rpc`).
public struct RPCRequest: Sendable {
    public let clientID: String
    public let userID: String?
    /// `data.method` when it is a string.
    public let method: String?
    /// `data.data`, the call's arguments.
    public let data: JSONValue?
}

/// What the rpc hook answers for a call it accepts; returning nil refuses it.
public struct RPCResult: Sendable, Equatable {
    /// Sent back in `rpc_reply.result` (nil: JSON null).
    public var result: JSONValue?
    public init(result: JSONValue?) { self.result = result }
}

/// The publish hook's input: a `publish` to a room the client has joined.
public struct PublishRequest: Sendable {
    public let clientID: String
    public let userID: String?
    public let room: String
    /// `data.data`, what the client wants published.
    public let data: JSONValue?
}

/// What the publish hook answers for a publication it allows; returning nil refuses it.
public struct PublishResult: Sendable, Equatable {
    /// What the room receives in `publication.data`: the client's data, or a replacement.
    public var data: JSONValue?
    public init(data: JSONValue?) { self.data = data }
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

/// The application's callbacks. All but `authenticate` (or `authenticateClient`) are optional. Async hooks run as tasks
/// whose answers come back as kernel inputs, so a hook that awaits never holds anyone up. By
/// default (`ServerOptions.hooksOnLoop`) those tasks run on the loop's thread between events,
/// as the original's hooks share Bun's one JavaScript thread: no thread hop per hook. A hook
/// that blocks or computes for long should hop off itself, or set `hooksOnLoop = false`.
/// `messageHandler` and `outboundTransformer` run on the loop, synchronously (keep them fast;
/// hand slow work to a Task); a delivery they make is performed at once.
public struct Hooks: Sendable {
    public var authenticate: (@Sendable (JSONValue) async throws -> AuthResult?)?
    /// authenticateFn with the connection (client id, address, the headers named by
    /// `ServerOptions.hookHeaders`): used instead of `authenticate` when set, for applications
    /// (the serve proxy) that pass them on to a backend.
    public var authenticateClient: (@Sendable (AuthenticateRequest) async throws -> AuthResult?)?
    public var handshake: (@Sendable (HandshakeRequest) async throws -> HandshakeResult?)?
    public var validateRoom: (@Sendable (RoomRequest) async throws -> [String])?
    /// Checks the new credential of an authenticated client's `refresh`: nil (or a throw)
    /// refuses it and the current expiry stays; an answer moves the expiry and the client gets
    /// `refreshed`. A hook of its own, not authenticate called again, because a refresh must
    /// not change the userId or metadata and the application should see which one it answers.
    /// Without it `refresh` is a custom event for `messageHandler`, as in the original.
    public var refresh: (@Sendable (RefreshRequest) async throws -> RefreshResult?)?
    /// Answers an authenticated client's `rpc` (the spec's `rpc` hook): a result goes back in
    /// `rpc_reply`, nil refuses (`RPC refused`), a throw fails it (`RPC failed`). Without it
    /// `rpc` is a custom event for `messageHandler`, as in the original.
    public var rpc: (@Sendable (RPCRequest) async throws -> RPCResult?)?
    /// Allows (possibly transforming) a client's `publish` to a room it is in: the answer's
    /// data goes to the room on every instance as `publication`; nil refuses (`Publish
    /// rejected`), a throw fails it (`Publish failed`). Without it `publish` is a custom event.
    public var publish: (@Sendable (PublishRequest) async throws -> PublishResult?)?
    /// Runs after `connected` was sent; a throw is logged and changes nothing.
    public var clientConnected: (@Sendable (ClientEvent) async throws -> Void)?
    /// Runs after every disconnect, whatever the client's state: also for a client rejected at
    /// login, closed by the auth timer, or gone before authenticating (then `userID` is nil
    /// unless authenticateFn named one). Graceful shutdown waits for it; a throw is logged.
    public var clientDisconnected: (@Sendable (ClientEvent) async throws -> Void)?
    /// A throw is logged; the client gets no answer and stays connected.
    public var messageHandler: (@Sendable (ClientMessage) throws -> Void)?
    /// Replaces `{event, data}` for an encrypted client; nil keeps the original.
    public var outboundTransformer: (@Sendable (OutboundMessage) throws -> (event: String, data: JSONValue?)?)?

    /// Runs on the loop when the server forgets a client, whatever its state (connected or
    /// not): the place to drop per-client secrets such as encryption keys.
    public var clientReleased: (@Sendable (String) -> Void)?
    /// Runs on the loop each time a message to a client is dropped because its unsent bytes
    /// passed `backpressureLimit`: the client's id and how many messages it has lost so far
    /// (1, 2, 3, ...). For metrics and tests; keep it fast.
    public var backpressureDropped: (@Sendable (_ clientID: String, _ dropped: Int) -> Void)?
    /// Answers ordinary HTTP requests (not upgrades) on the loop: nil means 404.
    public var httpHandler: (@Sendable (HTTPRequest) -> HTTPAnswerBody?)?

    public init(authenticate: (@Sendable (JSONValue) async throws -> AuthResult?)? = nil) {
        self.authenticate = authenticate
    }
}

/// An ordinary HTTP request that reached the server (lower-cased header names).
public struct HTTPRequest: Sendable {
    public let method: String
    /// The path without the query string.
    public let path: String
    /// The request target as sent (path and query).
    public let target: String
    public let headers: [(String, String)]

    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.0 == lowered }?.1
    }
}

/// What an `httpHandler` answers; the connection closes after it.
public struct HTTPAnswerBody: Sendable {
    public var status: Int
    public var reason: String
    public var contentType: String
    public var body: [UInt8]
    public var headers: [(String, String)]

    public init(status: Int = 200, reason: String = "OK", contentType: String = "text/plain; charset=utf-8",
                body: [UInt8], headers: [(String, String)] = []) {
        self.status = status
        self.reason = reason
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }
    public init(status: Int = 200, reason: String = "OK", contentType: String = "text/plain; charset=utf-8",
                text: String, headers: [(String, String)] = []) {
        self.init(status: status, reason: reason, contentType: contentType, body: Array(text.utf8), headers: headers)
    }
}
