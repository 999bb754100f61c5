import CURing
import Glibc
import Switchboard
import Synchronization

/// Process-wide connection serial (a `ConnectionID` is `serial << 24 | slot`).
private let connectionSerial = Atomic<UInt64>(1)

/// The loop of a `URingDriver`: one io_uring, one thread, one `io_uring_enter` per turn.
///
/// A turn: submit every entry the last turn prepared and wait for a completion (or the
/// nearest timer or linger deadline) in the same call; hand out the completions (accepts,
/// received bytes, finished sends, the wake-up read); run posted and local work, due timers
/// and expired lingers; then flush: each connection written to in the turn gets one send (or
/// one `sendmsg` for several segments), and pauses and resumes become cancelled or re-armed
/// receives. Those entries go in at the next turn's single `io_uring_enter`.
///
/// Requests that stay in the kernel: one multishot accept per listener, one multishot
/// receive per connection (buffers from `BufferRing`), at most one send per connection, and
/// one read of the wake-up eventfd. Closes and drains raised inside a callback are queued and
/// reported after it returns, as in the epoll driver.
///
/// `@unchecked Sendable`: everything is confined to the loop thread; other threads reach it
/// only through `Mailbox` (the driver posts `stopAccepting` there).
final class URingLoop: @unchecked Sendable {
    /// Not retained (docs/drivers.md, ownership); see `POSIXDriver.events` for why not weak.
    unowned(unsafe) var events: DriverEvents?
    let ring: Ring
    let buffers: BufferRing
    let mailbox: Mailbox
    let lingerMilliseconds: Int64

    // User data of a request: the kind in the top byte, a slot or listener below.
    enum Kind {
        static let accept: UInt64 = 1
        static let receive: UInt64 = 2
        static let send: UInt64 = 3
        static let wake: UInt64 = 4
        static let ignore: UInt64 = 5
        /// A cancel of a slot's receive that did not succeed (see `cancelReceiveFailed`).
        static let receiveCancel: UInt64 = 6
    }
    static let slotBits: UInt64 = 24
    static let slotMask: UInt64 = (1 << 24) - 1
    @inline(__always) static func userData(_ kind: UInt64, _ index: Int) -> UInt64 { kind << 56 | UInt64(index) }

    // Listening
    var listenFD: Int32 = -1
    @exclusivity(unchecked) var accepting = false
    @exclusivity(unchecked) var listenerClosed = false
    private var spareFD: Int32

    // Loop-thread state: the hot parts skip Swift's dynamic exclusivity checks (see
    // `URingConnection`).

    // Connections
    @exclusivity(unchecked) var slots: [URingConnection] = []
    var freeSlots: [Int] = []
    var connectionCount = 0
    @exclusivity(unchecked) var flushList: [UInt64] = []
    @exclusivity(unchecked) private var flushBatch: [UInt64] = []
    @exclusivity(unchecked) var readList: [UInt64] = []
    @exclusivity(unchecked) private var readBatch: [UInt64] = []
    enum Note {
        case closed(UInt64)
        case drained(UInt64)
    }
    @exclusivity(unchecked) var notes: [Note] = []
    @exclusivity(unchecked) private var delivering = false
    /// Requests in the kernel that will post a last completion (not the cancels).
    @exclusivity(unchecked) var requestsInKernel = 0

    // Scratch space for `sendmsg` headers and iovecs: the kernel copies them when it takes
    // the entry (IORING_FEAT_SUBMIT_STABLE), so they are reused after every submission.
    let iovecs: UnsafeMutablePointer<iovec>
    let iovecCapacity = 8192
    @exclusivity(unchecked) var iovecsUsed = 0
    let headers: UnsafeMutablePointer<msghdr>
    let headerCapacity = 512
    @exclusivity(unchecked) var headersUsed = 0
    /// Discarded input of connections closed without flushing (so that close sends FIN, not RST).
    let scratch: UnsafeMutableRawPointer
    static let scratchSize = 16 * 1024

