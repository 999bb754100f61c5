extension Renderer {
    public static let protocolPath = "docs/protocol.md"

    // MARK: - docs/protocol.md

    /// The protocol reference for client authors, every part from the spec: connecting, the
    /// messages both ways, states and what each client event does in each, timers, close
    /// codes, errors, rooms, Redis and defaults.
    static func protocolMarkdown(_ spec: ProtocolSpec) -> String {
        var lines = markdownHead(spec, title: "Protocol reference") + [
            "",
            "What a client (or another server on the same Redis) sees on the wire. Everything here is",
            "generated from `\(spec.file)`; edit the spec and run `switchboard-gen generate`, do not edit",
            "this file. The full error table is [errors.md](errors.md); the state diagram is",
            "[states.mmd](states.mmd).",
        ]
        lines += connecting(spec)
        lines += messagesSection(spec)
        lines += statesSection(spec)
        lines += timersSection(spec)
        lines += closeCodesSection(spec)
        lines += errorsSection(spec)
        lines += roomsSection(spec)
        lines += redisSection(spec)
        lines += defaultsSection(spec)
        return file(lines)
    }

    static func defaultText(_ spec: ProtocolSpec, _ name: String) -> String? {
        guard let entry = spec.defaults.first(where: { $0.name == name }) else { return nil }
        return valueText(entry)
    }

    static func valueText(_ entry: DefaultSpec) -> String {
        switch entry.value {
        case .string(let text): "`\(text)`"
        case .strings(let texts): texts.isEmpty ? "none" : texts.map { "`\($0)`" }.joined(separator: ", ")
        case .int(let number): entry.type == .ms ? "\(number) ms" : "\(number)"
        case .bool(let flag): flag ? "true" : "false"
        }
    }

    /// The option name as the server's configuration spells it (`auth_timeout` -> `authTimeout`).
    static func option(_ name: String) -> String { "`\(Names.lowerCamel(name))`" }

    static func connecting(_ spec: ProtocolSpec) -> [String] {
        var lines = ["", "## Connecting", ""]
        let path = defaultText(spec, "path").map { " at path \($0) (option `path`)" } ?? ""
        lines.append("Open an RFC 6455 WebSocket\(path). Text and binary frames both carry the JSON messages below")
        lines.append("(binary is read as UTF-8); every frame the server receives, pings and pongs included, counts as activity.")
        if let limit = defaultText(spec, "max_payload_length"),
           let tooBig = spec.closeCodes.first(where: { $0.name == "message_too_big" }) {
            lines.append("A message longer than \(limit) bytes (option `maxPayloadLength`) closes the connection with `\(tooBig.code)`.")
        }
        if !spec.http.isEmpty {
            lines += ["", "A failed upgrade is answered over HTTP and the connection ends:", "",
                      "| Status | Body | When |", "|--------|------|------|"]
            for answer in spec.http {
                let when = [cell(answer.trigger), cell(answer.doc)].filter { !$0.isEmpty }.joined(separator: ". ")
                lines.append("| `\(answer.status)` | `\(cell(answer.body))` | \(when) |")
            }
        }
        if let initial = spec.states.first(where: \.initial) {
            lines += ["", "After the upgrade the client is `\(initial.wire)`: \(Names.oneLine(initial.doc))"]
        }
        return lines
    }

    // MARK: Messages

    /// `{"event":"connected","data":{"id","userId"?,"time"}}`: the members in order, `?` for
    /// the optional ones.
    static func shape(_ message: MessageSpec) -> String {
        let members = message.fields.map { "\"\($0.name)\"" + ($0.isOptional ? "?" : "") }.joined(separator: ", ")
        if message.from == .bus { return "{\(members)}" }
        if message.from == .kernel && message.event == "*" { return "{\"event\": <its event>, \"data\": <its data>, \(members)}" }
        let event = message.event == "*" ? "\"<any other name>\"" : "\"\(message.event ?? "")\""
        switch (message.data, message.fields.isEmpty) {
        case (.none, _): return "{\"event\": \(event)}"
        case (_, false): return "{\"event\": \(event), \"data\": {\(members)}}"
        default: return "{\"event\": \(event), \"data\": <\(message.data.words)>}"
        }
    }

    static func fieldTable(_ message: MessageSpec, _ spec: ProtocolSpec) -> [String] {
        guard !message.fields.isEmpty else {
            switch message.data {
            case .none: return ["", "No `data`."]
            case .any: return ["", "`data`: any JSON value, or left out."]
            default: return ["", "`data`: \(message.data.words)."]
            }
        }
        var lines = ["", "| Member | Type | Present | Meaning |", "|--------|------|---------|---------|"]
        for field in message.fields {
            var present: [String] = []
            if !field.inTypes.isEmpty { present.append("type " + field.inTypes.map { "`\($0)`" }.joined(separator: ", ")) }
            if let when = field.when { present.append("when \(cell(when))") }
            var meaning = cell(field.doc)
            switch field.values {
            case .list(let values)?:
                meaning += (meaning.isEmpty ? "" : " ") + "One of " + values.map { "`\($0)`" }.joined(separator: ", ") + "."
            case .errorMessages?:
                meaning += (meaning.isEmpty ? "" : " ") + "One of the messages under [Errors](#errors)."
            case nil:
                break
            }
            lines.append("| `\(field.name)` | \(field.type.words) | \(present.isEmpty ? "always" : present.joined(separator: ", ")) | \(meaning) |")
        }
        return lines
    }

    static func messagesSection(_ spec: ProtocolSpec) -> [String] {
        var lines = ["", "## Messages", "",
                     "Each WebSocket message is one JSON object: `{\"event\": NAME, \"data\": DATA, \"id\": ID}`. `data`",
                     "is optional, and so is `id` (the client's own correlation value, handed to the application).",
                     "The server writes `event` then `data`. Members marked `?` below may be left out; members are",
                     "written in the order shown."]
        let groups: [(String, [MessageSourceName], String)] = [
            ("Client events", [.client], "What a client sends."),
            ("Server events", [.kernel, .app], "What the server sends."),
        ]
        for (heading, sources, intro) in groups {
            let messages = spec.messages.filter { sources.contains($0.from) }
            if messages.isEmpty { continue }
            lines += ["", "### \(heading)", "", intro]
            for message in messages {
                let name = message.event != "*" ? "`\(message.event ?? message.name)`"
                    : message.from == .kernel ? "Any event: `\(message.name)`" : "Any other event"
                lines += ["", "#### \(name)", "", "`\(shape(message))`"]
                if !message.doc.isEmpty { lines += ["", Names.oneLine(message.doc)] }
                if message.from == .app { lines += ["", "Written by the application (not the protocol kernel)."] }
                lines += fieldTable(message, spec)
            }
        }
        return lines
    }

    // MARK: States

    /// What one row does that a client can see: an error, `connected`, a close, a new state.
    static func visible(_ row: TableRow, _ spec: ProtocolSpec) -> String {
        var parts: [String] = []
        for effect in row.effects {
            switch effect.kind {
            case .sendError:
                if let error = spec.errors.first(where: { $0.name == effect.argument }) { parts.append("`error` \"\(error.message)\"") }
            case .sendConnected:
                parts.append("`connected`")
            case .close:
                if let close = spec.closeCodes.first(where: { $0.name == effect.argument }) { parts.append("close `\(close.code)`") }
            case .call:
                if let hook = effect.argument { parts.append("calls `\(hook)`") }
            case .joinValidatedRooms:
                parts.append("joins the rooms")
            case .leaveRooms:
                parts.append("leaves the rooms")
            default:
                guard let declared = spec.effects.first(where: { $0.name == effect.kind.rawValue }), !declared.sends.isEmpty else { break }
                let sent = declared.sends.map { name in
                    let event = spec.messages.first { $0.name == name.name }?.event
                    return "`" + (event == nil || event == "*" ? name.name : event!) + "`"
                }
                parts.append(sent.joined(separator: " / ") + (declared.recipient == .room ? " to the room" : ""))
            }
        }
        if row.next != row.state, let next = spec.states.first(where: { $0.name == row.next }) {
            parts.append("-> `\(next.wire)`")
        }
        let text = parts.isEmpty ? "nothing" : parts.joined(separator: ", ")
        return row.when.isEmpty ? text : "\(text) (when " + row.when.map { "`\($0.text)`" }.joined(separator: ", ") + ")"
    }

    static func statesSection(_ spec: ProtocolSpec) -> [String] {
        var lines = ["", "## States", "",
                     "A client is in one state; several states may share a wire name.", "",
                     "| State | Wire name | Meaning |", "|-------|-----------|---------|"]
        for state in spec.states {
            var marks: [String] = []
            if state.initial { marks.append("initial") }
            if state.terminal { marks.append("terminal") }
            let name = "`\(state.name)`" + (marks.isEmpty ? "" : " (\(marks.joined(separator: ", ")))")
            lines.append("| \(name) | `\(state.wire)` | \(cell(state.doc)) |")
        }
        let live = spec.states.filter { !$0.terminal }
        let inputs = spec.inputs.filter { $0.group == .client }
        guard !live.isEmpty, !inputs.isEmpty else { return lines }
        lines += ["", "What the server does with each client message, by state (hooks and guards are named as in the spec):", "",
                  "| Message | " + live.map { "`\($0.name)`" }.joined(separator: " | ") + " |",
                  "|---------|" + live.map { _ in "---|" }.joined()]
        for input in inputs {
            let label = input.event.map { "`\($0)`" } ?? cell(input.doc)
            let cells = live.map { state in
                spec.rows(state: state.name, input: input.name).map { cell(visible($0, spec)) }.joined(separator: "; ")
            }
            lines.append("| \(label) | " + cells.joined(separator: " | ") + " |")
        }
        return lines
    }

    static func timersSection(_ spec: ProtocolSpec) -> [String] {
        guard !spec.timers.isEmpty else { return [] }
        var lines = ["", "## Timers", "", "Timers the server runs: per client (armed and cancelled by its state) and per",
                     "instance (from start to shutdown; each firing reaches every connected client):", "",
                     "| Timer | Scope | Runs for | Raises | Meaning |", "|-------|-------|----------|--------|---------|"]
        for timer in spec.timers {
            var duration = option(timer.after) + (timer.times == 1 ? "" : " × \(timer.times)")
            if !timer.until.isEmpty { duration = "until the client's `\(timer.until)`" }
            if let entry = spec.defaults.first(where: { $0.name == timer.after }), case .int(let ms) = entry.value {
                duration += " (default \(ms * Int64(timer.times)) ms)"
            }
            lines.append("| `\(timer.name)` | \(timer.scope.rawValue) | \(duration) | `\(timer.fires)` | \(cell(timer.doc)) |")
        }
        if let interval = defaultText(spec, "heartbeat_interval"), let timeout = defaultText(spec, "heartbeat_timeout") {
            lines += ["", "An authenticated client that sends nothing for longer than `heartbeatTimeout` (default \(timeout))",
                      "is closed by a sweep that runs every `heartbeatInterval` (default \(interval)); send `heartbeat`",
                      "(or anything else) more often than that."]
        }
        for limit in spec.limits {
            let states = limit.countsIn.compactMap { name in spec.states.first { $0.name == name.name }?.wire }
            let unique = states.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            lines += ["", "Limit `\(limit.name)`: a client in \(unique.map { "`\($0)`" }.joined(separator: ", ")) that sends more than",
                      "\(option(limit.max)) messages (default \(defaultText(spec, limit.max) ?? "?"); 0 = no limit) raises `\(limit.raises)`."
                      + (limit.doc.isEmpty ? "" : " \(Names.oneLine(limit.doc))")]
        }
        if let c = spec.connection {
            let closeNormal = spec.closeCodes.first { $0.origin == .codec && $0.code == 1000 }.map { " (`\($0.code)`)" } ?? ""
            lines += ["", "### The connection around the protocol", "",
                      "- The HTTP request head must arrive within \(option(c.upgradeTimeout)) (default \(defaultText(spec, c.upgradeTimeout) ?? "?"));"
                          + " otherwise the answer is `\(spec.http.first { $0.name == c.upgradeTimeoutAnswer }.map { "\($0.status)" } ?? c.upgradeTimeoutAnswer)`.",
                      "- A connection silent (no frame at all) for longer than \(option(c.idleTimeout)) (default \(defaultText(spec, c.idleTimeout) ?? "?"))"
                          + " is closed without a close frame; when \(option(c.ping)) is on, the server pings it once it has been silent for"
                          + " \(option(c.idleTimeout)) / \(c.pingDivisor). Answer pings (browsers do).",
                      "- A client's close frame is echoed with its code\(closeNormal), then the connection closes.",
                      "- Shutdown: the server stops accepting, answers requests still arriving with"
                          + " `\(spec.http.first { $0.name == c.shutdownPendingUpgradeAnswer }.map { "\($0.status)" } ?? c.shutdownPendingUpgradeAnswer)`,"
                          + " closes clients \(option(c.shutdownBatchSize)) (default \(defaultText(spec, c.shutdownBatchSize) ?? "?")) at a time every"
                          + " \(c.shutdownBatchInterval) ms, and waits up to \(option(c.shutdownGrace)) (default \(defaultText(spec, c.shutdownGrace) ?? "?"))"
                          + " for them to go. Reconnect with a random delay."]
        }
        return lines
    }

    static func closeCodesSection(_ spec: ProtocolSpec) -> [String] {
        guard !spec.closeCodes.isEmpty else { return [] }
        var lines = ["", "## Close codes", "",
                     "Reconnect is advice for client authors; the close frame carries only the code and reason.", "",
                     "| Code | Reason | When | Reconnect | Advice |", "|------|--------|------|-----------|--------|"]
        let closeAfter = closesAfterErrors(spec)
        for close in spec.closeCodes {
            let reason = close.reason.isEmpty ? "(none)" : cell(close.reason)
            var when = close.triggers.map { cell($0).withoutFinalPeriod }
            let errors = spec.errors.filter { (closeAfter[$0.name] ?? []).contains(close.name) }
            if !errors.isEmpty {
                when.append("after the `error` " + errors.map { "\"\(cell($0.message))\"" }.joined(separator: " or "))
            }
            if close.origin == .codec { when.append("raised by the WebSocket layer") }
            if close.origin == .request { when.append("chosen by the application's disconnect request") }
            lines.append("| `\(close.code)` | \(reason) | \(when.joined(separator: "; ")) | \(close.reconnect.words) | \(cell(close.advice)) |")
        }
        return lines
    }

    static func errorsSection(_ spec: ProtocolSpec) -> [String] {
        guard !spec.errors.isEmpty else { return [] }
        let closeAfter = closesAfterErrors(spec)
        var lines = ["", "## Errors", "",
                     "The `message` of an `error` event. The connection stays open unless a close follows.", "",
                     "| Message | When | Then |", "|---------|------|------|"]
        for error in spec.errors {
            let closes = (closeAfter[error.name] ?? []).compactMap { name in spec.closeCodes.first { $0.name == name } }
            let then = closes.isEmpty ? "stays open" : "close " + closes.map { "`\($0.code)`" }.joined(separator: " or ")
            lines.append("| `\(cell(error.message))` | \(cell(error.trigger)) | \(then) |")
        }
        return lines
    }

    static func roomsSection(_ spec: ProtocolSpec) -> [String] {
        guard let rooms = spec.rooms else { return [] }
        var lines = ["", "## Rooms", "",
                     "- A room name is a string of \(rooms.minLength) to \(rooms.maxLength) characters that does not start with `\(rooms.reservedPrefix)`;",
                     "  other names in `join` are dropped without a reply."]
        if let defaults = defaultText(spec, "default_rooms") {
            lines.append("- On `connected` a client is in the default rooms (\(defaults); option `defaultRooms`) and in a room named by its own id.")
        }
        lines.append("- A client leaves every room when it disconnects.")
        return lines
    }

    static func redisSection(_ spec: ProtocolSpec) -> [String] {
        guard let channels = spec.channels else { return [] }
        var lines = ["", "## Redis", "",
                     "Instances that share a Redis exchange envelopes by pub/sub, so a message reaches clients on every instance.", "",
                     "| Channel | Carries |", "|---------|---------|",
                     "| `\(channels.broadcast)` | envelopes of type `broadcast` |",
                     "| `\(channels.room)` | envelopes of type `room` |",
                     "| `\(channels.client)` | envelopes of type `client` |",
                     "| `\(channels.user)` | envelopes of type `user` |",
                     "",
                     "Every instance subscribes to " + channels.subscribe.map { "`\($0)`" }.joined(separator: ", ")
                         + " and pattern-subscribes to " + channels.psubscribe.map { "`\($0)`" }.joined(separator: ", ") + ".",
                     "A publisher outside the servers (the emitter) uses the serverId `\(channels.emitterServerID)`."]
        if let room = channels.presenceRoom, let instance = channels.presenceInstance {
            lines += ["", "### Presence keys", "",
                      "Rooms with presence (`presenceRooms`) keep their members in Redis beside the channels above, in keys",
                      "the original gateway never touches:", "",
                      "| Key | Holds |", "|-----|-------|",
                      "| `\(room)` | a hash: one field per client id in the room, its value the instance's serverId, a newline, and the member's JSON (`{clientId, userId?, metadata?}`) |",
                      "| `\(instance)` | an instance's heartbeat, set with a time to live of `presenceTtl` and refreshed every third of it |",
                      "",
                      "A `presence` query lists the fields whose instance still has its heartbeat key and deletes the others:",
                      "a killed instance's members disappear at most `presenceTtl` after its last refresh.",
                      "Join and leave events travel as ordinary `room` envelopes on the room's channel."]
        }
        if let stream = channels.historyStream, let meta = channels.historyMeta {
            lines += ["", "### History keys", "",
                      "Rooms with history (`historyRooms`) keep their messages in Redis beside the channels above, in keys",
                      "the original gateway never touches:", "",
                      "| Key | Holds |", "|-----|-------|",
                      "| `\(stream)` | a stream: one entry per message (fields `o`, its offset, and `m`, its `{\"event\", \"data\"}` JSON), trimmed to about `historySize` entries, expiring `historyTtl` after the last message |",
                      "| `\(meta)` | a hash: `epoch` (random, set once with HSETNX) and `offset` (the last one given), expiring `historyEpochTtl` after the last message or join |",
                      "",
                      "One script per message gives it the next offset, adds it to the stream and publishes the room envelope",
                      "with `offset` and `epoch` (so every instance, the publishing one included, delivers it in Redis's order",
                      "with the same offset). A Redis restart or flush loses the hash: the next message or join draws a new",
                      "epoch, and a client recovering with the old one is told `epoch_changed`."]
        }
        for envelope in spec.messages where envelope.from == .bus {
            lines += ["", "### The envelope", "", "`\(shape(envelope))`"]
            if !envelope.doc.isEmpty { lines += ["", Names.oneLine(envelope.doc)] }
            lines += fieldTable(envelope, spec)
        }
        return lines
    }

    static func defaultsSection(_ spec: ProtocolSpec) -> [String] {
        guard !spec.defaults.isEmpty else { return [] }
        var lines = ["", "## Defaults", "", "The options that shape the protocol, named as `ProtocolDefaults` names them, and their defaults:", "",
                     "| Option | Default |", "|--------|---------|"]
        for entry in spec.defaults {
            lines.append("| \(option(entry.name)) | \(valueText(entry)) |")
        }
        return lines
    }
}
