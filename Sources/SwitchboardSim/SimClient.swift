import Switchboard
import SwitchboardCodec
import SwitchboardCrypto

/// A simulated WebSocket client: it speaks real RFC 6455 bytes (upgrade request, masked
/// frames), answers pings and closes, and checks what it reads.
final class SimClient {
    let index: Int
    let plan: ClientPlan
    var rng: SimRandom
    /// Decisions of the app's hooks about this client (validateRoomFn, callbacks).
    var hookRNG: SimRandom
    var conn: ConnectionID?
    let key: String

    var reader = FrameReader()
    var upgraded = false
    /// Frames written before the 101 arrived (a client waits for the handshake).
    var pending: [(bytes: [UInt8], item: SentItem?)] = []
    var stalledUntil: Int64 = -1
    var unread: [[UInt8]] = []
    var unreadBytes = 0
    var pendingEOF = false

    var done = false
    var refused = false
    var sentClose = false
    var sentViolation = false
    var resetByClient = false
    var resetByServer = false
    var gotEOF = false
    var httpStatus: Int?
    var closeFrame: (code: UInt16?, reason: String)?
    var sawConnected = false
    var wireID: String?
    var seq = 0
    var lastSeq: [String: Int] = [:]
    var messagesRead = 0
    var tagsRead: [String] = []
    /// The message `fragment` actions are building.
    var fragmentText: [UInt8] = []

    init(index: Int, plan: ClientPlan, seed: UInt64) {
        self.index = index
        self.plan = plan
        var rng = SimRandom(seed: seed, domain: 7, index: UInt64(index))
        var keyBytes: [UInt8] = []
        for _ in 0..<16 { keyBytes.append(UInt8(truncatingIfNeeded: rng.next())) }
        self.key = Base64.encode(keyBytes)
        self.rng = rng
        self.hookRNG = SimRandom(seed: seed, domain: 8, index: UInt64(index))
    }

    var name: String { "c\(index)" }

    func socket(_ world: SimWorld) -> Socket? { conn.flatMap { world.sockets[$0] } }

    // MARK: - Writing

    func opened(world: SimWorld) {
        guard let socket = socket(world) else { return }
        var request = ClientWire.upgradeRequest(plan.upgrade, path: world.config.options.path, key: key)
        if plan.upgrade == .slow { request = Array(request.prefix(request.count / 2)) }
        world.clientWrite(socket, request, item: plan.upgrade == .slow ? nil : .upgrade(plan.upgrade))
        for (offset, timed) in plan.actions.enumerated() {
            world.push(.clientAction(client: index, index: offset), at: timed.at, lane: SimWorld.clientLane(index))
        }
    }

    private func send(_ bytes: [UInt8], item: SentItem?, world: SimWorld) {
        guard let socket = socket(world) else { return }
        if upgraded || (plan.pipelines && pending.isEmpty) {
            world.clientWrite(socket, bytes, item: item)
        } else {
            pending.append((bytes, item))
        }
    }

    private func mask() -> UInt32 { UInt32(truncatingIfNeeded: rng.next()) }

    /// A text (or binary, or fragmented) message carrying `json`.
    private func sendMessage(_ text: [UInt8], _ inbound: Inbound, world: SimWorld) {
        var bytes: [UInt8] = []
        let opcode: UInt8 = rng.chance(plan.binaryChance) ? 0x2 : 0x1
        let limit = world.config.options.maxPayloadLength
        if text.count > limit {
            // Refused from a header (1009): the server acts once the length has arrived. Split,
            // the first fragment fits and the continuation's length is the one refused.
            if limit > 0, rng.chance(plan.fragmentChance) {
                ClientWire.frame(opcode: opcode, payload: Array(text[..<limit]), fin: false, mask: mask(), into: &bytes)
                let first = bytes.count
                ClientWire.frame(opcode: 0x0, payload: Array(text[limit...]), mask: mask(), into: &bytes)
                sendViolation(bytes, .tooBig, from: first, world: world)
            } else {
                ClientWire.frame(opcode: opcode, payload: text, mask: mask(), into: &bytes)
                sendViolation(bytes, .tooBig, world: world)
            }
            return
        }
        var items: [(Int, SentItem)] = []
        if text.count > 2, rng.chance(plan.fragmentChance) {
            let cut = rng.int(1...(text.count - 1))
            ClientWire.frame(opcode: opcode, payload: Array(text[..<cut]), fin: false, mask: mask(), into: &bytes)
            items.append((bytes.count, .fragment))
            if rng.chance(0.3) {
                ClientWire.frame(opcode: 0x9, payload: Array("mid".utf8), mask: mask(), into: &bytes)
                items.append((bytes.count, .ping))
            }
            ClientWire.frame(opcode: 0x0, payload: Array(text[cut...]), mask: mask(), into: &bytes)
        } else {
            ClientWire.frame(opcode: opcode, payload: text, mask: mask(), into: &bytes)
        }
        items.append((bytes.count, .message(inbound)))
        // Items end inside these bytes: write the pieces so each item ends at its offset.
        var start = 0
        for (end, item) in items {
            send(Array(bytes[start..<end]), item: item, world: world)
            start = end
        }
    }

