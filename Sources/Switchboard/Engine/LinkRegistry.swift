/// The open connections, found two ways: by the driver's `ConnectionID` (driver events) and by
/// the kernel's `ClientHandle` (effects). A handle is `slot | generation << 32`: fan-out finds
/// each recipient with an array index and a compare instead of a hash lookup, and a handle of
/// a connection that has gone (its slot reused) finds nothing.
///
/// Also enforces `maxConnectionsPerIP`: a direct peer is counted at accept; a connection from a
/// trusted proxy only once its request names the client (`count(_:as:)`, from `Upgrade`).
final class LinkRegistry {
    private let maxHeaderBytes: Int
    private let maxPerPeer: Int
    /// Unchecked: read for every read from a socket (`Engine.bytesReceived`), and written with
    /// `freeSlots` and `generation` for every connection opened: the dynamic exclusivity check
    /// was one per echo round trip and three per connection (scripts/callgrind; see `Engine`).
    @exclusivity(unchecked) private var byID: [ConnectionID: Link] = [:]
    /// Unchecked: read for every message written and every fan-out recipient. Without the mark,
    /// one more dynamic exclusivity check per echo round trip: 7,748 instead of 7,658
    /// instructions (callgrind; see `Engine`).
    @exclusivity(unchecked) private var slots: [Link?] = []
    @exclusivity(unchecked) private var freeSlots: [Int] = []
    @exclusivity(unchecked) private var generation: UInt64 = 0
    /// Open connections per client address (only with a per-address limit), shared with the
    /// server's other loops.
    private let perPeer: PeerCounts
    /// The address each counted connection is counted under.
    private var countedAs: [ConnectionID: String] = [:]

    init(maxHeaderBytes: Int, maxConnectionsPerIP: Int, peers: PeerCounts = PeerCounts()) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxPerPeer = maxConnectionsPerIP
        self.perPeer = peers
    }

    var count: Int { byID.count }
    var isEmpty: Bool { byID.isEmpty }
    /// Every open connection, in no particular order.
    var all: Dictionary<ConnectionID, Link>.Values { byID.values }

    /// Whether connections are counted per address at all.
    var limitsAddresses: Bool { maxPerPeer > 0 }

    /// Registers a new connection, or nil when its peer address is at its limit. `countPeer`
    /// false (a trusted proxy): not counted until `count(_:as:)`.
    func open(_ id: ConnectionID, peer: String, now: Int64, countPeer: Bool = true) -> Link? {
        if countPeer, !count(id, as: peer) { return nil }
        let slot = freeSlots.popLast() ?? slots.count
        if slot == slots.count { slots.append(nil) }
        generation += 1
        let link = Link(id: id, handle: ClientHandle(generation << 32 | UInt64(slot)), peer: peer, now: now,
                        maxHeaderBytes: maxHeaderBytes)
        byID[id] = link
        slots[slot] = link
        return link
    }

    /// Forgets a closed connection and frees its slot; nil if it was never registered.
    func remove(_ id: ConnectionID) -> Link? {
        guard let link = byID.removeValue(forKey: id) else { return nil }
        if maxPerPeer > 0, let address = countedAs.removeValue(forKey: id) { perPeer.remove(address) }
        let slot = Int(link.handle.rawValue & 0xFFFF_FFFF)
        slots[slot] = nil
        freeSlots.append(slot)
        return link
    }

    /// Counts connection `id` under `address`; false (not counted) when that address is at its
    /// limit. A connection is counted once: a second call changes nothing.
    func count(_ id: ConnectionID, as address: String) -> Bool {
        guard maxPerPeer > 0, countedAs[id] == nil else { return true }
        guard perPeer.add(address, limit: maxPerPeer) else { return false }
        countedAs[id] = address
        return true
    }

    @inline(__always)
    subscript(id: ConnectionID) -> Link? { byID[id] }

    @inline(__always)
    subscript(handle: ClientHandle) -> Link? {
        let slot = Int(truncatingIfNeeded: handle.rawValue & 0xFFFF_FFFF)
        guard slot < slots.count, let link = slots[slot], link.handle == handle else { return nil }
        return link
    }
}
