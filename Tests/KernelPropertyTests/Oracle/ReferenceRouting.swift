import SwitchboardGen
import SwitchboardJSON
import SwitchboardKernel

/// The oracle's routing (PROTOCOL.md 7-8): who receives a delivery or a bus message, and what
/// goes to the bus. Every message to a client passes through `offer`, the one place that decides
/// whether and how a client in its current state receives it.
extension ReferenceModel {
    /// One message to one client: through the outbound transformer for an encrypted client
    /// when one is configured, else the plain envelope. Used for replies (`error`) too.
    mutating func send(to h: UInt64, event: String, data: JSONValue?) {
        if clients[h]?.encrypted == true && settings.outboundTransformerConfigured {
            out.append(TraceLine(h, "transformed #\(h) \(event) \(TraceLine.json(data))"))
        } else {
            out.append(TraceLine(h, "send #\(h) " + Self.envelope(event, data)))
        }
    }

    /// A delivery to one client: only where the spec's delivery row for the client's state
    /// `deliver`s (read from the rows, not from the generated table).
    mutating func offer(to h: UInt64, event: String, data: JSONValue?) {
        guard let state = clients[h]?.state else { return }
        let rows = deliveryRows(in: state)
        for row in rows { rowsRun.insert(Self.key(row)) }
        guard rows.contains(where: { $0.effects.contains { $0.kind.rawValue == "deliver" } }) else { return }
        send(to: h, event: event, data: data)
    }

    /// Delivers to each of `recipients` in handle order, leaving out the `exclude` ids.
    mutating func offer(to recipients: some Sequence<UInt64>, event: String, data: JSONValue?, exclude: [String] = []) {
        for h in recipients.sorted() where !exclude.contains(clients[h]?.id ?? "") {
            offer(to: h, event: event, data: data)
        }
    }

    /// The rows of the spec's delivery input in this state.
    func deliveryRows(in state: String) -> [TableRow] {
        guard let input = spec.inputs.first(where: { $0.group == .delivery })?.name else { return [] }
        return cells["\(state) \(input)"] ?? []
    }

    func handle(ofID id: String) -> UInt64? { clients.values.first { $0.id == id }?.handle }
    var audience: [UInt64] { clients.values.filter(\.admitted).map(\.handle) }

    mutating func deliver(_ delivery: Delivery) {
        switch delivery {
        case .toClient(let id, let event, let data):
            if let h = handle(ofID: id) { offer(to: h, event: event, data: data) }
        case .toUser(let userID, let event, let data):
            offer(to: users[userID] ?? [], event: event, data: data)
        case .toRoom(let room, let event, let data, let exclude):
            offer(to: rooms[room] ?? [], event: event, data: data, exclude: exclude)
        case .broadcast(let event, let data, let exclude):
            offer(to: audience, event: event, data: data, exclude: exclude)
        case .send(let destination, let topic, let data):
            // PROTOCOL.md 7: without a topic or without data (absent, not null) nothing happens.
            if topic.isEmpty || data == nil { return }
            // A destination naming a local client (in any state) is a client id, else a room.
            if let destination, let h = handle(ofID: destination) {
                offer(to: h, event: topic, data: data)
                publish(kind: "client", target: destination, event: topic, data: data, exclude: nil)
            } else if let destination {
                offer(to: rooms[destination] ?? [], event: topic, data: data)
                publish(kind: "room", target: destination, event: topic, data: data, exclude: nil)
            } else {
                offer(to: audience, event: topic, data: data)
                publish(kind: "broadcast", target: nil, event: topic, data: data, exclude: nil)
            }
        case .publish(let envelope):
            publish(kind: envelope.kind.rawValue, target: envelope.target, event: envelope.event, data: envelope.data,
                    exclude: envelope.exclude, serverID: envelope.serverID)
        }
    }

    /// The bus envelope in the original's field order; absent `data`/`exclude` are left out.
    mutating func publish(kind: String, target: String?, event: String, data: JSONValue?, exclude: [String]?,
                          serverID: String? = nil) {
        var members: [(String, JSONValue)] = [("serverId", .string(serverID ?? self.serverID)), ("type", .string(kind))]
        if let target { members.append(("target", .string(target))) }
        members.append(("event", .string(event)))
        if let data { members.append(("data", data)) }
        if let exclude { members.append(("exclude", .array(exclude.map(JSONValue.string)))) }
        let channel = channel(kind: kind, target: target ?? "")
        out.append(TraceLine(nil, "publish \(channel) \(JSONValue.object(JSONObject(members)).serialized())"))
    }

    /// The spec's channel templates with their `{x}` placeholder filled in.
    func channel(kind: String, target: String) -> String {
        guard let channels = spec.channels else { return "?" }
        let template = switch kind {
        case "room": channels.room
        case "client": channels.client
        case "user": channels.user
        default: channels.broadcast
        }
        guard let open = template.firstIndex(of: "{"), let close = template.firstIndex(of: "}") else { return template }
        return template.replacingCharacters(in: open...close, with: target)
    }

    /// A message from another instance: malformed ones are logged and dropped, our own ignored.
    mutating func busMessage(channel: String, _ bytes: [UInt8]) {
        guard let envelope = Self.readEnvelope(bytes) else {
            out.append(TraceLine(nil, "log warning - dropped a malformed bus message on \(channel)", prefix: true))
            return
        }
        guard envelope.serverID != serverID else { return }
        let target = envelope.target ?? ""
        switch envelope.kind {
        case "client":
            if let h = handle(ofID: target) { offer(to: h, event: envelope.event, data: envelope.data) }
        case "user":
            offer(to: users[target] ?? [], event: envelope.event, data: envelope.data)
        case "room":
            offer(to: rooms[target] ?? [], event: envelope.event, data: envelope.data, exclude: envelope.exclude)
        default:
            offer(to: audience, event: envelope.event, data: envelope.data, exclude: envelope.exclude)
        }
    }

    /// PROTOCOL.md 8: `serverId`, `type` and a non-empty `event` are strings; `target` a string
    /// (required but for broadcasts) or null; `exclude` an array of strings or null.
    static func readEnvelope(_ bytes: [UInt8])
        -> (serverID: String, kind: String, target: String?, event: String, data: JSONValue?, exclude: [String])? {
        guard let value = try? JSONValue.parse(bytes), case .object(let object) = value,
              case .string(let serverID)? = object["serverId"],
              case .string(let kind)? = object["type"], ["client", "user", "room", "broadcast"].contains(kind),
              case .string(let event)? = object["event"], !event.isEmpty
        else { return nil }
        var target: String?
        switch object["target"] {
        case nil, .null?: target = nil
        case .string(let text)?: target = text
        default: return nil
        }
        if kind != "broadcast" && target == nil { return nil }
        var exclude: [String] = []
        switch object["exclude"] {
        case nil, .null?: break
        case .array(let items)?:
            for item in items {
                guard case .string(let id) = item else { return nil }
                exclude.append(id)
            }
        default: return nil
        }
        return (serverID, kind, target, event, object["data"], exclude)
    }

    /// `{"event":...,"data":...}` as `JSON.stringify` writes it; no `data` key when absent.
    static func envelope(_ event: String, _ data: JSONValue?) -> String {
        "{\"event\":" + JSONValue.string(event).serialized() + (data.map { ",\"data\":" + $0.serialized() } ?? "") + "}"
    }
}