    private func sendJSON(_ event: String, _ data: JSONValue?, _ inbound: Inbound, world: SimWorld) {
        var members: [(key: String, value: JSONValue)] = [("event", .string(event))]
        if let data { members.append(("data", data)) }
        var text: [UInt8] = []
        JSONValue.object(JSONObject(members)).serialize(into: &text)
        sendMessage(text, inbound, world: world)
    }

    func perform(_ offset: Int, world: SimWorld) -> String {
        let action = plan.actions[offset].action
        guard !done, !sentClose, !sentViolation, conn != nil, plan.upgrade == .normal else { return "\(name) skip \(action.label)" }
        switch action {
        case .authenticate(let script):
            var data: [(key: String, value: JSONValue)] = [("sim", JSONValue(index))]
            switch script.outcome {
            case .ok(let user):
                data.append(("auth", "ok"))
                if let user { data.append(("user", .string(user))) }
            case .reject: data.append(("auth", "reject"))
            case .falseValue: data.append(("auth", "false"))
            case .fail: data.append(("auth", "throw"))
            }
            data.append(("lat", JSONValue(Int(script.latency))))
            switch script.handshake {
            case .ok: data.append(("hs", "ok"))
            case .reject: data.append(("hs", "reject"))
            case .fail: data.append(("hs", "throw"))
            }
            data.append(("hsLat", JSONValue(Int(script.handshakeLatency))))
            data.append(("publicKey", .string("cpk-\(index)")))
            let value = JSONValue.object(JSONObject(data))
            sendJSON("authenticate", value, .authenticate(value), world: world)
        case .heartbeat:
            sendJSON("heartbeat", nil, .heartbeat, world: world)
        case .join(let rooms):
            let data: JSONValue = ["rooms": .array(rooms.map(JSONValue.string))]
            sendJSON("join", data, .join(data), world: world)
        case .joinMalformed:
            let data: JSONValue = ["rooms": "r0"]
            sendJSON("join", data, .join(data), world: world)
        case .leave(let rooms):
            // `$self` names the client's own id room (PROTOCOL.md 5 joins it at admission).
            let names = rooms.map { $0 == "$self" ? (wireID ?? "unknown") : $0 }
            let data: JSONValue = ["rooms": .array(names.map(JSONValue.string))]
            sendJSON("leave", data, .leave(data), world: world)
        case .app(let kind, let pad):
            seq += 1
            let tag = Tag(from: name, seq: seq)
            var body = tag.json
            if pad > 0, case .object(var object) = body {
                object["pad"] = .string(String(repeating: "p", count: pad))
                body = .object(object)
            }
            switch kind {
            case .broadcast:
                sendJSON("broadcast", body, .app(.broadcast, tag), world: world)
            case .echo:
                sendJSON("echo", body, .app(.echo, tag), world: world)
            case .toRoom(let room):
                sendJSON("to-room", ["room": .string(room), "data": body], .app(.room(room), tag), world: world)
            case .toUser(let user):
                sendJSON("to-user", ["userId": .string(user), "data": body], .app(.user(user), tag), world: world)
            case .toClient(let peer):
                let id = peer.flatMap { $0 < world.clients.count ? world.clients[$0].wireID : nil } ?? "nobody-\(index)"
                sendJSON("to-client", ["id": .string(id), "data": body], .app(.client(id), tag), world: world)
            }
        case .custom(let event):
            sendJSON(event, 1, .custom(event), world: world)
        case .invalidJSON:
            sendMessage(Array("{oops".utf8), .invalidJSON, world: world)
        case .noEvent(let text):
            sendMessage(Array(text.utf8), .noEvent, world: world)
        case .ping:
            var bytes: [UInt8] = []
            ClientWire.frame(opcode: 0x9, payload: Array(name.utf8), mask: mask(), into: &bytes)
            send(bytes, item: .ping, world: world)
        case .fragment(let text, let last):
            var bytes: [UInt8] = []
            let first = fragmentText.isEmpty
            fragmentText += Array(text.utf8)
            ClientWire.frame(opcode: first ? 0x1 : 0x0, payload: Array(text.utf8), fin: last, mask: mask(), into: &bytes)
            if last {
                send(bytes, item: .message(Self.classify(fragmentText)), world: world)
                fragmentText = []
            } else {
                send(bytes, item: .fragment, world: world)
            }
        case .stall(let length):
            stalledUntil = max(stalledUntil, world.now + length)
            world.push(.stallEnd(client: index), at: stalledUntil, lane: SimWorld.clientLane(index))
        case .violation(let violation):
            var bytes: [UInt8] = []
            switch violation {
            case .unmasked:
                ClientWire.frame(opcode: 0x1, payload: Array(#"{"event":"heartbeat"}"#.utf8), mask: nil, into: &bytes)
            case .reservedOpcode:
                ClientWire.frame(opcode: 0x3, payload: [1, 2, 3], mask: mask(), into: &bytes)
            case .invalidUTF8:
                ClientWire.frame(opcode: 0x1, payload: [0x22, 0xC3, 0x28, 0x22], mask: mask(), into: &bytes)
            case .tooBig:
                let size = world.config.options.maxPayloadLength + 1
                ClientWire.frame(opcode: 0x1, payload: Array(repeating: 0x20, count: size), mask: mask(), into: &bytes)
            }
            sendViolation(bytes, violation, world: world)
        case .close(let code):
            sendClose(code, world: world)
        case .reset:
            reset(world: world)
        }
        return "\(name) \(action.label)"
    }

    /// A frame the server must refuse: the item ends at the byte that shows the violation.
    private func sendViolation(_ bytes: [UInt8], _ violation: Violation, from start: Int = 0, world: SimWorld) {
        sentViolation = true
        let header: Int = switch violation {
        case .unmasked, .reservedOpcode: 2
        case .tooBig: bytes[start + 1] & 0x7F == 126 ? 4 : (bytes[start + 1] & 0x7F == 127 ? 10 : 2)
        case .invalidUTF8: 9  // header (6), then `"` and the lead byte; the next byte is not a continuation
        }
        let shown = start + header
        send(Array(bytes[..<shown]), item: .violation(violation), world: world)
        send(Array(bytes[shown...]), item: nil, world: world)
    }

    func performFinal(world: SimWorld) -> String {
        guard !done, !sentClose, !sentViolation, conn != nil, plan.upgrade == .normal else { return "\(name) final skip" }
        switch plan.finalAction {
        case .close(let code): sendClose(code, world: world)
        case .stay: sendClose(1000, world: world)
        case .reset: reset(world: world)
        }
        return "\(name) final \(plan.finalAction)"
    }

    private func sendClose(_ code: UInt16?, world: SimWorld) {
        guard !sentClose else { return }
        sentClose = true
        var bytes: [UInt8] = []
        ClientWire.frame(opcode: 0x8, payload: ClientWire.closePayload(code, reason: code == nil ? "" : "bye"), mask: mask(), into: &bytes)
        send(bytes, item: .close(code), world: world)
    }

    private func reset(world: SimWorld) {
        guard let socket = socket(world), !done else { return }
        done = true
        resetByClient = true
        if !upgraded { pending.removeAll() }
        world.clientFinish(socket)
    }

    /// What a message the client assembled by hand means (PROTOCOL.md 4's order).
    static func classify(_ text: [UInt8]) -> Inbound {
        guard let value = try? JSONValue.parse(text) else { return .invalidJSON }
        guard let event = value["event"]?.stringValue, !event.isEmpty else { return .noEvent }
        switch event {
        case "heartbeat": return .heartbeat
        case "authenticate": return .authenticate(value["data"] ?? [:])
        case "join": return .join(value["data"])
        case "leave": return .leave(value["data"])
        default: return .custom(event)
        }
    }

    // MARK: - Reading

    func stallEnded(world: SimWorld) -> String {
        guard world.now >= stalledUntil else { return "\(name) stall goes on" }
        let chunks = unread
        unread = []
        unreadBytes = 0
        for chunk in chunks { read(chunk, world: world) }
        if pendingEOF {
            pendingEOF = false
            receiveEOF(world: world)
        }
        if let socket = socket(world) { world.clientConsumed(socket) }
        return "\(name) reads again (\(chunks.count) chunks)"
    }

    func receive(_ bytes: [UInt8], world: SimWorld) {
        guard !resetByClient, !resetByServer, !gotEOF else { return }
        if world.now < stalledUntil {
            unread.append(bytes)
            unreadBytes += bytes.count
            return
        }
        read(bytes, world: world)
        if let socket = socket(world) { world.clientConsumed(socket) }
    }

    private func read(_ bytes: [UInt8], world: SimWorld) {
        var events: [FrameReader.Event] = []
        reader.feed(bytes, into: &events)
        for event in events { handle(event, world: world) }
    }

    private func handle(_ event: FrameReader.Event, world: SimWorld) {
        switch event {
        case .http(let status, let accept):
            httpStatus = status
            if status == 101 {
                if accept != webSocketAccept(key: key) { world.record("\(name) got a wrong Sec-WebSocket-Accept \(accept ?? "none")") }
                upgraded = true
                let queued = pending
                pending = []
                if let socket = socket(world) {
                    for (bytes, item) in queued { world.clientWrite(socket, bytes, item: item) }
                }
            }
        case .text(let payload), .binary(let payload):
            if closeFrame != nil { world.record("\(name) read a message after the close frame") }
            messagesRead += 1
            checkMessage(payload, world: world)
        case .ping(let payload):
            guard closeFrame == nil, !sentClose, !resetByClient, let socket = socket(world) else { return }
            var bytes: [UInt8] = []
            ClientWire.frame(opcode: 0xA, payload: payload, mask: mask(), into: &bytes)
            world.clientWrite(socket, bytes, item: .pong)
        case .pong:
            break
        case .close(let code, let reason):
            closeFrame = (code, reason)
            world.stats.closes[code.map { String($0) } ?? "none", default: 0] += 1
            if !sentClose, !resetByClient, let socket = socket(world) {
                // RFC 6455 5.5.1: answer with a close frame (the server ignores it).
                sentClose = true
                var bytes: [UInt8] = []
                ClientWire.frame(opcode: 0x8, payload: ClientWire.closePayload(code), mask: mask(), into: &bytes)
                world.clientWrite(socket, bytes, item: .close(code))
            }
        case .malformed(let why):
            world.record("\(name) read malformed bytes from the server: \(why)")
        }
    }

    /// Client-side rules on what arrives: nothing but `error` before `connected`, no message
    /// twice, and each sender's messages in order.
    private func checkMessage(_ payload: [UInt8], world: SimWorld) {
        guard let value = try? JSONValue.parse(payload), let event = value["event"]?.stringValue else {
            world.record("\(name) read a message that is not a JSON envelope: \(String(decoding: payload.prefix(80), as: UTF8.self))")
            return
        }
        var inner = value
        if event == "encrypted", let wrapped = value["data"]?["wrapped"] { inner = wrapped }
        let innerEvent = inner["event"]?.stringValue ?? event
        if innerEvent == "connected" {
            if sawConnected { world.record("\(name) read `connected` twice") }
            sawConnected = true
            wireID = inner["data"]?["id"]?.stringValue
            return
        }
        if !sawConnected, innerEvent != "error" {
            world.record("\(name) read `\(innerEvent)` before `connected`")
        }
        guard innerEvent != "error" else { return }
        let data = inner["data"]
        guard let tag = Tag(data) else { return }
        if let last = lastSeq[tag.from], last >= tag.seq {
            world.record("\(name) read \(tag) after \(tag.from)/\(last): \(last == tag.seq ? "duplicate" : "out of order")")
        }
        lastSeq[tag.from] = tag.seq
        tagsRead.append(tag.description)
    }

    func receiveEOF(world: SimWorld) {
        guard !resetByClient, !resetByServer, !gotEOF else { return }
        if world.now < stalledUntil {
            pendingEOF = true
            return
        }
        gotEOF = true
        done = true
        if let socket = socket(world) { world.clientFinish(socket) }
    }

    func receiveReset(world: SimWorld) {
        guard !resetByClient, !gotEOF else { return }
        resetByServer = true
        done = true
        unread = []
        unreadBytes = 0
    }
}
