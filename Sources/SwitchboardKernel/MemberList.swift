/// An ordered set of clients with O(1) insert, remove and membership, iterated as a
/// contiguous array (fan-out walks it). Order depends only on the operations done, so the
/// kernel's output is the same for the same inputs in every process.
///
/// Most lists are small: every client's own room and most users' lists hold one client. Up to
/// `indexedFrom` members, membership is a scan of `members` and no position index exists: no
/// dictionary is allocated and no handle hashed (two hashed lookups and a dictionary per
/// insert cost more than scanning a few words). The index is built when the list grows past
/// that, and kept from then on.
public struct MemberList: Sendable, Equatable {
    public private(set) var members: [ClientHandle] = []
    /// Each member's offset in `members`; nil while the list has never been longer than `indexedFrom`.
    private var positions: [ClientHandle: Int]?

    /// The length at which membership stops being a scan.
    static let indexedFrom = 8

    public init() {}

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }
    public func contains(_ handle: ClientHandle) -> Bool {
        if let positions { return positions[handle] != nil }
        return members.contains(handle)
    }

    @discardableResult
    public mutating func insert(_ handle: ClientHandle) -> Bool {
        if positions == nil {
            guard !members.contains(handle) else { return false }
            members.append(handle)
            if members.count > Self.indexedFrom { buildIndex() }
            return true
        }
        // One hashed access: a new member is stored as -1 and then given its offset.
        let offset = members.count
        let added = Self.place(&positions![handle, default: -1], at: offset)
        if added { members.append(handle) }
        return added
    }

    @discardableResult
    public mutating func remove(_ handle: ClientHandle) -> Bool {
        let index: Int
        if positions == nil {
            guard let found = members.firstIndex(of: handle) else { return false }
            index = found
        } else {
            guard let found = positions!.removeValue(forKey: handle) else { return false }
            index = found
        }
        let last = members.removeLast()
        if index < members.count {
            members[index] = last
            if positions != nil { positions![last] = index }
        }
        return true
    }

    public static func == (a: MemberList, b: MemberList) -> Bool { a.members == b.members }

    /// Gives a slot that was just made (-1) its offset; false if the slot held a member already.
    @inline(__always)
    private static func place(_ slot: inout Int, at offset: Int) -> Bool {
        guard slot < 0 else { return false }
        slot = offset
        return true
    }

    private mutating func buildIndex() {
        var index = [ClientHandle: Int](minimumCapacity: members.count * 2)
        for (offset, member) in members.enumerated() { index[member] = offset }
        positions = index
    }
}
