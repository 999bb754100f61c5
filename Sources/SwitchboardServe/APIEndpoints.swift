import Switchboard

/// What each endpoint of the server API does with the gateway (docs/api.yaml): publish through
/// the bus envelope, presence from the kernel's indexes, disconnect with a spec close code,
/// counters. Disconnect, stats and most presence answers see this instance only (`"scope":
/// "instance"`): the bus carries deliveries, not queries. The members of a room with presence
/// (`presenceRooms`) come from the presence store when the instances share a Redis (`"scope":
/// "fleet"`), with each member's userId and metadata; so does the history of a room with
/// history (`historyRooms`).
struct APIEndpoints: Sendable {
    let server: Server

    // MARK: - Publish

    /// `{type, target?, event, data?, exclude?}`, the bus envelope's members: delivered to this
    /// instance's clients and published for the others, as a client's `send`/`direct` is.
    func publish(_ body: APIBody) async throws(APIError) -> APIResponse {
        try body.only(["type", "target", "event", "data", "exclude"])
        let kind = try Self.kind(body, among: BusEnvelope.Kind.allCases)
        let event = try body.requiredString("event")
        if event.utf8.count > 128 { throw APIError.invalid("event", "'event' is longer than 128 bytes") }
        if ServeApp.reservedEvents.contains(event) {
            throw APIError.invalid("event", "'\(event)' is an event of the protocol itself; choose another name")
        }
        let data = body.value("data")
        let exclude = try body.strings("exclude")
        let target = try body.string("target")
        switch kind {
        case .broadcast:
            if target != nil { throw APIError.invalid("target", "a broadcast has no 'target'") }
        case .room:
            guard let room = target else { throw APIError.missing("target") }
            if let problem = FieldKind.roomProblem(room) { throw APIError.invalid("target", problem) }
        case .client, .user:
            if target == nil { throw APIError.missing("target") }
            if exclude != nil { throw APIError.invalid("exclude", "'exclude' applies to type room and broadcast only") }
        }
        // A room with history records the message once, and the store delivers it to the room
        // on every instance (docs/recovery.md): one call, not a local delivery and a publish.
        var recorded = false
        if kind == .room, !server.options.historyRooms.isEmpty, let room = target {
            recorded = try await ask { try await server.query { $0.hasHistory(room) } }
        }
        do {
            switch kind {
            case .client: try server.sendToClient(target!, event: event, data: data)
            case .user: try server.sendToUser(target!, event: event, data: data)
            case .room: try server.sendToRoom(target!, event: event, data: data, exclude: exclude ?? [])
            case .broadcast: try server.broadcast(event: event, data: data, exclude: exclude ?? [])
            }
            if !recorded { try server.publish(kind, target: target, event: event, data: data, exclude: exclude) }
        } catch {
            throw .unavailable
        }
        return .ok([("ok", true), ("serverId", .string(server.serverID))])
    }

    // MARK: - Disconnect

    /// `{type: client|user, target, code?}`: closes the client, or every client of the user, on
    /// this instance with `code`, one of the spec's `origin: request` codes (default the first).
    func disconnect(_ body: APIBody) async throws(APIError) -> APIResponse {
        try body.only(["type", "target", "code"])
        let kind = try Self.kind(body, among: [.client, .user])
        let target = try body.requiredString("target")
        let code: CloseCode
        if let number = try body.int("code") {
            guard let requested = CloseCode.requested(number) else {
                let allowed = CloseCode.requestable.map { "\($0.code) (\($0.reason))" }.joined(separator: ", ")
                throw APIError.invalid("code", "\(number) is not a close code a disconnect may choose; use one of \(allowed)")
            }
            code = requested
        } else {
            guard let first = CloseCode.requestable.first else { throw .unavailable }
            code = first
        }
        let closed: [String]
        do {
            closed = try await server.disconnect(kind == .client ? .client(id: target) : .user(target), code: code)
        } catch {
            throw .unavailable
        }
        return .ok([("disconnected", .array(closed.map(JSONValue.string))), ("code", .number(JSONNumber(Int(code.code)))),
                    ("reason", .string(code.reason)), ("scope", "instance")])
    }

    // MARK: - Presence

    func clients(ofUser userID: String) async throws(APIError) -> APIResponse {
        let ids = try await ask { try await server.clients(ofUser: userID) }
        return .ok([("userId", .string(userID)), ("clients", .array(ids.map(JSONValue.string))), ("scope", "instance")])
    }

