/// One-shot timers keyed by token: a binary min-heap ordered by (deadline, sequence) with
/// lazy deletion. `live` maps each armed token to the sequence of its current entry, so
/// replacing or cancelling is O(1) plus O(log n) for the push; stale entries are skipped
/// when they surface and the heap is rebuilt when they outnumber live ones.
///
/// Shared by the drivers (the POSIX loop's timers and TLS handshake deadlines, the example
/// `BlockingDriver`) and the simulation's reference model; equal deadlines fire in the order
/// they were scheduled. A driver's `schedule`/`cancel` map onto it one to one; each turn it
/// waits until `nextDeadline()`, then `collectDue(now:into:)` and fires every entry it can
/// still `claim` (an earlier firing may have cancelled or replaced a later one).
public struct TimerHeap {
    public struct Entry {
        public var deadline: Int64
        public var sequence: UInt64
        public var token: UInt64
    }

    private var heap: [Entry] = []
    private var live: [UInt64: UInt64] = [:]
    private var nextSequence: UInt64 = 0

    public init() {}

    public var count: Int { live.count }

    public mutating func schedule(_ token: UInt64, at deadline: Int64) {
        nextSequence &+= 1
        live[token] = nextSequence
        push(Entry(deadline: deadline, sequence: nextSequence, token: token))
        compactIfSparse()
    }

    public mutating func cancel(_ token: UInt64) {
        if live.removeValue(forKey: token) != nil { compactIfSparse() }
    }

    /// The earliest live deadline, dropping stale entries on top.
    public mutating func nextDeadline() -> Int64? {
        while let top = heap.first {
            if live[top.token] == top.sequence { return top.deadline }
            popTop()
        }
        return nil
    }

    /// Moves every live entry due at `now` into `due`, in (deadline, sequence) order.
    /// Each must then be `claim`ed before firing, since an earlier firing may cancel it.
    public mutating func collectDue(now: Int64, into due: inout [Entry]) {
        while let top = heap.first, top.deadline <= now {
            popTop()
            if live[top.token] == top.sequence { due.append(top) }
        }
    }

    /// True (and disarms the token) if `entry` is still the token's current timer.
    public mutating func claim(_ entry: Entry) -> Bool {
        guard live[entry.token] == entry.sequence else { return false }
        live[entry.token] = nil
        return true
    }

    @inline(__always)
    private static func before(_ a: Entry, _ b: Entry) -> Bool {
        a.deadline != b.deadline ? a.deadline < b.deadline : a.sequence < b.sequence
    }

    private mutating func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.before(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popTop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(0)
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let n = heap.count
        while true {
            let left = 2 * parent + 1
            guard left < n else { return }
            var best = left
            if left + 1 < n, Self.before(heap[left + 1], heap[left]) { best = left + 1 }
            guard Self.before(heap[best], heap[parent]) else { return }
            heap.swapAt(best, parent)
            parent = best
        }
    }

    private mutating func compactIfSparse() {
        guard heap.count > 64, heap.count > 2 * live.count else { return }
        heap.removeAll { live[$0.token] != $0.sequence }
        var i = heap.count / 2
        while i > 0 {
            i -= 1
            siftDown(i)
        }
    }
}
