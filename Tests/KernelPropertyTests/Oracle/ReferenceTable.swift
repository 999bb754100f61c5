import SwitchboardGen
import SwitchboardJSON
import SwitchboardKernel

/// The oracle's table: for a client-scoped input it finds the spec row whose `when` holds (the
/// guards computed from the model's own records) and performs the row's effects by name.
extension ReferenceModel {
    /// Finds the one row of (state, input) whose `when` holds and performs its effects.
    mutating func step(_ h: UInt64, _ input: String, _ context: Context, now: Now) {
        guard let client = clients[h] else { return }
        let holding = guards(client, input, context, now: now)
        let candidates = cells["\(client.state) \(input)"] ?? []
        let matching = candidates.filter { row in row.when.allSatisfy { holding[$0.name] == !$0.negated } }
        guard matching.count == 1, let row = matching.first else {
            problems.append("\(matching.count) rows match \(client.state) × \(input) with \(holding)")
            return
        }
        rowsRun.insert(Self.key(row))
        if let timer = context.timer, holding["timer_current"] == true {
            clients[h]!.timers[timer.name] = nil  // it fired: no longer armed
        }
        var released = false
        for effect in row.effects {
            perform(effect, h, context, now: now, released: &released)
        }
        pendingPresence = []
        if released {
            clients[h] = nil
            out.append(TraceLine(h, "released #\(h)"))
        } else {
            clients[h]?.state = row.next
        }
    }

    static func key(_ row: TableRow) -> String { "\(row.state) × \(row.input) \(row.whenText)" }

    /// Every guard the spec declares, computed from the model's own records. A `setting:` guard
    /// reads the option of that name, a `configured:` one the hook flags; `holds_for` limits a
    /// guard to some inputs (false for all others).
    func guards(_ client: Client, _ input: String, _ context: Context, now: Now) -> [String: Bool] {
        var holding: [String: Bool] = [:]
        let group = spec.inputs.first { $0.name == input }?.group.rawValue
        for declared in spec.guards {
            if !declared.holdsFor.isEmpty, !declared.holdsFor.contains(where: { $0.name == input || $0.name == group }) {
                holding[declared.name] = false
                continue
            }
            switch declared.source {
            case .setting(let name): holding[declared.name] = setting(name) as? Bool ?? false
            case .configured(let hook):
                switch hook {
                case "handshake": holding[declared.name] = settings.handshakeConfigured
                case "validate_room": holding[declared.name] = settings.validateRoomConfigured
                case "message_handler": holding[declared.name] = settings.messageHandlerConfigured
                case "refresh": holding[declared.name] = settings.refreshConfigured
                case "rpc": holding[declared.name] = settings.rpcConfigured
                case "publish": holding[declared.name] = settings.publishConfigured
                default: holding[declared.name] = true
                }
            case .computed:
                switch declared.name {
                case "attempt_current": holding[declared.name] = context.attempt != nil && context.attempt == client.attempt
                case "timer_current":
                    holding[declared.name] = context.timer.map { client.timers[$0.name] == $0.generation } ?? false
                case "has_rooms": holding[declared.name] = !context.rooms.isEmpty
                case "refresh_current": holding[declared.name] = context.attempt != nil && context.attempt == client.refreshAttempt
                case "refresh_same_user": holding[declared.name] = context.identity.map { $0.userID == client.userID } ?? false
                case "heartbeat_overdue": holding[declared.name] = now.monotonic - client.lastActivity > settings.heartbeatTimeout
                case "presence_enabled": holding[declared.name] = !settings.presenceRooms.isEmpty
                case "room_has_presence": holding[declared.name] = context.room.map(hasPresence) ?? false
                case "history_enabled": holding[declared.name] = !settings.historyRooms.isEmpty
                case "room_has_history":
                    holding[declared.name] = context.room.map { room in
                        settings.historyRooms.contains { $0.hasSuffix("*") ? room.hasPrefix($0.dropLast()) : room == $0 }
                    } ?? false
                case "in_room": holding[declared.name] = context.room.map { client.rooms.contains($0) } ?? false
                default: break  // unknown to the model: no row can match, and `step` reports it
                }
            }
        }
        return holding
    }