    func members(ofRoom room: String) async throws(APIError) -> APIResponse {
        guard try await ask({ try await server.query { $0.hasPresence(room) } }) else {
            let ids = try await ask { try await server.members(ofRoom: room) }
            return .ok([("room", .string(room)), ("members", .array(ids.map(JSONValue.string))), ("scope", "instance")])
        }
        let members = try await ask { try await server.presence(ofRoom: room) }
        return .ok([("room", .string(room)), ("members", .array(members.map { .string($0.clientID) })),
                    ("presence", .array(members.map(\.json))),
                    ("scope", server.options.redis == nil && server.options.presenceRedis == nil ? "instance" : "fleet")])
    }

    // MARK: - History

    /// `?limit=N&since=OFFSET&epoch=E`: what a member's `history` query answers (the spec's
    /// `messages.history`), for a room with history; from the Redis the fleet shares (`"scope":
    /// "fleet"`) or this instance's memory. Unlike a client, the backend need not be a member.
    func history(ofRoom room: String, _ parameters: [String: String]) async throws(APIError) -> APIResponse {
        if let unknown = parameters.keys.sorted().first(where: { !["limit", "since", "epoch"].contains($0) }) {
            throw APIError.invalid(unknown, "'\(unknown)' is not a parameter of this endpoint; use limit, since and epoch")
        }
        var limit = server.options.historySize
        if let text = parameters["limit"] {
            guard let value = Int(text), value >= 0 else {
                throw APIError.invalid("limit", "'limit' must be a whole number from 0 (more than \(limit) is \(limit)), got '\(text)'")
            }
            limit = value
        }
        var since: HistoryPosition?
        switch (parameters["since"], parameters["epoch"]) {
        case (nil, nil): break
        case (let offset?, let epoch?):
            guard let value = UInt64(offset) else {
                throw APIError.invalid("since", "'since' must be a whole number from 0 (a message's offset), got '\(offset)'")
            }
            since = HistoryPosition(offset: value, epoch: epoch)
        case (nil, _?): throw APIError.invalid("epoch", "'epoch' goes with 'since' (the offset in that epoch); add since")
        case (_?, nil): throw APIError.invalid("since", "'since' needs the 'epoch' its offset belongs to; add epoch")
        }
        guard try await ask({ try await server.query { $0.hasHistory(room) } }) else {
            throw APIError(status: 404, code: "history_not_enabled", field: "room",
                           message: "room '\(room)' has no history: no rooms.history pattern matches it")
        }
        let answer = await server.history(ofRoom: room, limit: limit, since: since)
        if answer.reason == .unavailable {
            throw APIError(status: 503, code: "history_unavailable", message: "the history store could not be read; try again")
        }
        let fleet = server.options.redis != nil || server.options.historyRedis != nil
        return .ok(answer.members + [("scope", fleet ? "fleet" : "instance")])
    }

    func client(_ id: String) async throws(APIError) -> APIResponse {
        guard let info = try await ask({ try await server.client(id: id) }) else {
            throw APIError(status: 404, code: "not_found", field: "clientId", message: "no client '\(id)' on this instance")
        }
        return .ok([("id", .string(info.id)), ("userId", info.userID.map(JSONValue.string) ?? .null),
                    ("state", .string(info.state.wireName)), ("rooms", .array(info.rooms.map(JSONValue.string))),
                    ("encrypted", .bool(info.encrypted)), ("scope", "instance")])
    }

    // MARK: - Stats

    func stats() async throws(APIError) -> APIResponse {
        let metrics = try await ask { try await server.metrics() }
        let states = metrics.clientsByState.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.number(JSONNumber($0.value))) }
        func number(_ value: Int) -> JSONValue { .number(JSONNumber(value)) }
        return .ok([
            ("serverId", .string(server.serverID)),
            ("connections", number(metrics.connections)),
            ("clients", .object(JSONObject(states))),
            ("users", number(metrics.users)),
            ("rooms", number(metrics.rooms)),
            ("messagesIn", number(metrics.messagesIn)),
            ("messagesOut", number(metrics.messagesOut)),
            ("published", number(metrics.published)),
            ("scope", "instance"),
        ])
    }

    // MARK: - Helpers

    /// `type`: one of `allowed` (bus envelope kinds).
    private static func kind(_ body: APIBody, among allowed: [BusEnvelope.Kind]) throws(APIError) -> BusEnvelope.Kind {
        let name = try body.requiredString("type")
        guard let kind = BusEnvelope.Kind(rawValue: name), allowed.contains(kind) else {
            throw APIError.invalid("type", "'\(name)' is not one of " + allowed.map(\.rawValue).joined(separator: ", "))
        }
        return kind
    }

    /// A query of the server; it throws only when the server is not running.
    private func ask<T>(_ body: () async throws -> T) async throws(APIError) -> T {
        do { return try await body() } catch { throw .unavailable }
    }
}
