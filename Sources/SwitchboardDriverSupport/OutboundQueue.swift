import Glibc

/// A connection's unsent bytes: a list of segments that point either into a `SharedBytes`
/// (never copied) or into the connection's own copy buffer, where consecutive copying
/// writes are merged into one segment. Partially written segments keep their offset.
///
/// The POSIX driver's output queue, for any driver that writes from its loop thread with
/// non-blocking sockets: `fill` gathers iovecs for `writev`, `firstSegment`/`gather` serve
/// one-buffer writers (TLS records), `consume` takes what the socket accepted. The queue also
/// keeps the backpressure bookkeeping of `docs/drivers.md`: `refuse` when a bounded write is
/// refused, `settle` after each write attempt says when `connectionDrained` is owed. Not
/// thread-safe: one loop owns it.
public struct OutboundQueue {
    struct Segment {
        /// nil: the bytes live in the copy buffer at `start`.
        var shared: SharedBytes?
        var start: Int
        var count: Int
    }

    /// Slots `head..<end` are queued. Slots past `end` are spent (no shared bytes) and reused
    /// by later appends: emptying the queue only moves `head` and `end` back, where emptying
    /// the array cost 154 of a fan-out's 968 instructions per delivery (`scripts/callgrind
    /// fanout`: `removeAll(keepingCapacity:)` destroys every element one by one).
    private var segments: [Segment] = []
    private var head = 0
    private var end = 0
    /// Bytes queued and not yet accepted by the kernel.
    public private(set) var bytes = 0
    /// A bounded write was refused, or a write attempt left bytes queued: the next emptying
    /// owes a `connectionDrained`. Kept by `accepts` and `settle`; settable for a driver with
    /// write paths of its own (the POSIX driver's TLS records).
    public var drainOwed = false
    private var copyBase: UnsafeMutableRawPointer?
    private var copyCapacity = 0
    private var copyLength = 0

    /// A connection's first copy buffer: small, so an idle connection that was sent one
    /// `connected` holds a few hundred bytes; busy ones grow geometrically, once.
    private static let initialCopyCapacity = 256
    /// Copy buffers larger than this are freed when the queue empties.
    private static let retainedCopyCapacity = 256 * 1024

    public init() {}

    public var isEmpty: Bool { bytes == 0 }

    /// A write bounded by `limit` may be queued now; when not, the refusal owes a drain.
    public mutating func accepts(_ limit: Int) -> Bool {
        if bytes <= limit { return true }
        drainOwed = true
        return false
    }

    /// After a write attempt (or at the end of a turn): whether the queue is empty, and whether
    /// `connectionDrained` is to be reported now (an emptying after a refusal or a backlog).
    public mutating func settle() -> (isEmpty: Bool, drained: Bool) {
        guard bytes == 0 else {
            drainOwed = true
            return (false, false)
        }
        defer { drainOwed = false }
        return (true, drainOwed)
    }

    public mutating func append(_ shared: SharedBytes) {
        let n = shared.bytes.count
        guard n > 0 else { return }
        push(Segment(shared: shared, start: 0, count: n))
        bytes += n
    }

    @inline(__always)
    private mutating func push(_ segment: Segment) {
        if end < segments.count {
            segments[end] = segment
        } else {
            segments.append(segment)
        }
        end += 1
    }

    public mutating func append(copying source: UnsafeRawBufferPointer) {
        let n = source.count
        guard n > 0, let from = source.baseAddress else { return }
        reserveCopySpace(n)
        (copyBase! + copyLength).copyMemory(from: from, byteCount: n)
        let last = end - 1
        if last >= head, segments[last].shared == nil,
           segments[last].start + segments[last].count == copyLength {
            segments[last].count += n
        } else {
            push(Segment(shared: nil, start: copyLength, count: n))
        }
        copyLength += n
        bytes += n
    }

