import SwitchboardJSON

/// One client in a room with presence, as `presence` lists it and `presence_join` /
/// `presence_leave` announce it.
public struct PresenceMember: Equatable, Sendable {
    public var clientID: String
    public var userID: String?
    public var metadata: JSONValue?

    public init(clientID: String, userID: String?, metadata: JSONValue?) {
        self.clientID = clientID
        self.userID = userID
        self.metadata = metadata
    }

    /// `{clientId, userId?, metadata?}`: the members of the spec's `presence_join` but `room`,
    /// in their order, so that a listed member and an announced one read the same.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = []
        for field in PresenceJoinField.wireOrder {
            switch field {
            case .room: break
            case .clientId: members.append((field.wireName, .string(clientID)))
            case .userId: if let userID { members.append((field.wireName, .string(userID))) }
            case .metadata: if let metadata { members.append((field.wireName, metadata)) }
            }
        }
        return .object(JSONObject(members))
    }

    /// Reads what `json` wrote (a presence store's entry); nil without a string clientId.
    public init?(json: JSONValue) {
        guard case .string(let id)? = json[PresenceJoinField.clientId.wireName] else { return nil }
        clientID = id
        if case .string(let user)? = json[PresenceJoinField.userId.wireName] { userID = user }
        metadata = json[PresenceJoinField.metadata.wireName]
    }
}

/// Which rooms have presence: the spec default `presence_rooms`, each a room name or a prefix
/// ending in `*`.
struct PresencePatterns {
    let exact: Set<String>
    let prefixes: [Substring]

    init(_ patterns: [String]) {
        exact = Set(patterns.filter { !$0.hasSuffix("*") })
        prefixes = patterns.filter { $0.hasSuffix("*") }.map { $0.dropLast() }
    }

    var isEmpty: Bool { exact.isEmpty && prefixes.isEmpty }

    func matches(_ room: String) -> Bool {
        exact.contains(room) || prefixes.contains { room.hasPrefix($0) }
    }
}

extension Kernel {
    /// Notes a join or leave of a room with presence for the row's `announce_presence`.
    mutating func notePresence(_ record: ClientRecord, _ room: String, joined: Bool) {
        guard !presencePatterns.isEmpty, presencePatterns.matches(room) else { return }
        pendingPresence.append((room, joined))
    }

    /// `announce_presence`: each noted change goes to the room's other members here and, as a
    /// room message on the bus, on the other instances; the presence store hears of it too.
    mutating func announcePresence(_ record: ClientRecord, into out: inout [Effect]) {
        guard !pendingPresence.isEmpty else { return }
        let member = PresenceMember(clientID: record.id, userID: record.userID, metadata: record.metadata)
        for (room, joined) in pendingPresence {
            let message: KernelMessage = joined ? .presenceJoin : .presenceLeave
            let data = Self.announcement(room: room, member)
            if let members = rooms[room] {
                fanOut(members, event: message.event, data: data, exclude: [record.id], into: &out)
            }
            let envelope = BusEnvelope(serverID: serverID, kind: .room, target: room, event: message.event,
                                       data: data, exclude: [record.id])
            out.append(.publish(channel: envelope.channel, message: envelope.encoded()))
            out.append(.presenceChanged(room: room, member: member, joined: joined))
        }
        pendingPresence.removeAll(keepingCapacity: true)
    }

    /// The `data` of `presence_join` and `presence_leave` (the same members, spec order).
    static func announcement(room: String, _ member: PresenceMember) -> JSONValue {
        var members: [(String, JSONValue)] = []
        for field in PresenceJoinField.wireOrder {
            switch field {
            case .room: members.append((field.wireName, .string(room)))
            case .clientId: members.append((field.wireName, .string(member.clientID)))
            case .userId: if let userID = member.userID { members.append((field.wireName, .string(userID))) }
            case .metadata: if let metadata = member.metadata { members.append((field.wireName, metadata)) }
            }
        }
        return .object(JSONObject(members))
    }

    /// `query_presence`: this instance's members of the room, for the engine to merge with
    /// the presence store's and answer.
    func queryPresence(_ record: ClientRecord, room: String, into out: inout [Effect]) {
        out.append(.queryPresence(record.handle, clientID: record.id, room: room, local: localPresence(room)))
    }

    /// This instance's members of a room, sorted by client id.
    public func localPresence(_ room: String) -> [PresenceMember] {
        guard let members = rooms[room] else { return [] }
        return (members.plain.members + members.encrypted.members).compactMap { handle in
            clients[handle].map { PresenceMember(clientID: $0.id, userID: $0.userID, metadata: $0.metadata) }
        }.sorted { $0.clientID < $1.clientID }
    }

    /// Whether the spec's `presence_rooms` patterns give this room presence.
    public func hasPresence(_ room: String) -> Bool { presencePatterns.matches(room) }

    /// The `data` of the `presence` answer: members merged by client id (the local ones win),
    /// sorted by client id.
    public static func presenceAnswer(room: String, local: [PresenceMember], remote: [PresenceMember]) -> JSONValue {
        var byID: [String: PresenceMember] = [:]
        for member in remote { byID[member.clientID] = member }
        for member in local { byID[member.clientID] = member }
        let members = byID.values.sorted { $0.clientID < $1.clientID }
        return .object(JSONObject(PresenceField.wireOrder.map { field in
            switch field {
            case .room: (field.wireName, .string(room))
            case .members: (field.wireName, .array(members.map(\.json)))
            }
        }))
    }
}
