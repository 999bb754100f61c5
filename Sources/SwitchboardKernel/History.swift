import SwitchboardJSON

/// Where a client is in a room's history: the offset of the last message it saw (0: none yet)
/// and the room's epoch. Offsets of different epochs are unrelated.
public struct HistoryPosition: Hashable, Sendable {
    public var offset: UInt64
    public var epoch: String

    public init(offset: UInt64, epoch: String) {
        self.offset = offset
        self.epoch = epoch
    }

    /// `since` of a join: `{"offset": N, "epoch": E}` with N a whole number from 0; nil for
    /// anything else (the join then recovers nothing, as one without `since`).
    init?(json: JSONValue?) {
        guard case .object(let object)? = json, case .number(let number)? = object["offset"],
              let offset = number.int, offset >= 0, case .string(let epoch)? = object["epoch"] else { return nil }
        self.init(offset: UInt64(offset), epoch: epoch)
    }
}

/// One recorded message of a room: its offset and its `{"event","data"}` JSON.
public struct HistoryEntry: Equatable, Sendable {
    public var offset: UInt64
    public var message: [UInt8]

    public init(offset: UInt64, message: [UInt8]) {
        self.offset = offset
        self.message = message
    }
}

/// Why a client cannot recover what it missed (the spec's `joined.reason` values).
public enum RecoveryFailure: String, Sendable, CaseIterable {
    case epochChanged = "epoch_changed"
    case offsetTooOld = "offset_too_old"
    case offsetUnknown = "offset_unknown"
    case unavailable
}

/// The answer to a join of a room with history, as `joined` tells it.
public enum HistoryRead: Equatable, Sendable {
    /// A join without `since`: where the room is.
    case position(HistoryPosition)
    /// Every message after `since`, oldest first (none when the client missed nothing).
    case recovered(HistoryPosition, [HistoryEntry])
    /// What was missed cannot be given; the position is the room's now (nil: unknown).
    case failed(HistoryPosition?, RecoveryFailure)

    /// Decides from what a store read: the room's epoch and last offset, and the messages it
    /// still keeps after `since` (in offset order). Recovery holds only when every offset from
    /// `since + 1` to the last one is there: a store that lost one (trimmed by size or age)
    /// cannot recover, and says so rather than deliver a gap. `epoch`/`offset` nil: the store
    /// could not be read.
    public static func decide(since: HistoryPosition?, epoch: String?, offset: UInt64, kept: [HistoryEntry]) -> HistoryRead {
        guard let epoch else { return .failed(nil, .unavailable) }
        let now = HistoryPosition(offset: offset, epoch: epoch)
        guard let since else { return .position(now) }
        guard since.epoch == epoch else { return .failed(now, .epochChanged) }
        guard since.offset <= offset else { return .failed(now, .offsetUnknown) }
        let missed = kept.filter { $0.offset > since.offset && $0.offset <= offset }
        var expected = since.offset + 1
        for entry in missed {
            guard entry.offset == expected else { return .failed(now, .offsetTooOld) }
            expected += 1
        }
        guard expected == offset + 1 else { return .failed(now, .offsetTooOld) }
        return .recovered(now, missed)
    }
}

/// A message to a room with history, for this instance to record once: the history store gives
/// it the room's next offset and delivers it (see `Effect.appendHistory`).
public struct HistoryAppend: Equatable, Sendable {
    public var room: String
    public var event: String
    public var data: JSONValue?
    public var exclude: [String]
    /// `{"event","data"}`: what is recorded and replayed.
    public var message: [UInt8]
    /// The room envelope for the other instances, its `offset` and `epoch` left for the store.
    public var envelope: BusEnvelope
    /// The application's request published on the bus (`send`, `publish`); a store that delivers
    /// through the bus (Redis) publishes every message of a room with history.
    public var publish: Bool
}

/// A recorded message of a room, with its offset and epoch, for the local members.
public struct HistoryMessage: Equatable, Sendable {
    public var room: String
    public var offset: UInt64
    public var epoch: String
    public var event: String
    public var data: JSONValue?
    public var exclude: [String]

    public init(room: String, offset: UInt64, epoch: String, event: String, data: JSONValue?, exclude: [String]) {
        self.room = room
        self.offset = offset
        self.epoch = epoch
        self.event = event
        self.data = data
        self.exclude = exclude
    }
}

