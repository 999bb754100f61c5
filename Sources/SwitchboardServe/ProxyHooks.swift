import Switchboard
import Synchronization

/// The backend's side of each proxied hook: the JSON body `switchboard serve` POSTs and what it
/// accepts back (docs/proxy.md documents both). An answer of the wrong shape is a
/// `ProxyFailure`, thrown like a timeout, so that the spec's error for a failing hook reaches
/// the client; `{"error": ...}` is a refusal (nil).
final class ProxyHooks: Sendable {
    let client: ProxyClient
    private let log: Logger
    /// Clients that got `connected`: the disconnect notice is for them only.
    private let admitted = Mutex<Set<String>>([])
    /// Disconnect notices still being sent; past `maxNotices` new ones are dropped (and logged)
    /// rather than piling up behind a backend that is down.
    private let notices = Atomic<Int>(0)
    static let maxNotices = 1024

    init(client: ProxyClient, log: Logger) {
        self.client = client
        self.log = log
    }

    /// Calls `hook`, logging a failure (the throw goes on to the kernel).
    private func call(_ hook: ProxyConfig.Hook, _ body: [(String, JSONValue?)], clientID: String) async throws -> ProxyAnswer {
        let object = JSONValue.object(JSONObject(body.compactMap { name, value in value.map { (name, $0) } }))
        do {
            return try await client.call(hook, object)
        } catch {
            log.warning("proxy \(hook.rawValue) for client \(clientID): \(error)")
            throw error
        }
    }

    /// `connect`: the backend decides who the client is, from its `authenticate` data.
    func connect(_ request: AuthenticateRequest) async throws -> AuthResult? {
        var headers: [(String, JSONValue)] = []
        for (name, value) in request.headers {
            if let index = headers.firstIndex(where: { $0.0 == name }), case .string(let first) = headers[index].1 {
                headers[index].1 = .string(first + ", " + value)  // a repeated header, as HTTP joins them
            } else {
                headers.append((name, .string(value)))
            }
        }
        let answer = try await call(.connect, [("clientId", .string(request.clientID)),
                                               ("remoteAddress", .string(request.remoteAddress)),
                                               ("headers", .object(JSONObject(headers))), ("data", request.data)],
                                    clientID: request.clientID)
        guard case .result(let result) = answer else { return refused(.connect, answer, request.clientID) }
        guard case .object(let fields) = result else { throw ProxyFailure.badAnswer("connect: 'result' must be an object") }
        var auth = AuthResult()
        switch fields["userId"] {
        case nil, .null?: break
        case .string(let user)?: auth.userID = user.isEmpty ? nil : user
        default: throw ProxyFailure.badAnswer("connect: 'result.userId' must be a string")
        }
        auth.metadata = fields["metadata"].flatMap { $0 == .null ? nil : $0 }
        switch fields["expiresAt"] {
        case nil, .null?: break
        case .number(let number)?:
            guard let milliseconds = number.int.map(Int64.init) else { throw ProxyFailure.badAnswer("connect: 'result.expiresAt' must be an integer") }
            auth.expiresAt = milliseconds
        default: throw ProxyFailure.badAnswer("connect: 'result.expiresAt' must be a number (milliseconds since 1970)")
        }
        switch fields["rooms"] {
        case nil, .null?: break
        case .array(let names)?:
            auth.rooms = try names.map { name -> String in
                guard case .string(let room) = name else { throw ProxyFailure.badAnswer("connect: 'result.rooms' must hold strings") }
                return room
            }
        default: throw ProxyFailure.badAnswer("connect: 'result.rooms' must be a list")
        }
        return auth
    }

    /// `join`: of `rooms` (the client's request after the name filter and the room policy),
    /// the ones the backend allows; a refusal allows none.
    func join(clientID: String, userID: String?, rooms: [String]) async throws -> [String] {
        let answer = try await call(.join, [("clientId", .string(clientID)), ("userId", userID.map(JSONValue.string)),
                                            ("rooms", .array(rooms.map(JSONValue.string)))], clientID: clientID)
        guard case .result(let result) = answer else { return refused(.join, answer, clientID) ?? [] }
        guard case .array(let names)? = result["rooms"] else { throw ProxyFailure.badAnswer("join: 'result.rooms' must be a list") }
        var allowed = Set<String>()
        for name in names {
            guard case .string(let room) = name else { throw ProxyFailure.badAnswer("join: 'result.rooms' must hold strings") }
            allowed.insert(room)
        }
        return rooms.filter(allowed.contains)  // narrowing only: a room not asked for is not added
    }

    /// `rpc`: the backend's `result`, whatever JSON it is, goes back to the client.
    func rpc(_ request: RPCRequest) async throws -> RPCResult? {
        let answer = try await call(.rpc, [("clientId", .string(request.clientID)), ("userId", request.userID.map(JSONValue.string)),
                                           ("method", request.method.map(JSONValue.string)), ("data", request.data)],
                                    clientID: request.clientID)
        guard case .result(let result) = answer else { return refused(.rpc, answer, request.clientID) }
        return RPCResult(result: result)
    }

    /// `publish`: allowed as sent (`{"result": {}}`) or with the backend's `data` instead.
    func publish(_ request: PublishRequest) async throws -> PublishResult? {
        let answer = try await call(.publish, [("clientId", .string(request.clientID)),
                                               ("userId", request.userID.map(JSONValue.string)),
                                               ("room", .string(request.room)), ("data", request.data ?? .null)],
                                    clientID: request.clientID)
        guard case .result(let result) = answer else { return refused(.publish, answer, request.clientID) }
        guard case .object(let fields) = result else { throw ProxyFailure.badAnswer("publish: 'result' must be an object") }
        return PublishResult(data: fields["data"] ?? request.data)
    }

    func connected(_ clientID: String) {
        _ = admitted.withLock { $0.insert(clientID) }
    }

    /// `disconnect`: a notice for a client that had been admitted, sent in a task of its own
    /// (with the idempotent hooks' retries), so that nothing waits for it: not the close, not
    /// the client's release, not a shutdown.
    func disconnected(clientID: String, userID: String?) {
        guard admitted.withLock({ $0.remove(clientID) }) != nil else { return }
        guard notices.add(1, ordering: .relaxed).newValue <= Self.maxNotices else {
            notices.subtract(1, ordering: .relaxed)
            log.warning("proxy disconnect for client \(clientID) dropped: \(Self.maxNotices) notices are still being sent")
            return
        }
        Task.detached { [self] in
            defer { notices.subtract(1, ordering: .relaxed) }
            _ = try? await call(.disconnect, [("clientId", .string(clientID)), ("userId", userID.map(JSONValue.string))],
                                clientID: clientID)
        }
    }

    /// Logs a refusal (`{"error": ...}`): the backend's reason is for the operator; the client
    /// gets the spec's error for the hook.
    private func refused<T>(_ hook: ProxyConfig.Hook, _ answer: ProxyAnswer, _ clientID: String) -> T? {
        if case .error(let reason) = answer { log.debug("proxy \(hook.rawValue) refused client \(clientID): \(reason)") }
        return nil
    }
}
