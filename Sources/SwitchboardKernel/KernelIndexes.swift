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
        // Sized once for every room joined here: grown one insert at a time, the list was
        // allocated twice (scripts/callgrind connect), and kept no larger than it needs.
        record.rooms.reserveCapacity(record.rooms.count + 1 + settings.defaultRooms.count + record.admissionRooms.count)
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
        removeMember(record, room)
    }

    /// The room's side of a leave. The room is looked up once and its index used both to
    /// remove the member and, for the last one, the room (three hashed lookups of its name
    /// before: a client's own room is a 36-character id).
    private mutating func removeMember(_ record: ClientRecord, _ room: String) {
        if let index = rooms.index(forKey: room), Self.remove(record.handle, from: &rooms.values[index]) {
            rooms.remove(at: index)
        }
        notePresence(record, room, joined: false)
        if !record.recoveries.isEmpty || !record.floors.isEmpty { forgetHistory(record, room) }
    }

    /// Removes the client from every index and cancels its timers; the record is forgotten.
    mutating func release(_ record: ClientRecord, into out: inout [Effect]) {
        for kind in TimerKind.allCases { cancelTimer(kind, of: record, into: &out) }
        // Every room is left, so the record's list is emptied once instead of room by room. In
        // name order where the order shows (the presence notes and history recoveries are taken
        // in it); otherwise each room's side is the same in any order, and sorting the names
        // cost more than leaving them (scripts/callgrind connect).
        if presencePatterns.isEmpty && record.recoveries.isEmpty && record.floors.isEmpty {
            for room in record.rooms { removeMember(record, room) }
        } else {
            for room in record.rooms.sorted() { removeMember(record, room) }
        }
        record.rooms = RoomSet()
        // In place, found once: a copy taken out and stored back copied the member array.
        if let userID = record.userID, let index = users.index(forKey: userID),
           Self.remove(record.handle, from: &users.values[index]) {
            users.remove(at: index)
        }
        audience.remove(record.handle)
        live.remove(record.handle)
        clients[record.handle] = nil
        byID[record.id] = nil
        if lastSender === record { lastSender = nil }
        record.authData = nil
    }

    /// Removes a member in place and says whether none are left: the room (or user) is then
    /// dropped. One access to the dictionary's value: reading it a second time to ask whether
    /// it was empty copied it out (retaining and releasing its lists; scripts/callgrind connect).
    @inline(__always)
    private static func remove(_ handle: ClientHandle, from members: inout RoomMembers) -> Bool {
        members.remove(handle)
        return members.isEmpty
    }

    @inline(__always)
    private static func remove(_ handle: ClientHandle, from members: inout MemberList) -> Bool {
        members.remove(handle)
        return members.isEmpty
    }
}

extension Dictionary {
    /// Stores `value` under `key` unless the key has a value already (then false, and nothing
    /// changes). The key is hashed once, through the subscript's in-place access: checking
    /// first and storing after hashes it twice.
    mutating func insertNew(_ value: Value, forKey key: Key) -> Bool {
        Self.fill(&self[key], with: value)
    }

    @inline(__always)
    private static func fill(_ slot: inout Value?, with value: Value) -> Bool {
        guard slot == nil else { return false }
        slot = value
        return true
    }
}