/// A join of a room with history waiting for the store's answer: the client's live messages of
/// the room wait here, so that none comes before `joined` and the missed ones.
struct Recovery {
    let request: UInt64
    var held: [HistoryMessage] = []
}

extension Kernel {
    /// Whether the spec's `history_rooms` patterns give this room history.
    public func hasHistory(_ room: String) -> Bool { !historyPatterns.isEmpty && historyPatterns.matches(room) }

    /// Notes a room with history the running row joined, for its `recover_history`.
    mutating func noteHistory(_ room: String) {
        guard hasHistory(room) else { return }
        pendingHistory.append(room)
    }

    /// `recover_history`: each room with history the row joined waits for the store's answer
    /// (its live messages held); `since` counts for the one room the join named.
    mutating func recoverHistory(_ record: ClientRecord, _ context: Context, into out: inout [Effect]) {
        guard !pendingHistory.isEmpty else { return }
        for room in pendingHistory {
            historyRequests += 1
            // Stored and checked with one hash of the name (a lookup before the store was a second).
            if record.recoveries.updateValue(Recovery(request: historyRequests), forKey: room) == nil {
                recovering[room, default: 0] += 1
            }
            let since = context.since.flatMap { $0.room == room ? $0.position : nil }
            out.append(.readHistory(record.handle, request: historyRequests, room: room, since: since))
        }
        pendingHistory.removeAll(keepingCapacity: true)
    }

    /// A client leaves a room (or is released): its recovery of the room and its floor end.
    mutating func forgetHistory(_ record: ClientRecord, _ room: String) {
        endRecovery(record, room)
        dropFloor(record, room)
    }

    mutating func endRecovery(_ record: ClientRecord, _ room: String) {
        guard record.recoveries.removeValue(forKey: room) != nil else { return }
        Self.countDown(&recovering, room)
    }

    mutating func dropFloor(_ record: ClientRecord, _ room: String) {
        guard record.floors.removeValue(forKey: room) != nil else { return }
        Self.countDown(&floored, room)
    }

    /// One client fewer for `room` in `counts`; the room is dropped at none. Found once: a read
    /// and then a write hashed the name twice.
    private static func countDown(_ counts: inout [String: Int], _ room: String) {
        guard let index = counts.index(forKey: room) else { return }
        if counts.values[index] > 1 { counts.values[index] -= 1 } else { counts.remove(at: index) }
    }

    /// A message to a room with history becomes an append for the store, instead of a delivery.
    mutating func recordHistory(room: String, event: String, data: JSONValue?, exclude: [String], publish: Bool,
                                into out: inout [Effect]) {
        let envelope = BusEnvelope(serverID: serverID, kind: .room, target: room, event: event, data: data,
                                   exclude: exclude.isEmpty ? nil : exclude)
        out.append(.appendHistory(HistoryAppend(room: room, event: event, data: data, exclude: exclude,
                                                message: OutboundEnvelope.encode(event: event, data: data),
                                                envelope: envelope, publish: publish)))
    }

    /// A recorded message: to the room's members here, stamped with its room, offset and epoch;
    /// members still recovering the room get it later, in order (`historyRead`).
    mutating func deliverRecorded(_ message: HistoryMessage, into out: inout [Effect]) {
        guard let members = rooms[message.room] else { return }
        var exclude = message.exclude
        if recovering[message.room] != nil || floored[message.room] != nil {
            for handle in members.plain.members + members.encrypted.members {
                guard let record = clients[handle], !message.exclude.contains(record.id) else { continue }
                if let index = record.recoveries.index(forKey: message.room) {
                    record.recoveries.values[index].held.append(message)
                    exclude.append(record.id)
                } else if let floor = record.floors[message.room] {
                    if message.epoch == floor.epoch && message.offset <= floor.offset {
                        exclude.append(record.id)  // replayed already: it was in the store's answer
                    } else {
                        dropFloor(record, message.room)  // live order passed the floor: none older follows
                    }
                }
            }
        }
        let bytes = Self.stamped(OutboundEnvelope.encode(event: message.event, data: message.data), room: message.room,
                                 offset: message.offset, epoch: message.epoch)
        let payload = Payload(bytes: bytes)
        let excluded = exclude.isEmpty ? Set<ClientHandle>() : Set(exclude.compactMap { byID[$0] })
        let plain = excluded.isEmpty ? members.plain.members : members.plain.members.filter { !excluded.contains($0) }
        if !plain.isEmpty { out.append(.fanOut(plain, payload)) }
        for handle in members.encrypted.members where !excluded.contains(handle) {
            guard let record = clients[handle] else { continue }
            send(to: record, event: message.event, data: message.data, payload: payload, into: &out)
        }
    }

