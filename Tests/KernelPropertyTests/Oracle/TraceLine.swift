import SwitchboardJSON
import SwitchboardKernel

/// One observable thing as text: an effect, a line of a state snapshot, or an input. The kernel's
/// effects are rendered here; the reference model writes the same format directly. Golden traces
/// are files of these lines.
struct TraceLine: Equatable, CustomStringConvertible {
    /// The client the line is about (nil: none, or several), for `canonical`.
    var client: UInt64?
    var text: String
    /// The model expects only this prefix (it does not predict the rest, e.g. a parse error's wording).
    var prefix = false

    init(_ client: UInt64?, _ text: String, prefix: Bool = false) {
        self.client = client
        self.text = text
        self.prefix = prefix
    }

    var description: String { prefix ? text + "…" : text }

    static func log(_ level: String, _ client: UInt64?, _ text: String) -> TraceLine {
        TraceLine(client, "log \(level) \(client.map { "#\($0)" } ?? "-") \(text)")
    }

    static func json(_ value: JSONValue?) -> String { value?.serialized() ?? "-" }

    /// Whether the model's `expected` line accepts the kernel's `actual` one.
    static func accepts(_ expected: TraceLine, _ actual: TraceLine) -> Bool {
        expected.prefix ? actual.text.hasPrefix(expected.text) : expected.text == actual.text
    }

    // MARK: - Kernel effects

    /// The kernel's effects as lines; a fan-out stays one line (`fan-out #1,#2 {...}`).
    static func render(_ effects: [Effect]) -> [TraceLine] {
        effects.flatMap { render($0, expandFanOut: false) }
    }

    static func render(_ effect: Effect, expandFanOut: Bool) -> [TraceLine] {
        func who(_ client: String, _ user: String?) -> String { "client \(client) user \(user ?? "-")" }
        switch effect {
        case .send(let h, let payload):
            return [TraceLine(h.rawValue, "send \(h) \(payload)")]
        case .fanOut(let handles, let payload):
            if handles.isEmpty { return [TraceLine(nil, "fan-out to nobody \(payload)")] }
            if expandFanOut { return handles.map { TraceLine($0.rawValue, "send \($0) \(payload)") } }
            return [TraceLine(nil, "fan-out \(handles.map(\.description).joined(separator: ",")) \(payload)")]
        case .sendTransformed(let h, let event, let data):
            return [TraceLine(h.rawValue, "transformed \(h) \(event) \(json(data))")]
        case .close(let h, let code):
            return [TraceLine(h.rawValue, "close \(h) \(code.code) \(code.reason)")]
        case .armTimer(let timer, let deadline):
            return [TraceLine(owner(timer), "arm \(timer) deadline \(deadline)")]
        case .cancelTimer(let timer):
            return [TraceLine(owner(timer), "cancel \(timer)")]
        case .callAuthenticate(let h, let attempt, let data):
            return [TraceLine(h.rawValue, "call authenticate \(h) attempt \(attempt.rawValue) data \(data.serialized())")]
        case .callHandshake(let h, let attempt, let client, let user, let data):
            return [TraceLine(h.rawValue, "call handshake \(h) attempt \(attempt.rawValue) \(who(client, user)) data \(data.serialized())")]
        case .callValidateRoom(let h, let attempt, let client, let user, let rooms):
            let list = JSONValue.array(rooms.map(JSONValue.string)).serialized()
            return [TraceLine(h.rawValue, "call validate_room \(h) attempt \(attempt.rawValue) \(who(client, user)) rooms \(list)")]
        case .callRefresh(let h, let attempt, let client, let user, let data):
            return [TraceLine(h.rawValue, "call refresh \(h) attempt \(attempt.rawValue) \(who(client, user)) data \(data.serialized())")]
        case .callMessageHandler(let h, let client, let user, let message):
            return [TraceLine(h.rawValue, "call message_handler \(h) \(who(client, user)) event \(message.event) data \(json(message.data)) id \(json(message.id))")]
        case .callRPC(let h, let client, let user, let call):
            return [TraceLine(h.rawValue, "call rpc \(h) \(who(client, user)) event \(call.event) data \(json(call.data)) id \(json(call.id))")]
        case .callPublish(let h, let client, let user, let room, let data):
            return [TraceLine(h.rawValue, "call publish \(h) \(who(client, user)) room \(room) data \(json(data))")]
        case .callClientConnected(let h, let client, let user, let metadata):
            return [TraceLine(h.rawValue, "call client_connected \(h) \(who(client, user)) metadata \(json(metadata))")]
        case .callClientDisconnected(let h, let client, let user):
            return [TraceLine(h.rawValue, "call client_disconnected \(h) \(who(client, user))")]
        case .publish(let channel, let message):
            return [TraceLine(nil, "publish \(channel) \(String(decoding: message, as: UTF8.self))")]
        case .log(let level, let text, let h):
            return [log("\(level)", h?.rawValue, text)]
        case .released(let h):
            return [TraceLine(h.rawValue, "released \(h)")]
        case .presenceChanged(let room, let member, let joined):
            return [TraceLine(nil, "presence \(joined ? "join" : "leave") \(room) \(member.json.serialized())")]
        case .queryPresence(let h, let client, let room, let local):
            return [TraceLine(h.rawValue, "query presence \(h) client \(client) room \(room) local \(JSONValue.array(local.map(\.json)).serialized())")]
        case .appendHistory(let append):
            return [TraceLine(nil, "append history \(append.room) \(String(decoding: append.message, as: UTF8.self))")]
        case .readHistory(let h, let request, let room, let since):
            return [TraceLine(h.rawValue, "read history \(h) request \(request) room \(room) since \(since.map { "\($0.offset)@\($0.epoch)" } ?? "none")")]
        case .queryHistory(let h, let client, let query):
            return [TraceLine(h.rawValue, "query history \(h) client \(client) room \(query.room) limit \(query.limit) since \(query.since.map { "\($0.offset)@\($0.epoch)" } ?? "none")")]
        }
    }

    static func owner(_ timer: TimerID) -> UInt64? {
        if case .client(let h, _) = timer.owner { h.rawValue } else { nil }
    }

    /// The form both sides are compared in. The order in which several clients are served is
    /// not part of the protocol: fan-outs become one `send` per recipient, and each run of
    /// lines about single clients is ordered by client, keeping every client's own lines in
    /// their order. Returns the lines and any client whose lines were not contiguous in a run.
    static func canonical(_ lines: [TraceLine]) -> (lines: [TraceLine], interleaved: [UInt64]) {
        var result: [TraceLine] = []
        var interleaved: [UInt64] = []
        var run: [TraceLine] = []
        func flush() {
            var seen: [UInt64] = []
            for line in run {
                guard let client = line.client else { continue }
                if seen.last != client {
                    if seen.contains(client) { interleaved.append(client) }
                    seen.append(client)
                }
            }
            result += run.enumerated().sorted { ($0.element.client!, $0.offset) < ($1.element.client!, $1.offset) }.map(\.element)
            run = []
        }
        for line in lines {
            if line.client == nil {
                flush()
                result.append(line)
            } else {
                run.append(line)
            }
        }
        flush()
        return (result, interleaved)
    }

    // MARK: - Snapshots

    /// Every client, room, user and armed timer of the kernel, through its public queries.
    static func snapshot(of kernel: Kernel) -> [String] {
        var lines = kernel.clientHandles.sorted().compactMap { kernel.client($0) }.map { info in
            client(info.handle.rawValue, id: info.id, state: info.state.specName, user: info.userID,
                   metadata: info.metadata, encrypted: info.encrypted, rooms: info.rooms, lastActivity: info.lastActivity)
        }
        lines += kernel.roomNames.map { "room \($0): \(kernel.members(ofRoom: $0).joined(separator: ","))" }
        lines += kernel.userIDs.map { "user \($0): \(kernel.clients(ofUser: $0).joined(separator: ","))" }
        lines.append("authenticated \(kernel.authenticatedCount)")
        lines.append("timers " + kernel.armedTimers.map(\.description).sorted().joined(separator: ","))
        lines.append("shut down \(kernel.isShutDown)")
        return lines
    }

    /// The same view of the model.
    static func snapshot(of model: ReferenceModel) -> [String] {
        var lines = model.clients.keys.sorted().map { h in
            let c = model.clients[h]!
            return client(h, id: c.id, state: c.state, user: c.userID, metadata: c.metadata, encrypted: c.encrypted,
                          rooms: c.rooms.sorted(), lastActivity: c.lastActivity)
        }
        func ids(_ handles: Set<UInt64>) -> String { handles.compactMap { model.clients[$0]?.id }.sorted().joined(separator: ",") }
        lines += model.rooms.keys.sorted().map { "room \($0): \(ids(model.rooms[$0]!))" }
        lines += model.users.keys.sorted().map { "user \($0): \(ids(model.users[$0]!))" }
        lines.append("authenticated \(model.audience.count)")
        var timers = model.clients.values.flatMap { c in c.timers.map { "\($0.key)#\(c.handle)@\($0.value)" } }
        if let sweep = model.sweepGeneration { timers.append("heartbeat_sweep@\(sweep)") }
        lines.append("timers " + timers.sorted().joined(separator: ","))
        lines.append("shut down \(model.isShutDown)")
        return lines
    }

    static func client(_ h: UInt64, id: String, state: String, user: String?, metadata: JSONValue?, encrypted: Bool,
                       rooms: [String], lastActivity: Int64) -> String {
        "client #\(h) \(id) \(state) user \(user ?? "-") metadata \(json(metadata))\(encrypted ? " encrypted" : "")"
            + " rooms [\(rooms.joined(separator: ","))] active \(lastActivity)"
    }
}
