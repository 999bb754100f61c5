import Switchboard

/// One connection slot of a `URingLoop`, reused for later connections once the kernel holds
/// no request of it any more (`requests` is 0): a completion names its slot, and must find
/// there the queue its send points into. Loop-confined, so no property needs Swift's dynamic
/// exclusivity check (the epoll driver's `ConnectionSlot` measured what the checks cost).
final class URingConnection {
    let index: Int
    init(index: Int) { self.index = index }

    /// The `ConnectionID` while open; 0 once closed (the slot may still wait for requests).
    @exclusivity(unchecked) var id: UInt64 = 0
    @exclusivity(unchecked) var fd: Int32 = -1
    /// Requests of this slot in the kernel: its multishot receive, its send.
    @exclusivity(unchecked) var requests = 0
    /// In `URingLoop.freeSlots`.
    @exclusivity(unchecked) var isFree = false

    // Reading
    /// A multishot receive is in the kernel (from its submission to its last completion).
    @exclusivity(unchecked) var receiving = false
    /// A cancel was submitted for that receive (to pause, or because the connection closed).
    @exclusivity(unchecked) var receiveCancelled = false
    @exclusivity(unchecked) var paused = false
    /// Bytes read while paused (or before a queued delivery ran): reported after the resume.
    @exclusivity(unchecked) var held: [UInt8] = []
    /// A delivery of `held` (and of a held end of input) is queued on the loop.
    @exclusivity(unchecked) var deliveryQueued = false
    /// The peer's FIN was read; while paused it waits behind `held`.
    @exclusivity(unchecked) var endOfInput = false

    // Writing
    /// The bytes of the send in the kernel, frozen until its completion (the kernel reads
    /// them; an append to this queue could move its copy buffer). Empty when none is.
    @exclusivity(unchecked) var outgoing = OutboundQueue()
    /// Writes made since; they become `outgoing` when the send in the kernel completes.
    @exclusivity(unchecked) var queued = OutboundQueue()
    /// A send is in the kernel.
    @exclusivity(unchecked) var sending = false
    /// A bounded write was refused: `connectionDrained` is owed once both queues are empty.
    @exclusivity(unchecked) var drainOwed = false

    // Closing
    /// `close(flushFirst: true)`: sending what is queued, then FIN, then waiting for the peer's.
    @exclusivity(unchecked) var closing = false
    @exclusivity(unchecked) var shutdownSent = false

    // The loop's lists (ids, so that an entry of a closed connection finds nothing).
    @exclusivity(unchecked) var inFlushList = false
    @exclusivity(unchecked) var inReadList = false

    /// Bytes queued and not yet taken by the kernel.
    @inline(__always) var buffered: Int { outgoing.bytes + queued.bytes }

    /// Back to the state of a fresh slot but for `outgoing`, which a send may still point
    /// into, and `receiving`/`sending`, which end with their requests' last completions.
    func reset() {
        id = 0
        fd = -1
        paused = false
        held = []
        deliveryQueued = false
        endOfInput = false
        queued.discardAll()
        drainOwed = false
        closing = false
        shutdownSent = false
        inFlushList = false
        inReadList = false
    }
}