    /// The option a spec default names, read from the scenario's settings by its Swift name.
    func setting(_ name: String) -> Any? {
        let swiftName = Names.lowerCamel(name)  // the generator's spelling of a spec name in Swift
        return Mirror(reflecting: settings).children.first { $0.label == swiftName }?.value
    }

    mutating func perform(_ effect: SwitchboardGen.RowEffect, _ h: UInt64, _ context: Context, now: Now,
                          released: inout Bool) {
        let argument = effect.argument ?? ""
        switch effect.kind {
        case .ignore:
            break
        case .touch:
            clients[h]!.lastActivity = now.monotonic
        case .log:
            out.append(.log("debug", h, argument))
        case .sendError:
            let text = spec.errors.first { $0.name == argument }?.message ?? "?"
            send(to: h, event: "error", data: .object(JSONObject([("message", .string(text))])))
        case .close:
            let code = spec.closeCodes.first { $0.name == argument }
            out.append(TraceLine(h, "close #\(h) \(code?.code ?? 0) \(code?.reason ?? "?")"))
        case "close_requested":
            let code = context.closeCode
            out.append(TraceLine(h, "close #\(h) \(code?.code ?? 0) \(code?.reason ?? "?")"))
        case .armTimer:
            cancelTimer(argument, of: h)
            guard let deadline = deadline(argument, of: h, now: now) else { break }
            lastGeneration += 1
            clients[h]!.timers[argument] = lastGeneration
            out.append(TraceLine(h, "arm \(argument)#\(h)@\(lastGeneration) deadline \(deadline)"))
        case .cancelTimer:
            cancelTimer(argument, of: h)
        case .call:
            call(argument, h, context)
        case .recordIdentity:
            clients[h]!.userID = context.identity?.userID
            clients[h]!.metadata = context.identity?.metadata
            clients[h]!.expiresAt = context.identity?.expiresAt
            clients[h]!.admissionRooms = context.rooms
        case "record_expiry":
            clients[h]!.expiresAt = context.identity?.expiresAt
        case "send_refreshed":
            let members: [(String, JSONValue)] = clients[h]!.expiresAt.map { [("expiresAt", .number(JSONNumber($0)))] } ?? []
            send(to: h, event: "refreshed", data: .object(JSONObject(members)))
        case .markEncrypted:
            clients[h]!.encrypted = true
            clients[h]!.keys = context.keys
        case .admit:
            admit(h)
        case .sendConnected:
            let client = clients[h]!
            var members: [(String, JSONValue)] = [("id", .string(client.id))]
            if let userID = client.userID { members.append(("userId", .string(userID))) }
            members.append(("time", .string(isoTime(now.wall))))
            if let keys = client.keys {
                members += [("serverPublicKey", .string(keys.serverPublicKey)), ("salt", .string(keys.salt))]
            }
            out.append(TraceLine(h, "send #\(h) " + Self.envelope("connected", .object(JSONObject(members)))))
            clients[h]!.keys = nil
        case .joinValidatedRooms:
            for room in context.rooms { join(h, room) }
        case .leaveRooms:
            for room in context.rooms { leave(h, room) }
        case .deliver:
            break  // read by `offer`: whether the client's state delivers
        case "query_presence":
            guard let room = context.room else { break }
            let members = (rooms[room] ?? []).compactMap { clients[$0] }.sorted { $0.id < $1.id }.map(presenceMember)
            out.append(TraceLine(h, "query presence #\(h) client \(clients[h]!.id) room \(room) local \(JSONValue.array(members).serialized())"))
        case "announce_presence":
            let client = clients[h]!
            for (room, joined) in pendingPresence {
                let event = joined ? "presence_join" : "presence_leave"
                guard case .object(var data) = presenceMember(client) else { continue }
                data = JSONObject([("room", .string(room))] + data.map { ($0.key, $0.value) })
                offer(to: rooms[room] ?? [], event: event, data: .object(data), exclude: [client.id])
                publish(kind: "room", target: room, event: event, data: .object(data), exclude: [client.id])
                out.append(TraceLine(nil, "presence \(joined ? "join" : "leave") \(room) \(presenceMember(client).serialized())"))
            }
            pendingPresence = []
        case "recover_history":
            // The scenarios draw no rooms with history (`history_rooms` stays empty), so there is
            // nothing to read; HistoryPropertyTests checks recovery against a model of its own.
            if !settings.historyRooms.isEmpty { problems.append("the model does not know rooms with history") }
        case "query_history":
            // As recover_history: no scenario has rooms with history, so no row reaches it.
            problems.append("the model does not know rooms with history")
        case "send_rpc_reply", "send_rpc_error":
            // `rpc_reply`: the call's id and string method, then the result or the error's message.
            var members: [(String, JSONValue)] = []
            if let id = context.message?.id { members.append(("id", id)) }
            if case .string(let method)? = context.message?.data?["method"] { members.append(("method", .string(method))) }
            if effect.kind.rawValue == "send_rpc_error" {
                members.append(("error", .string(spec.errors.first { $0.name == argument }?.message ?? "?")))
            } else {
                members.append(("result", context.answer ?? .null))
            }
            send(to: h, event: "rpc_reply", data: .object(JSONObject(members)))
        case "publish_to_room":
            guard let room = context.room else { break }
            let client = clients[h]!
            var members: [(String, JSONValue)] = [("room", .string(room)), ("clientId", .string(client.id))]
            if let userID = client.userID { members.append(("userId", .string(userID))) }
            members.append(("data", context.answer ?? .null))
            offer(to: rooms[room] ?? [], event: "publication", data: .object(JSONObject(members)))
            publish(kind: "room", target: room, event: "publication", data: .object(JSONObject(members)), exclude: nil)
        case .release:
            for timer in spec.timers where timer.scope == .client { cancelTimer(timer.name, of: h) }
            for room in clients[h]!.rooms.sorted() { leave(h, room) }
            if let userID = clients[h]!.userID {
                users[userID]?.remove(h)
                if users[userID]?.isEmpty == true { users[userID] = nil }
                if var order = userOrder[userID] {
                    Self.swapRemove(h, from: &order)
                    userOrder[userID] = order.isEmpty ? nil : order
                }
            }
            clients[h]!.authData = nil
            Self.swapRemove(h, from: &liveOrder)
            released = true
        default:
            problems.append("the model does not know effect '\(effect.kind)'")
        }
    }