    // Time
    @exclusivity(unchecked) private var timers = TimerHeap()
    @exclusivity(unchecked) private var dueTimers: [TimerHeap.Entry] = []
    private var lingers: [(deadline: Int64, id: UInt64)] = []
    private var lingerHead = 0
    @exclusivity(unchecked) private(set) var cachedNow: Int64
    private let wakeValue: UnsafeMutablePointer<UInt64>
    @exclusivity(unchecked) private var wakeReady = false

    /// Whether the kernel may still fill a receive buffer (then they must stay mapped).
    private var buffersInUse = false

    init(ring: Ring, buffers: BufferRing, mailbox: Mailbox, lingerMilliseconds: Int64) {
        self.ring = ring
        self.buffers = buffers
        self.mailbox = mailbox
        self.lingerMilliseconds = lingerMilliseconds
        iovecs = .allocate(capacity: iovecCapacity)
        headers = .allocate(capacity: headerCapacity)
        scratch = .allocate(byteCount: Self.scratchSize, alignment: 16)
        wakeValue = .allocate(capacity: 1)
        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        cachedNow = Self.monotonicNanoseconds() / 1_000_000
    }

    deinit {
        for c in slots where c.fd >= 0 { Glibc.close(c.fd) }
        if listenFD >= 0 { Glibc.close(listenFD) }
        if spareFD >= 0 { Glibc.close(spareFD) }
        // A receive the kernel did not give back could still write into a buffer: then the
        // buffers stay mapped (a leak, and only after a `finish` that timed out).
        if !buffersInUse { buffers.release() }
        iovecs.deallocate()
        headers.deallocate()
        scratch.deallocate()
        wakeValue.deallocate()
    }

