import SwitchboardJSON

/// Which local clients get a message, and what goes to the bus (PROTOCOL.md 7-8).
extension Kernel {
    /// One message to one client: the shared payload, or the transformer for an encrypted client.
    func send(to record: ClientRecord, event: String, data: JSONValue?, payload: Payload,
              into out: inout [Effect]) {
        if record.encrypted && settings.outboundTransformerConfigured {
            out.append(.sendTransformed(record.handle, event: event, data: data))
        } else {
            out.append(.send(record.handle, payload))
        }
    }

    mutating func deliver(_ delivery: Delivery, into out: inout [Effect]) {
        switch delivery {
        case .toClient(let id, let event, let data):
            sendToClient(id, event: event, data: data, into: &out)
        case .toUser(let userID, let event, let data):
            sendToUser(userID, event: event, data: data, into: &out)
        case .toRoom(let room, let event, let data, let exclude):
            if hasHistory(room) {
                return recordHistory(room: room, event: event, data: data, exclude: exclude, publish: false, into: &out)
            }
            if let members = rooms[room] {
                fanOut(members, event: event, data: data, exclude: exclude, into: &out)
            }
        case .broadcast(let event, let data, let exclude):
            fanOut(audience, event: event, data: data, exclude: exclude, into: &out)
        case .send(let destination, let topic, let data):
            // PROTOCOL.md 7: without a topic or without data (absent, not `null`) it does nothing.
            guard !topic.isEmpty, let data else { return }
            let envelope: BusEnvelope
            if let destination {
                if byID[destination] != nil {
                    sendToClient(destination, event: topic, data: data, into: &out)
                    envelope = BusEnvelope(serverID: serverID, kind: .client, target: destination, event: topic, data: data)
                } else {
                    if hasHistory(destination) {
                        return recordHistory(room: destination, event: topic, data: data, exclude: [], publish: true, into: &out)
                    }
                    if let members = rooms[destination] {
                        fanOut(members, event: topic, data: data, exclude: [], into: &out)
                    }
                    envelope = BusEnvelope(serverID: serverID, kind: .room, target: destination, event: topic, data: data)
                }
            } else {
                fanOut(audience, event: topic, data: data, exclude: [], into: &out)
                envelope = BusEnvelope(serverID: serverID, kind: .broadcast, event: topic, data: data)
            }
            out.append(.publish(channel: envelope.channel, message: envelope.encoded()))
        case .publish(let envelope):
            if envelope.kind == .room, envelope.offset == nil, let room = envelope.target, hasHistory(room) {
                return recordHistory(room: room, event: envelope.event, data: envelope.data, exclude: envelope.exclude ?? [],
                                     publish: true, into: &out)
            }
            out.append(.publish(channel: envelope.channel, message: envelope.encoded()))
        }
    }

    /// The live record with this wire id; the last sender is checked first (a reply).
    func record(id: String) -> ClientRecord? {
        if let sender = lastSender, sender.id == id { return sender }
        guard let handle = byID[id] else { return nil }
        return clients[handle]
    }

    /// Whether a client receives is its state's delivery row (`ClientState.receivesDeliveries`).
    mutating func sendToClient(_ id: String, event: String, data: JSONValue?, into out: inout [Effect]) {
        guard let record = self.record(id: id), record.state.receivesDeliveries else { return }
        // Not inline in the call below: that would hold a copy of `self` (and of the spare).
        let payload = replyPayload(event: event, data: data)
        send(to: record, event: event, data: data, payload: payload, into: &out)
    }

    /// The payload of a message to one client. The previous one is refilled if nothing holds it
    /// any more (its effect was performed and dropped): no allocation per reply.
    ///
    /// Contract with the driver: a payload is "held" only by an effect not yet performed, or by
    /// what the driver keeps on purpose (a queued frame). The engine's executor moves each effect
    /// out of its array and leaves a payload-free sentinel in the slot
    /// (`EffectExecutor.performed`), so a performed reply does not keep this payload alive; a
    /// driver that keeps effects around simply gets a fresh payload each time (never a refilled
    /// one it still holds: the uniqueness check sees its reference).
    mutating func replyPayload(event: String, data: JSONValue?) -> Payload {
        if isKnownUniquelyReferenced(&spareReply), let payload = spareReply {
            payload.refill(event: event, data: data)
            return payload
        }
        let payload = Payload(event: event, data: data)
        spareReply = payload
        return payload
    }

    mutating func sendToUser(_ userID: String, event: String, data: JSONValue?, into out: inout [Effect]) {
        guard let members = users[userID] else { return }
        var plain: [ClientHandle] = []
        for handle in members.members {
            guard let record = clients[handle], record.state.receivesDeliveries else { continue }
            if record.encrypted && settings.outboundTransformerConfigured {
                out.append(.sendTransformed(handle, event: event, data: data))
            } else {
                plain.append(handle)
            }
        }
        guard !plain.isEmpty else { return }
        let payload = Payload(event: event, data: data)
        out.append(plain.count == 1 ? .send(plain[0], payload) : .fanOut(plain, payload))
    }

    /// Encode once, hand the same bytes to every plain member; encrypted members go through the
    /// transformer one by one.
    func fanOut(_ members: RoomMembers, event: String, data: JSONValue?, exclude: [String],
                into out: inout [Effect]) {
        let recipients: [ClientHandle]
        if exclude.isEmpty {
            // Shared storage, no copy per publish. The engine batches consecutive small fan-outs to
            // the same audience by recognising this buffer's address (`FanOutBatch.hasRecipients`):
            // an unchanged room hands out the same array until a member joins or leaves.
            recipients = members.plain.members
        } else {
            let excluded = Set(exclude.compactMap { byID[$0] })
            recipients = members.plain.members.filter { !excluded.contains($0) }
        }
        if !recipients.isEmpty {
            out.append(.fanOut(recipients, Payload(event: event, data: data)))
        }
        if !members.encrypted.isEmpty {
            let excluded = Set(exclude.compactMap { byID[$0] })
            for handle in members.encrypted.members where !excluded.contains(handle) {
                if settings.outboundTransformerConfigured {
                    out.append(.sendTransformed(handle, event: event, data: data))
                } else {
                    out.append(.send(handle, Payload(event: event, data: data)))
                }
            }
        }
    }

