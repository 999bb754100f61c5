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

    public init(serverID: String, kind: Kind, target: String? = nil, event: String,
                data: JSONValue?, exclude: [String]? = nil) {
        self.serverID = serverID
        self.kind = kind
        self.target = target
        self.event = event
        self.data = data
        self.exclude = exclude
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
            let value: JSONValue?
            switch field {
            case .serverId: value = .string(serverID)
            case .type: value = .string(kind.rawValue)
            case .target: value = target.map { .string($0) }
            case .event: value = .string(event)
            case .data: value = data
            case .exclude: value = exclude.map { .array($0.map { .string($0) }) }
            }
            guard let value else { continue }
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            JSONValue.serializeString(field.wireName, into: &out)
            out.append(UInt8(ascii: ":"))
            value.serialize(into: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
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
        return .success(BusEnvelope(serverID: serverID, kind: kind, target: target, event: event,
                                    data: object["data"], exclude: exclude))
    }
}