    static func monotonicNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
    }

    // MARK: - Run

    func run() {
        guard !mailbox.takeStopRequest() else { return }
        mailbox.enterLoop()
        let enabled = ring.enable()
        guard enabled == 0 else { fatalError("SwitchboardURing: enabling the ring: \(String(cString: strerror(enabled)))") }
        raiseDescriptorLimit()
        buffersInUse = true
        armWake()
        if listenFD >= 0, !listenerClosed { armAccept() }
        cachedNow = Self.monotonicNanoseconds() / 1_000_000
        while !mailbox.takeStopRequest() {
            enter()
            ring.forEachCompletion { completion in
                dispatch(completion)
                deliverNotes()
            }
            buffers.publish()
            if wakeReady {
                wakeReady = false
                mailbox.runPosted(deliverNotes)
            }
            mailbox.runLocal(deliverNotes)
            fireTimers()
            mailbox.runLocal(deliverNotes)
            expireLingers()
            endTurn()
        }
        finish()
    }

    /// The turn's one system call: submit, then wait for a completion unless work is ready.
    private func enter() {
        var waitFor: UInt32 = 1
        var timeout: Int64 = -1
        if !notes.isEmpty || !mailbox.local.isEmpty {
            waitFor = 0
        } else if let deadline = nextDeadline() {
            timeout = max(0, deadline &* 1_000_000 &- Self.monotonicNanoseconds())
            if timeout == 0 { waitFor = 0 }
        }
        let code = ring.submitAndWait(waitFor: waitFor, timeoutNanoseconds: timeout)
        resetScratch()
        switch code {
        case 0, ETIME, EINTR, EBUSY, EAGAIN: break
        default: fatalError("SwitchboardURing: io_uring_enter: \(String(cString: strerror(code)))")
        }
        cachedNow = Self.monotonicNanoseconds() / 1_000_000
    }

    private func nextDeadline() -> Int64? {
        var next = timers.nextDeadline()
        if lingerHead < lingers.count { next = min(next ?? .max, lingers[lingerHead].deadline) }
        return next
    }

    /// A free submission entry; submits what is prepared first when the ring is full (the
    /// turn's entries then take more than one `io_uring_enter`, as for a fan-out to more
    /// connections than the ring has entries).
    @inline(__always)
    func entry() -> UnsafeMutableRawPointer {
        while true {
            if let entry = ring.nextEntry() { return entry }
            submitNow()
        }
    }

    /// Submits without waiting (the ring or the `sendmsg` scratch space is full).
    func submitNow() {
        buffers.publish()  // the kernel may receive inside this call
        _ = ring.submitAndWait(waitFor: 0, timeoutNanoseconds: -1)
        resetScratch()
    }

    private func resetScratch() {
        iovecsUsed = 0
        headersUsed = 0
    }

    private func dispatch(_ completion: Ring.Completion) {
        let index = Int(truncatingIfNeeded: completion.userData & Self.slotMask)
        switch completion.userData >> 56 {
        case Kind.receive: received(slots[index], completion)
        case Kind.send: sent(slots[index], completion)
        case Kind.accept: accepted(completion)
        case Kind.wake:
            requestsInKernel -= 1
            wakeReady = true
            armWake()
        case Kind.receiveCancel: cancelReceiveFailed(slots[index], completion.result)
        default: break  // a cancel that found nothing to cancel
        }
    }

    /// Reports queued closes and drains; never inside another callback.
    func deliverNotes() {
        guard !notes.isEmpty, !delivering else { return }
        delivering = true
        var i = 0
        while i < notes.count {
            let note = notes[i]
            i += 1
            switch note {
            case .closed(let id):
                events?.connectionClosed(id)
            case .drained(let id):
                if let c = lookup(id), !c.closing { events?.connectionDrained(id) }
            }
        }
        notes.removeAll(keepingCapacity: true)
        delivering = false
    }

    /// The cork: one send per connection written to, then the receives to arm or cancel.
    /// Closes and drains reported meanwhile may write again: further rounds flush those.
    private func endTurn() {
        var rounds = 0
        while !flushList.isEmpty, rounds < 8 {
            swap(&flushList, &flushBatch)
            for id in flushBatch {
                guard let c = lookup(id) else { continue }
                c.inFlushList = false
                flush(c)
            }
            flushBatch.removeAll(keepingCapacity: true)
            deliverNotes()
            rounds += 1
        }
        swap(&readList, &readBatch)
        for id in readBatch {
            guard let c = lookup(id) else { continue }
            c.inReadList = false
            updateReading(c)
        }
        readBatch.removeAll(keepingCapacity: true)
    }

    private func armWake() {
        sb_prep_read(entry(), mailbox.wakeFD, wakeValue, 8, Self.userData(Kind.wake, 0))
        requestsInKernel += 1
    }

    /// After `run()`: cancels every request and waits (at most a second) for their last
    /// completions, so that no receive buffer or queued byte is in the kernel's hands when
    /// the memory goes. Reports nothing; open connections are closed by `deinit`.
    private func finish() {
        sb_prep_cancel_all(entry(), Self.userData(Kind.ignore, 0))
        let deadline = Self.monotonicNanoseconds() + 1_000_000_000
        defer { ring.unregisterFromThread() }
        while requestsInKernel > 0 {
            let left = deadline - Self.monotonicNanoseconds()
            if left <= 0 { return }
            _ = ring.submitAndWait(waitFor: 1, timeoutNanoseconds: left)
            ring.forEachCompletion { completion in
                if completion.flags & UInt32(IORING_CQE_F_BUFFER) != 0 {
                    buffers.recycle(UInt16(truncatingIfNeeded: completion.flags >> 16))
                }
                let kind = completion.userData >> 56
                let last = completion.flags & UInt32(IORING_CQE_F_MORE) == 0
                guard last, kind <= Kind.wake else { return }  // not the cancels' own completions
                requestsInKernel -= 1
                let index = Int(truncatingIfNeeded: completion.userData & Self.slotMask)
                if kind == Kind.send {
                    slots[index].sending = false
                    slots[index].outgoing.discardAll()
                }
                if kind == Kind.receive { slots[index].receiving = false }
                if kind == Kind.accept { accepting = false }
                if kind == Kind.accept, completion.result >= 0 { Glibc.close(completion.result) }
            }
        }
        buffersInUse = false
    }

    private func raiseDescriptorLimit() {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        if setrlimit(resource, &limit) != 0, limit.rlim_max == rlim_t.max {
            limit.rlim_cur = 1 << 20
            _ = setrlimit(resource, &limit)
        }
    }

    // MARK: - Accepting

    func armAccept() {
        sb_prep_accept_multishot(entry(), listenFD, Self.userData(Kind.accept, 0))
        accepting = true
        requestsInKernel += 1
    }

    private func accepted(_ completion: Ring.Completion) {
        let last = completion.flags & UInt32(IORING_CQE_F_MORE) == 0
        if last {
            accepting = false
            requestsInKernel -= 1
        }
        if completion.result >= 0 {
            let fd = completion.result
            if listenerClosed {
                Glibc.close(fd)
            } else if let c = register(fd) {
                wantReading(c)
                events?.connectionOpened(c.id, peer: Listener.peerHost(fd))
            } else {
                Glibc.close(fd)
            }
        } else {
            let code = -completion.result
            if code == EMFILE || code == ENFILE { shedOne() }
        }
        if last, !listenerClosed, listenFD >= 0 { armAccept() }
    }

    /// Out of descriptors: accepts and drops one pending connection with the descriptor
    /// kept for this, so that the re-armed accept does not fail again at once.
    private func shedOne() {
        guard spareFD >= 0, listenFD >= 0 else { return }
        var ready = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
        guard poll(&ready, 1, 0) == 1 else { return }
        Glibc.close(spareFD)
        let fd = accept(listenFD, nil, nil)
        if fd >= 0 { Glibc.close(fd) }
        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    /// Stops listening now (a shut-down listener refuses connections and ends its accept),
    /// then closes it. Open connections carry on.
    func stopAccepting() {
        guard listenFD >= 0 else { return }
        listenerClosed = true
        _ = shutdown(listenFD, Int32(SHUT_RDWR))
        if accepting { sb_prep_cancel(entry(), Self.userData(Kind.accept, 0), Self.userData(Kind.ignore, 0)) }
        Glibc.close(listenFD)
        listenFD = -1
    }

    private func register(_ fd: Int32) -> URingConnection? {
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
        } else {
            guard UInt64(slots.count) < Self.slotMask else { return nil }
            slot = slots.count
            slots.append(URingConnection(index: slot))
        }
        var serial: UInt64 = 0
        while serial == 0 {  // 40 bits; an id of 0 means a free slot
            serial = connectionSerial.wrappingAdd(1, ordering: .relaxed).oldValue & ((1 << 40) - 1)
        }
        let c = slots[slot]
        c.isFree = false
        c.id = serial << Self.slotBits | UInt64(slot)
        c.fd = fd
        connectionCount += 1
        return c
    }

    @inline(__always)
    func lookup(_ id: UInt64) -> URingConnection? {
        let slot = Int(truncatingIfNeeded: id & Self.slotMask)
        guard slot < slots.count else { return nil }
        let c = slots[slot]
        return c.id == id && id != 0 ? c : nil
    }

    /// Returns a closed slot to the free list once the kernel holds none of its requests.
    func releaseIfIdle(_ c: URingConnection) {
        guard c.id == 0, c.requests == 0, !c.isFree else { return }
        c.outgoing.discardAll()
        c.sending = false
        c.receiving = false
        c.receiveCancelled = false
        c.isFree = true
        freeSlots.append(c.index)
    }

    // MARK: - Timers and lingers

    func schedule(_ token: UInt64, at deadline: Int64) { timers.schedule(token, at: deadline) }
    func cancel(_ token: UInt64) { timers.cancel(token) }

    private func fireTimers() {
        timers.collectDue(now: cachedNow, into: &dueTimers)
        var i = 0
        while i < dueTimers.count {
            let entry = dueTimers[i]
            i += 1
            if timers.claim(entry) {
                events?.timerFired(entry.token)
                deliverNotes()
            }
        }
        dueTimers.removeAll(keepingCapacity: true)
    }

    func addLinger(_ id: UInt64) {
        lingers.append((cachedNow + lingerMilliseconds, id))
    }

    private func expireLingers() {
        while lingerHead < lingers.count, lingers[lingerHead].deadline <= cachedNow {
            let id = lingers[lingerHead].id
            lingerHead += 1
            if let c = lookup(id), c.closing { destroy(c) }
            deliverNotes()
        }
        if lingerHead == lingers.count, lingerHead > 0 {
            lingers.removeAll(keepingCapacity: true)
            lingerHead = 0
        }
    }
}
