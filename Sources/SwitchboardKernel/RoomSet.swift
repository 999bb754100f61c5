/// The rooms one client is in: a small array searched in order, with a hash index added once
/// the client is in more than `indexedAbove` rooms.
///
/// Every admitted client is in its own room, most in one or two more. As a `Set<String>` the
/// first room cost a 128-byte hash table (144 with malloc's header) for the life of the
/// connection; as an array it costs 48. Lookups compare byte counts before bytes, so a scan of
/// a few names is as quick as hashing one.
struct RoomSet: Sequence {
    static let indexedAbove = 16

    private var names: [String] = []
    /// nil until the client is in more than `indexedAbove` rooms.
    private var index: Set<String>?

    var isEmpty: Bool { names.isEmpty }
    var count: Int { names.count }

    /// Makes room for `count` names in all (past `indexedAbove`, the index is built as it grows).
    mutating func reserveCapacity(_ count: Int) {
        names.reserveCapacity(count)
    }

    func contains(_ room: String) -> Bool {
        if let index { return index.contains(room) }
        return names.contains(room)
    }

    /// Adds `room`; false if it was there already.
    mutating func insert(_ room: String) -> Bool {
        if contains(room) { return false }
        names.append(room)
        if index != nil {
            index!.insert(room)
        } else if names.count > Self.indexedAbove {
            index = Set(names)
        }
        return true
    }

    /// Removes `room`; false if it was not there.
    mutating func remove(_ room: String) -> Bool {
        guard let position = names.firstIndex(of: room) else { return false }
        names.remove(at: position)
        index?.remove(room)
        return true
    }

    func sorted() -> [String] { names.sorted() }

    func makeIterator() -> IndexingIterator<[String]> { names.makeIterator() }
}