    /// A timer's deadline: now plus the default it names (read from the scenario's settings)
    /// times `times`; for one that runs `until` the client's expiry, that wall-clock instant
    /// seen from now on the monotonic clock (at once if past); nil when the client has none.
    func deadline(_ timer: String, of h: UInt64, now: Now) -> Int64? {
        guard let spec = spec.timers.first(where: { $0.name == timer }) else { return -1 }
        switch spec.until {
        case "": break
        case "expires_at":
            guard let expiresAt = clients[h]?.expiresAt else { return nil }
            return now.monotonic + max(0, expiresAt - now.wall)
        default: return -2_000_000  // unknown to the model: shows up as a wrong deadline
        }
        let base = setting(spec.after) as? Int64 ?? -1_000_000  // unknown: shows up as a wrong deadline
        return now.monotonic + base * Int64(spec.times)
    }

    mutating func cancelTimer(_ name: String, of h: UInt64) {
        guard let generation = clients[h]?.timers.removeValue(forKey: name) else { return }
        out.append(TraceLine(h, "cancel \(name)#\(h)@\(generation)"))
    }

    mutating func armSweep(now: Now) {
        guard !isShutDown else { return }
        lastGeneration += 1
        sweepGeneration = lastGeneration
        out.append(TraceLine(nil, "arm heartbeat_sweep@\(lastGeneration) deadline \(now.monotonic + settings.heartbeatInterval)"))
    }

    mutating func newAttempt(_ h: UInt64) -> UInt64 {
        lastAttempt += 1
        clients[h]!.attempt = lastAttempt
        return lastAttempt
    }