    /// A message from the bus: drop our own and malformed ones, deliver the rest locally by type.
    mutating func busMessage(channel: String, message: [UInt8], into out: inout [Effect]) {
        switch BusEnvelope.decode(message, numbers: settings.numberStyle) {
        case .failure(let error):
            out.append(.log(.warning, "dropped a malformed bus message on \(channel): \(error)", nil))
        case .success(let envelope):
            // A recorded message (the history store's script published it, for every instance,
            // this one included, in the room's order): delivered with its offset.
            if envelope.kind == .room, let offset = envelope.offset, let epoch = envelope.epoch, let room = envelope.target {
                return deliverRecorded(HistoryMessage(room: room, offset: offset, epoch: epoch, event: envelope.event,
                                                      data: envelope.data, exclude: envelope.exclude ?? []), into: &out)
            }
            guard envelope.serverID != serverID else { return }
            switch envelope.kind {
            case .client:
                sendToClient(envelope.target ?? "", event: envelope.event, data: envelope.data, into: &out)
            case .user:
                sendToUser(envelope.target ?? "", event: envelope.event, data: envelope.data, into: &out)
            case .room:
                if let members = rooms[envelope.target ?? ""] {
                    fanOut(members, event: envelope.event, data: envelope.data, exclude: envelope.exclude ?? [], into: &out)
                }
            case .broadcast:
                fanOut(audience, event: envelope.event, data: envelope.data, exclude: envelope.exclude ?? [], into: &out)
            }
        }
    }
}

/// Queries (PROTOCOL.md 7: client, room and user lookups) and the invariant check.
extension Kernel {
    public var clientCount: Int { clients.count }
    public var authenticatedCount: Int { audience.count }

    public func client(_ handle: ClientHandle) -> ClientInfo? { clients[handle]?.info }
    public func client(id: String) -> ClientInfo? { byID[id].flatMap { clients[$0]?.info } }
    public func handle(forID id: String) -> ClientHandle? { byID[id] }
    /// Every live client, in the kernel's deterministic order.
    public var clientHandles: [ClientHandle] { live.members }
    public var roomNames: [String] { rooms.keys.sorted() }
    public var userIDs: [String] { users.keys.sorted() }
    /// Client ids in a room, sorted.
    public func members(ofRoom room: String) -> [String] {
        guard let members = rooms[room] else { return [] }
        return (members.plain.members + members.encrypted.members).compactMap { clients[$0]?.id }.sorted()
    }
    /// Client ids of a user on this instance, sorted.
    public func clients(ofUser userID: String) -> [String] {
        (users[userID]?.members ?? []).compactMap { clients[$0]?.id }.sorted()
    }

    /// Checks that the indexes say what the client records say. Empty when consistent.
    public func invariantViolations() -> [String] {
        var problems: [String] = []
        var expectedRooms: [String: Set<ClientHandle>] = [:]
        var expectedUsers: [String: Set<ClientHandle>] = [:]
        var expectedAudience = Set<ClientHandle>()
        for handle in live.members {
            guard let record = clients[handle] else {
                problems.append("\(handle) is live but has no record")
                continue
            }
            if record.state == .disconnected { problems.append("\(handle) is disconnected but still recorded") }
            if byID[record.id] != handle { problems.append("\(handle) missing from the id index") }
            if !live.contains(handle) { problems.append("\(handle) missing from the live list") }
            for room in record.rooms { expectedRooms[room, default: []].insert(handle) }
            if record.state.receivesDeliveries {
                expectedAudience.insert(handle)
                if let userID = record.userID { expectedUsers[userID, default: []].insert(handle) }
            } else if !record.rooms.isEmpty {
                problems.append("\(handle) is \(record.state.specName) but in rooms")
            }
        }
        let actualRooms = rooms.mapValues { Set($0.plain.members + $0.encrypted.members) }
        if actualRooms != expectedRooms { problems.append("room index differs from the records") }
        if users.mapValues({ Set($0.members) }) != expectedUsers { problems.append("user index differs from the records") }
        if Set(audience.plain.members + audience.encrypted.members) != expectedAudience {
            problems.append("broadcast audience differs from the authenticated clients")
        }
        if live.count != clients.count || byID.count != clients.count { problems.append("live list or id index size differs") }
        for (room, members) in rooms {
            for handle in members.plain.members where clients[handle]?.encrypted == true {
                problems.append("encrypted \(handle) in the plain list of \(room)")
            }
        }
        return problems
    }

    /// Timers the kernel believes armed (client timers plus the sweep), for leak checks.
    public var armedTimers: Set<TimerID> {
        var timers = Set<TimerID>()
        for handle in live.members {
            guard let record = clients[handle] else { continue }
            for kind in TimerKind.allCases where record.timers[kind] != 0 {
                timers.insert(TimerID(.client(handle, kind), generation: record.timers[kind]))
            }
        }
        for timer in ServerTimer.allCases where serverTimers[Int(timer.rawValue)] != 0 {
            timers.insert(TimerID(.server(timer), generation: serverTimers[Int(timer.rawValue)]))
        }
        return timers
    }
}
