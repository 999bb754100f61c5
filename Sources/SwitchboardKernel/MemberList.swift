/// An ordered set of clients with O(1) insert, remove and membership, iterated as a
/// contiguous array (fan-out walks it). Order depends only on the operations done, so the
/// kernel's output is the same for the same inputs in every process.
public struct MemberList: Sendable, Equatable {
    public private(set) var members: [ClientHandle] = []
    private var positions: [ClientHandle: Int] = [:]

    public init() {}

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }
    public func contains(_ handle: ClientHandle) -> Bool { positions[handle] != nil }

    @discardableResult
    public mutating func insert(_ handle: ClientHandle) -> Bool {
        guard positions[handle] == nil else { return false }
        positions[handle] = members.count
        members.append(handle)
        return true
    }

    @discardableResult
    public mutating func remove(_ handle: ClientHandle) -> Bool {
        guard let index = positions.removeValue(forKey: handle) else { return false }
        let last = members.removeLast()
        if index < members.count {
            members[index] = last
            positions[last] = index
        }
        return true
    }

    public static func == (a: MemberList, b: MemberList) -> Bool { a.members == b.members }
}