    mutating func call(_ hook: String, _ h: UInt64, _ context: Context) {
        let client = clients[h]!
        let who = "client \(client.id) user \(client.userID ?? "-")"
        switch hook {
        case "authenticate":
            let data = context.message?.data ?? .object(JSONObject())
            clients[h]!.authData = data
            out.append(TraceLine(h, "call authenticate #\(h) attempt \(newAttempt(h)) data \(data.serialized())"))
        case "handshake":
            let data = client.authData ?? .object(JSONObject())
            clients[h]!.authData = nil
            out.append(TraceLine(h, "call handshake #\(h) attempt \(newAttempt(h)) \(who) data \(data.serialized())"))
        case "validate_room":
            let rooms = JSONValue.array(context.rooms.map(JSONValue.string)).serialized()
            out.append(TraceLine(h, "call validate_room #\(h) attempt \(newAttempt(h)) \(who) rooms \(rooms)"))
        case "refresh":
            lastAttempt += 1
            clients[h]!.refreshAttempt = lastAttempt
            let data = context.message?.data ?? .object(JSONObject())
            out.append(TraceLine(h, "call refresh #\(h) attempt \(lastAttempt) \(who) data \(data.serialized())"))
        case "message_handler":
            guard let message = context.message else { return }
            out.append(TraceLine(h, "call message_handler #\(h) \(who) event \(message.event) data \(TraceLine.json(message.data)) id \(TraceLine.json(message.id))"))
        case "rpc":
            guard let message = context.message else { return }
            out.append(TraceLine(h, "call rpc #\(h) \(who) event \(message.event) data \(TraceLine.json(message.data)) id \(TraceLine.json(message.id))"))
        case "publish":
            guard let room = context.room else { return }
            out.append(TraceLine(h, "call publish #\(h) \(who) room \(room) data \(TraceLine.json(context.message?.data?["data"]))"))
        case "client_connected":
            out.append(TraceLine(h, "call client_connected #\(h) \(who) metadata \(TraceLine.json(client.metadata))"))
        case "client_disconnected":
            out.append(TraceLine(h, "call client_disconnected #\(h) \(who)"))
        default:
            problems.append("the model does not know hook \(hook)")
        }
    }

    // MARK: - Membership

    /// PROTOCOL.md 5: index by user, join the own-id room and the default rooms.
    mutating func admit(_ h: UInt64) {
        clients[h]!.authData = nil
        clients[h]!.admitted = true
        if let userID = clients[h]!.userID {
            if users[userID, default: []].insert(h).inserted { userOrder[userID, default: []].append(h) }
        }
        join(h, clients[h]!.id)
        for room in settings.defaultRooms { join(h, room) }
        for room in clients[h]!.admissionRooms { join(h, room) }
        clients[h]!.admissionRooms = []
    }

    mutating func join(_ h: UInt64, _ room: String) {
        guard clients[h]!.rooms.insert(room).inserted else { return }
        rooms[room, default: []].insert(h)
        if hasPresence(room) { pendingPresence.append((room, true)) }
    }

    /// The `presence_rooms` setting: exact names, or prefixes ending in `*`.
    func hasPresence(_ room: String) -> Bool {
        settings.presenceRooms.contains { $0.hasSuffix("*") ? room.hasPrefix($0.dropLast()) : room == $0 }
    }

    /// A member as presence lists it: clientId, then userId and metadata when there are some.
    func presenceMember(_ client: Client) -> JSONValue {
        var members: [(String, JSONValue)] = [("clientId", .string(client.id))]
        if let userID = client.userID { members.append(("userId", .string(userID))) }
        if let metadata = client.metadata { members.append(("metadata", metadata)) }
        return .object(JSONObject(members))
    }

    mutating func leave(_ h: UInt64, _ room: String) {
        guard clients[h]!.rooms.remove(room) != nil else { return }
        rooms[room]?.remove(h)
        if rooms[room]?.isEmpty == true { rooms[room] = nil }
        if hasPresence(room) { pendingPresence.append((room, false)) }
    }
}