    /// Fills up to `capacity` iovecs from the head; returns how many and their byte total.
    /// `mutating` though it changes nothing: called on a queue stored in a class (a driver's
    /// connection), a non-mutating call copies the whole queue first, retains included
    /// (100 instructions per delivery in `scripts/callgrind fanout`).
    public mutating func fill(_ iov: UnsafeMutablePointer<iovec>, capacity: Int) -> (count: Int, total: Int) {
        var n = 0
        var total = 0
        var i = head
        while i < end, n < capacity {
            let segment = segments[i]
            let base: UnsafeRawPointer? = segment.shared.map { $0.base } ?? UnsafeRawPointer(copyBase)
            iov[n] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base! + segment.start),
                           iov_len: segment.count)
            total += segment.count
            n += 1
            i += 1
        }
        return (n, total)
    }

    /// The first segment's bytes; empty if the queue is empty. `mutating`: see `fill`.
    public mutating func firstSegment() -> UnsafeRawBufferPointer {
        guard head < end else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let segment = segments[head]
        let base: UnsafeRawPointer? = segment.shared.map { $0.base } ?? UnsafeRawPointer(copyBase)
        return UnsafeRawBufferPointer(start: base! + segment.start, count: segment.count)
    }

    /// Copies up to `capacity` bytes from the head into `buffer` (without consuming them);
    /// returns how many. `mutating`: see `fill`.
    public mutating func gather(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        var n = 0
        var i = head
        while i < end, n < capacity {
            let segment = segments[i]
            let base: UnsafeRawPointer? = segment.shared.map { $0.base } ?? UnsafeRawPointer(copyBase)
            let take = min(segment.count, capacity - n)
            (buffer + n).copyMemory(from: base! + segment.start, byteCount: take)
            n += take
            i += 1
        }
        return n
    }

    /// Drops `written` bytes from the head, releasing finished shared segments at once.
    public mutating func consume(_ written: Int) {
        var left = written
        bytes -= written
        while left > 0 {
            let count = segments[head].count
            if count <= left {
                left -= count
                segments[head] = Segment(shared: nil, start: 0, count: 0)
                head += 1
            } else {
                segments[head].start += left
                segments[head].count -= left
                left = 0
            }
        }
        if head == end {
            resetEmpty()
        } else if head >= 64, head * 2 >= end {
            segments.removeSubrange(0..<head)
            end -= head
            head = 0
        }
    }

    /// Discards everything and frees the copy buffer (the connection is gone).
    public mutating func discardAll() {
        drainOwed = false
        segments.removeAll()
        head = 0
        end = 0
        bytes = 0
        copyLength = 0
        free(copyBase)
        copyBase = nil
        copyCapacity = 0
    }

    /// Every slot is spent (`consume` cleared them); a long list (a burst) is given back.
    private mutating func resetEmpty() {
        if segments.count > 1024 { segments = [] }
        head = 0
        end = 0
        copyLength = 0
        if copyCapacity > Self.retainedCopyCapacity {
            free(copyBase)
            copyBase = nil
            copyCapacity = 0
        }
    }

    /// Makes room for `n` more copied bytes: slides live copied bytes down when at least
    /// half the buffer is already written (so the memmove is paid for by freed space),
    /// otherwise grows geometrically.
    private mutating func reserveCopySpace(_ n: Int) {
        if copyLength + n <= copyCapacity { return }
        var liveStart = copyLength
        for i in head..<end where segments[i].shared == nil && segments[i].count > 0 {
            liveStart = segments[i].start
            break
        }
        if liveStart > 0, liveStart * 2 >= copyLength {
            if let base = copyBase, copyLength > liveStart {
                memmove(base, base + liveStart, copyLength - liveStart)
            }
            for i in head..<end where segments[i].shared == nil {
                segments[i].start -= liveStart
            }
            copyLength -= liveStart
            if copyLength + n <= copyCapacity { return }
        }
        let capacity = max(copyLength + n, copyCapacity * 2, Self.initialCopyCapacity)
        guard let grown = realloc(copyBase, capacity) else {
            fatalError("SwitchboardPOSIX: out of memory growing an output queue to \(capacity) bytes")
        }
        copyBase = grown
        copyCapacity = capacity
    }
}
