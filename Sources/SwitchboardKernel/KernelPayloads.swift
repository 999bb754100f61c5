import SwitchboardJSON

/// Room names as the protocol filters them, and the payloads the kernel builds itself, each with
/// the members of its spec message in the spec's order.
extension Kernel {
    /// PROTOCOL.md 4.6: strings of 1...256 characters (JavaScript length) not starting with `ws:`, deduplicated.
    static func filterRoomNames(_ names: [JSONValue]) -> [String] {
        var kept: [String] = []
        for case .string(let name) in names {
            let length = name.utf16.count
            guard length >= RoomRules.minLength, length <= RoomRules.maxLength,
                  !name.hasPrefix(RoomRules.reservedPrefix), !kept.contains(name) else { continue }
            kept.append(name)
        }
        return kept
    }

    static func strings(_ names: [JSONValue]) -> [String] {
        names.compactMap { if case .string(let name) = $0 { name } else { nil } }
    }

    /// `connected` with the members of the spec's `messages.connected` in its order; an
    /// optional member is left out when the client has no value for it.
    /// Built as the object's own members: an array of `(String, JSONValue)` handed to
    /// `JSONObject.init(_:)` was cast to labelled pairs and mapped again (~2,400 instructions a
    /// connection).
    func connectedPayload(_ record: ClientRecord, now: Now) -> Payload {
        var members: [JSONObject.Member] = []
        members.reserveCapacity(ConnectedField.wireOrder.count)
        for field in ConnectedField.wireOrder {
            let value: String?
            switch field {
            case .id: value = record.id
            case .userId: value = record.userID
            case .time: value = iso8601(unixMilliseconds: now.wall)
            case .serverPublicKey: value = record.serverPublicKey
            case .salt: value = record.salt
            }
            if let value { members.append(JSONObject.Member(key: field.wireName, value: .string(value))) }
        }
        return Payload(event: KernelMessage.connected.event, data: .object(JSONObject(members: members)))
    }

    /// The `data` of `refreshed`: the members of the spec's `messages.refreshed` in its order.
    func refreshedData(_ record: ClientRecord) -> JSONValue {
        var members: [(String, JSONValue)] = []
        for field in RefreshedField.wireOrder {
            switch field {
            case .expiresAt:
                if let expiresAt = record.expiresAt { members.append((field.wireName, .number(JSONNumber(expiresAt)))) }
            }
        }
        return .object(JSONObject(members))
    }

    /// The `data` of an `error` event: the members of the spec's `messages.error` in its order.
    static func errorData(_ error: ErrorMessage) -> JSONValue {
        .object(JSONObject(ErrorField.wireOrder.map { field in
            switch field {
            case .message: (field.wireName, .string(error.text))
            }
        }))
    }
}
