import SwitchboardJSON

/// A `history` query of a room with history (a member's, or the server API's): how many
/// messages, and from where. The kernel has already capped `limit` at `history_size`.
public struct HistoryQuery: Equatable, Sendable {
    public var room: String
    /// At most this many messages, from 0 (the room's position alone).
    public var limit: Int
    /// nil: the last `limit` messages; else the first `limit` after this position.
    public var since: HistoryPosition?

    public init(room: String, limit: Int, since: HistoryPosition?) {
        self.room = room
        self.limit = max(0, limit)
        self.since = since
    }

    /// `limit` as the spec's `messages.history_query` reads it: a whole number from 0, capped
    /// at `size`; anything else (absent, negative, fractional, not a number) is `size`.
    public static func limit(_ json: JSONValue?, size: Int) -> Int {
        guard case .number(let number)? = json, let value = number.int, value >= 0 else { return max(0, size) }
        return min(value, max(0, size))
    }
}

/// What a `history` query answers: the room's position and the messages it kept, oldest first
/// (`position` nil and no entries when the store could not be read), and why `since` could not
/// be honoured, if it could not.
public struct HistoryAnswer: Equatable, Sendable {
    public var room: String
    public var position: HistoryPosition?
    public var entries: [HistoryEntry]
    public var reason: RecoveryFailure?

    public init(room: String, position: HistoryPosition?, entries: [HistoryEntry], reason: RecoveryFailure?) {
        self.room = room
        self.position = position
        self.entries = entries
        self.reason = reason
    }

    /// The store could not be read.
    public static func unavailable(_ room: String) -> HistoryAnswer {
        HistoryAnswer(room: room, position: nil, entries: [], reason: .unavailable)
    }

    /// The answer to a query without `since` from what a store read: the last `limit` of the
    /// kept entries (`nil` snapshot: unreadable).
    public static func last(_ query: HistoryQuery, epoch: String?, offset: UInt64, kept: [HistoryEntry],
                            reason: RecoveryFailure? = nil) -> HistoryAnswer {
        guard let epoch else { return .unavailable(query.room) }
        return HistoryAnswer(room: query.room, position: HistoryPosition(offset: offset, epoch: epoch),
                             entries: Array(kept.suffix(query.limit)), reason: reason)
    }

    /// The answer to a query with `since` from what a store read after it: the first `limit`
    /// messages after `since` when every one of them is kept (as a recovering join decides,
    /// `HistoryRead.decide`); nil when they are not, so that the caller reads the last `limit`
    /// and answers them with the reason `HistoryRead` gives.
    public static func after(_ query: HistoryQuery, epoch: String?, offset: UInt64,
                             kept: [HistoryEntry]) -> (answer: HistoryAnswer?, failure: RecoveryFailure?) {
        switch HistoryRead.decide(since: query.since, epoch: epoch, offset: offset, kept: kept) {
        case .recovered(let now, let missed):
            return (HistoryAnswer(room: query.room, position: now, entries: Array(missed.prefix(query.limit)), reason: nil), nil)
        case .position(let now):  // no `since`: not a query for this function, answered as one without
            return (HistoryAnswer(room: query.room, position: now, entries: [], reason: nil), nil)
        case .failed(_, .unavailable):
            return (.unavailable(query.room), nil)
        case .failed(_, let reason):
            return (nil, reason)
        }
    }

    /// The members of the spec's `messages.history`, in its order; each message as the room's
    /// members received it (`room_message`: `{"event","data"}` then `room`, `offset`, `epoch`).
    public var members: [(String, JSONValue)] {
        var members: [(String, JSONValue)] = []
        for field in HistoryField.wireOrder {
            switch field {
            case .room: members.append((field.wireName, .string(room)))
            case .epoch: if let position { members.append((field.wireName, .string(position.epoch))) }
            case .offset: if let position { members.append((field.wireName, .number(JSONNumber(position.offset)))) }
            case .messages:
                let epoch = position?.epoch ?? ""
                let messages = entries.compactMap { entry in
                    try? JSONValue.parse(Kernel.stamped(entry.message, room: room, offset: entry.offset, epoch: epoch))
                }
                members.append((field.wireName, .array(messages)))
            case .reason: if let reason { members.append((field.wireName, .string(reason.rawValue))) }
            }
        }
        return members
    }

    /// The `data` of the `history` message.
    public var json: JSONValue { .object(JSONObject(members)) }
}

extension Kernel {
    /// `query_history`: the query the client's `history` message asked, for the engine to read
    /// the store and answer (`HistoryAnswer`, delivered to `clientID`).
    func queryHistory(_ record: ClientRecord, _ context: Context, into out: inout [Effect]) {
        guard let room = context.room else { return }
        let since = context.since.flatMap { $0.room == room ? $0.position : nil }
        out.append(.queryHistory(record.handle, clientID: record.id,
                                 HistoryQuery(room: room, limit: context.limit ?? settings.historySize, since: since)))
    }
}
