import SwitchboardJSON

/// The cross-instance envelope (docs/protocol.md, "Redis"), byte-compatible with the original:
/// `{"serverId","type","target"?,"event","data"?,"exclude"?}`, in the order of the spec's
/// `messages.bus_envelope` (generated `BusEnvelopeField`).
public struct BusEnvelope: Equatable, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case client, user, room, broadcast
    }
    public var serverID: String
    public var kind: Kind
    public var target: String?
    public var event: String
    public var data: JSONValue?
    public var exclude: [String]?
    /// A message of a room with history: its offset and the room's epoch (written by the
    /// history store; an instance that does not know them ignores them).
    public var offset: UInt64?
    public var epoch: String?

    public init(serverID: String, kind: Kind, target: String? = nil, event: String,
                data: JSONValue?, exclude: [String]? = nil, offset: UInt64? = nil, epoch: String? = nil) {
        self.serverID = serverID
        self.kind = kind
        self.target = target
        self.event = event
        self.data = data
        self.exclude = exclude
        self.offset = offset
        self.epoch = epoch
    }

    /// The channel this envelope is published on.
    public var channel: String {
        switch kind {
        case .broadcast: Channels.broadcast
        case .room: Channels.room(target ?? "")
        case .client: Channels.client(target ?? "")
        case .user: Channels.user(target ?? "")
        }
    }

    /// JSON with the members of the spec's `messages.bus_envelope` in its order (the
    /// original's). As `JSON.stringify` does, an absent `target`, `data` or `exclude` is left
    /// out and a present one is written as is (`[]` included).
    public func encoded() -> [UInt8] {
        // Written member by member rather than through a `JSONObject` (which orders and
        // deduplicates keys, a cost paid for every message a server publishes): the wire names
        // are distinct and none is an array index, so the order is the spec's as it stands.
        var out: [UInt8] = []
        out.reserveCapacity(128)
        out.append(UInt8(ascii: "{"))
        for field in BusEnvelopeField.wireOrder {
            guard let value = value(of: field) else { continue }
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            JSONValue.serializeString(field.wireName, into: &out)
            out.append(UInt8(ascii: ":"))
            value.serialize(into: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The value of one member, nil when it is left out (absent, as `JSON.stringify` leaves
    /// out `undefined`).
    private func value(of field: BusEnvelopeField) -> JSONValue? {
        switch field {
        case .serverId: .string(serverID)
        case .type: .string(kind.rawValue)
        case .target: target.map { .string($0) }
        case .event: .string(event)
        case .data: data
        case .exclude: exclude.map { .array($0.map { .string($0) }) }
        case .offset: offset.map { .number(JSONNumber($0)) }
        case .epoch: epoch.map { .string($0) }
        }
    }

    public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
        case invalidJSON
        case notAnObject
        case missingField(String)
        case badField(String)
        public var description: String {
            switch self {
            case .invalidJSON: "not valid JSON"
            case .notAnObject: "not a JSON object"
            case .missingField(let name): "missing field `\(name)`"
            case .badField(let name): "field `\(name)` has the wrong type"
            }
        }
    }

    /// Reads an envelope; anything malformed is an error (the caller logs and drops it).
    /// `data` keeps an unpaired surrogate escape as it came; `numbers` is how it keeps its numbers.
    /// The routing strings (`serverId`, `target`, `event`, `exclude`) are read as `String`s, an
    /// unpaired surrogate in them as U+FFFD.
    public static func decode(_ bytes: [UInt8], numbers: JSONNumberStyle = .exact) -> Result<BusEnvelope, DecodeError> {
        guard let value = try? JSONValue.parse(bytes, numbers: numbers) else { return .failure(.invalidJSON) }
        guard case .object(let object) = value else { return .failure(.notAnObject) }
        guard let serverValue = object["serverId"] else { return .failure(.missingField("serverId")) }
        guard let serverID = serverValue.stringValue else { return .failure(.badField("serverId")) }
        guard let typeValue = object["type"] else { return .failure(.missingField("type")) }
        guard case .string(let typeName) = typeValue, let kind = Kind(rawValue: typeName) else {
            return .failure(.badField("type"))
        }
        guard let eventValue = object["event"] else { return .failure(.missingField("event")) }
        guard let event = eventValue.stringValue, !event.isEmpty else { return .failure(.badField("event")) }
        var target: String?
        switch object["target"] {
        case nil, .null?: target = nil
        case let value?:
            guard let text = value.stringValue else { return .failure(.badField("target")) }
            target = text
        }
        if kind != .broadcast, target == nil { return .failure(.missingField("target")) }
        var exclude: [String]?
        switch object["exclude"] {
        case nil, .null?: exclude = nil
        case .array(let items)?:
            var ids: [String] = []
            ids.reserveCapacity(items.count)
            for item in items {
                guard let id = item.stringValue else { return .failure(.badField("exclude")) }
                ids.append(id)
            }
            exclude = ids
        default: return .failure(.badField("exclude"))
        }
        var offset: UInt64?
        var epoch: String?
        if kind == .room, let offsetValue = object["offset"] {
            guard case .number(let number) = offsetValue, let whole = number.int, whole > 0 else { return .failure(.badField("offset")) }
            guard case .string(let text)? = object["epoch"] else { return .failure(.badField("epoch")) }
            offset = UInt64(whole)
            epoch = text
        }
        return .success(BusEnvelope(serverID: serverID, kind: kind, target: target, event: event,
                                    data: object["data"], exclude: exclude, offset: offset, epoch: epoch))
    }

    /// The envelope's bytes split where its `offset` and `epoch` values go, for a writer that
    /// learns them later (the Redis history script): `parts[0] + first + parts[1] + second +
    /// parts[2]`, where `first` is the offset (a number) when `offsetFirst`, else the epoch
    /// (a JSON string), in the order of the spec's `messages.bus_envelope`.
    public func encodedAroundStamp() -> (parts: [[UInt8]], offsetFirst: Bool) {
        var parts: [[UInt8]] = [[]]
        var offsetFirst = true
        var seenEpoch = false
        parts[0].append(UInt8(ascii: "{"))
        var written = 0
        for field in BusEnvelopeField.wireOrder {
            if field == .offset || field == .epoch {
                if written > 0 { parts[parts.count - 1].append(UInt8(ascii: ",")) }
                JSONValue.serializeString(field.wireName, into: &parts[parts.count - 1])
                parts[parts.count - 1].append(UInt8(ascii: ":"))
                parts.append([])
                if field == .epoch { seenEpoch = true } else if seenEpoch { offsetFirst = false }
                written += 1
                continue
            }
            guard let value = value(of: field) else { continue }
            if written > 0 { parts[parts.count - 1].append(UInt8(ascii: ",")) }
            JSONValue.serializeString(field.wireName, into: &parts[parts.count - 1])
            parts[parts.count - 1].append(UInt8(ascii: ":"))
            value.serialize(into: &parts[parts.count - 1])
            written += 1
        }
        parts[parts.count - 1].append(UInt8(ascii: "}"))
        return (parts, offsetFirst)
    }
}
