/// The kernel's indexes of who is where: a client admitted, joining and leaving rooms, released.
/// Presence and history notes are taken here, as the rooms change (Presence.swift, History.swift).
extension Kernel {
    /// PROTOCOL.md 5: index by user, join the broadcast audience, the own-id room and the default
    /// rooms; then the rooms authenticateFn answered.
    mutating func admit(_ record: ClientRecord) {
        record.authData = nil  // kept for handshakeFn only: not for the life of the connection
        if let userID = record.userID {
            users[userID, default: MemberList()].insert(record.handle)
        }
        audience.insert(record.handle, encrypted: record.encrypted)
        join(record, record.id)
        for room in settings.defaultRooms { join(record, room) }
        for room in record.admissionRooms { join(record, room) }
        record.admissionRooms = []
    }

    mutating func join(_ record: ClientRecord, _ room: String) {
        guard record.rooms.insert(room) else { return }
        rooms[room, default: RoomMembers()].insert(record.handle, encrypted: record.encrypted)
        notePresence(record, room, joined: true)
        noteHistory(room)
    }

    mutating func leave(_ record: ClientRecord, _ room: String) {
        guard record.rooms.remove(room) else { return }
        rooms[room]?.remove(record.handle)
        if rooms[room]?.isEmpty == true { rooms[room] = nil }
        notePresence(record, room, joined: false)
        if !record.recoveries.isEmpty || !record.floors.isEmpty { forgetHistory(record, room) }
    }

    /// Removes the client from every index and cancels its timers; the record is forgotten.
    mutating func release(_ record: ClientRecord, into out: inout [Effect]) {
        for kind in TimerKind.allCases { cancelTimer(kind, of: record, into: &out) }
        for room in record.rooms.sorted() { leave(record, room) }
        if let userID = record.userID, var members = users[userID] {
            members.remove(record.handle)
            users[userID] = members.isEmpty ? nil : members
        }
        audience.remove(record.handle)
        live.remove(record.handle)
        clients[record.handle] = nil
        byID[record.id] = nil
        if lastSender === record { lastSender = nil }
        record.authData = nil
    }
}