    /// The store answered a join of a room with history: `joined`, the missed messages, then
    /// the held ones past the position `joined` names. A stale answer (the client left the
    /// room or joined it again since) is dropped.
    mutating func historyRead(_ handle: ClientHandle, request: UInt64, room: String, _ read: HistoryRead,
                              into out: inout [Effect]) {
        guard let record = clients[handle], let recovery = record.recoveries[room], recovery.request == request else { return }
        endRecovery(record, room)
        let data = joinedData(room: room, read)
        send(to: record, event: KernelMessage.joined.event, data: data,
             payload: Payload(event: KernelMessage.joined.event, data: data), into: &out)
        var position: HistoryPosition?
        switch read {
        case .position(let now):
            position = now
        case .recovered(let now, let entries):
            position = now
            for entry in entries { sendRecorded(entry.message, room: room, offset: entry.offset, epoch: now.epoch, to: record, into: &out) }
        case .failed(let now, _):
            position = now
        }
        // A message the store had when it answered may still be on its way here (with Redis it
        // comes on the subscription, unordered with the answer): the floor drops it then.
        if let position {
            if record.floors.updateValue(position, forKey: room) == nil { floored[room, default: 0] += 1 }
        }
        for message in recovery.held {
            if let position, message.epoch == position.epoch, message.offset <= position.offset { continue }
            let bytes = Self.stamped(OutboundEnvelope.encode(event: message.event, data: message.data), room: room,
                                     offset: message.offset, epoch: message.epoch)
            send(to: record, event: message.event, data: message.data, payload: Payload(bytes: bytes), into: &out)
        }
    }

    /// One recorded message (`{"event","data"}` bytes) to one client, stamped.
    func sendRecorded(_ message: [UInt8], room: String, offset: UInt64, epoch: String, to record: ClientRecord,
                      into out: inout [Effect]) {
        let payload = Payload(bytes: Self.stamped(message, room: room, offset: offset, epoch: epoch))
        if record.encrypted && settings.outboundTransformerConfigured {
            // The transformer takes an event and data: read them back from the recorded JSON.
            guard case .message(let event, let data, _) = InboundEnvelope.read(message, numbers: settings.numberStyle) else { return }
            out.append(.sendTransformed(record.handle, event: event, data: data))
        } else {
            out.append(.send(record.handle, payload))
        }
    }

    /// `{"event","data"}` with the members of the spec's `messages.room_message` after them, in
    /// its order: the bytes of every message to a room with history.
    static func stamped(_ message: [UInt8], room: String, offset: UInt64, epoch: String) -> [UInt8] {
        var out = message
        if out.last == UInt8(ascii: "}") { out.removeLast() }
        for field in RoomMessageField.wireOrder {
            out.append(UInt8(ascii: ","))
            JSONValue.serializeString(field.wireName, into: &out)
            out.append(UInt8(ascii: ":"))
            switch field {
            case .room: JSONValue.serializeString(room, into: &out)
            case .offset: out.append(contentsOf: String(offset).utf8)
            case .epoch: JSONValue.serializeString(epoch, into: &out)
            }
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The `data` of `joined`: the members of the spec's `messages.joined` in its order.
    func joinedData(room: String, _ read: HistoryRead) -> JSONValue {
        let position: HistoryPosition?
        var recovered: Bool?
        var reason: RecoveryFailure?
        switch read {
        case .position(let now): position = now
        case .recovered(let now, _):
            position = now
            recovered = true
        case .failed(let now, let why):
            position = now
            recovered = false
            reason = why
        }
        var members: [(String, JSONValue)] = []
        for field in JoinedField.wireOrder {
            switch field {
            case .room: members.append((field.wireName, .string(room)))
            case .epoch: if let position { members.append((field.wireName, .string(position.epoch))) }
            case .offset: if let position { members.append((field.wireName, .number(JSONNumber(position.offset)))) }
            case .recovered: if let recovered { members.append((field.wireName, .bool(recovered))) }
            case .reason: if let reason { members.append((field.wireName, .string(reason.rawValue))) }
            }
        }
        return .object(JSONObject(members))
    }
}
