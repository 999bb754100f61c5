import COpenSSL
import Glibc
import SwitchboardDriverSupport
import Synchronization

/// A single-threaded epoll loop that accepts TCP connections, reads into one reusable buffer,
/// corks writes until the end of each turn and flushes each connection with one `writev`.
///
/// epoll is level-triggered. A connection is registered once with EPOLLIN and modified only
/// to pause reading or to arm EPOLLOUT while its queue is blocked, so the common path makes
/// no `epoll_ctl` calls. Each readiness report gets one 64 KiB `recv`; anything left is
/// reported again next turn, which keeps one busy peer from starving the rest without the
/// read-until-EAGAIN loop and self-kept ready list that edge-triggering would need.
///
/// A turn: `epoll_wait` (timeout from the nearest timer or linger deadline), then accepts,
/// reads and signals in event order, then posted work, due timers and linger expiries, then
/// `loopTurnEnded` and the flush. Closes and drains raised inside a callback are queued and
/// delivered after it returns.
///
/// TLS (listeners given a `TLSContext`): see `EventLoop+TLS.swift`. Handlers see the same
/// events as for plain connections, with plaintext bytes.
///
/// Everything except `stop()`, `post(_:)` and setting `handler` must be called on the loop
/// thread (or before `run()` on the thread that will call it).
public final class EventLoop: @unchecked Sendable {
    /// Not retained (a weak reference would give the handler a side table and make every
    /// retain of it a slow one): its owner keeps it alive while the loop runs.
    public unowned(unsafe) var handler: EventLoopHandler?

    /// How long `close(_, flushFirst: true)` waits for the flush and the peer's FIN.
    public let lingerMilliseconds: Int64

    static let slotBits: UInt64 = 24
    static let slotMask: UInt64 = (1 << 24) - 1
    static let tagWake: UInt64 = 0
    static let tagSignal: UInt64 = 1
    static let tagListenerBase: UInt64 = 2
    static let readBufferSize = 64 * 1024
    static let maxEvents = 1024

    let sys = LinuxCalls.shared
    let epollFD: Int32
    let wakeFD: Int32
    var signalFD: Int32 = -1
    var spareFD: Int32
    let eventBuffer: UnsafeMutableRawPointer
    let readBuffer: UnsafeMutableRawPointer
    let iovecs: UnsafeMutablePointer<iovec>

    // Loop-thread state. Without `@exclusivity(unchecked)` on all of it measured: 114
    // instructions per echo round trip (scripts/callgrind-echo, 7,686 -> 7,800). The marks stay
    // on what every turn or every write touches; the accept, listener, handshake-timer and
    // thread properties go without (7,687 with them unmarked). `tlsStaging` and `tlsReadBatch`
    // serve TLS records only, which that measurement does not exercise: marked.
    @exclusivity(unchecked) var slots: [ConnectionSlot] = []
    // Taken and counted for every connection registered (two checks per connection).
    @exclusivity(unchecked) var freeSlots: [Int] = []
    @exclusivity(unchecked) public internal(set) var connectionCount = 0
    var listeners: [Int32] = []
    /// The TLS context of each listener (parallel to `listeners`), nil for plain TCP.
    var listenerTLS: [TLSContext?] = []
    /// One record of plaintext, gathered from small queued segments before `SSL_write`.
    @exclusivity(unchecked) var tlsStaging: UnsafeMutableRawPointer?
    /// TLS connections to read in the next turn (input buffered inside OpenSSL).
    var tlsReadAgain: [UInt64] = []
    @exclusivity(unchecked) var tlsReadBatch: [UInt64] = []
    /// Handshake deadlines, keyed by connection id.
    var handshakeTimers = TimerHeap()
    var dueHandshakes: [TimerHeap.Entry] = []

    @exclusivity(unchecked) var dirty: [UInt64] = []
    @exclusivity(unchecked) var flushing: [UInt64] = []
    enum Note {
        case closed(UInt64, CloseReason)
        case drained(UInt64)
    }
    @exclusivity(unchecked) var notes: [Note] = []
    @exclusivity(unchecked) var delivering = false

    @exclusivity(unchecked) var timers = TimerHeap()
    @exclusivity(unchecked) var dueTimers: [TimerHeap.Entry] = []
    @exclusivity(unchecked) var lingers: [(deadline: Int64, id: UInt64)] = []
    @exclusivity(unchecked) var lingerHead = 0

    @exclusivity(unchecked) var cachedNow: Instant
    /// Strong copy of `handler` for the current turn.
    @exclusivity(unchecked) var turnHandler: EventLoopHandler?
    @exclusivity(unchecked) var wakeReady = false

    struct PostQueue {
        var work: [@Sendable () -> Void] = []
        var wakePending = false
    }
    let posted = Mutex(PostQueue())
    @exclusivity(unchecked) var postBatch: [@Sendable () -> Void] = []
    /// Work queued from the loop thread itself: no lock, no wake-up; runs later this turn.
    @exclusivity(unchecked) var localWork: [LocalWork] = []
    @exclusivity(unchecked) var localBatch: [LocalWork] = []

    /// One piece of `localWork`: a closure (`runSoon`), or a job of a task that prefers the
    /// loop's executor (`runSoon(job:on:)`), queued as it is: a closure around each job was
    /// an allocation per hook resumed (`EventLoopTaskExecutor`).
    enum LocalWork {
        case closure(() -> Void)
        case job(UnownedJob, UnownedTaskExecutor)
    }
    /// The thread running `run()`, for `isLoopThread`.
    var loopThread: pthread_t?
    let stopRequested = Atomic<Bool>(false)

    var signalMask = sigset_t()
    var signalHandlers: [Int32: [() -> Void]] = [:]
    var limitRaised = false

    public init(lingerMilliseconds: Int64 = 2000) throws {
        self.lingerMilliseconds = lingerMilliseconds
        let sys = LinuxCalls.shared
        let ep = sys.epollCreate1(LinuxABI.cloexec)
        guard ep >= 0 else { throw EventLoopError(operation: "epoll_create1", code: errno) }
        let wake = sys.eventfd(0, LinuxABI.nonblock | LinuxABI.cloexec)
        guard wake >= 0 else {
            let code = errno
            Glibc.close(ep)
            throw EventLoopError(operation: "eventfd", code: code)
        }
        epollFD = ep
        wakeFD = wake
        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        eventBuffer = .allocate(byteCount: Self.maxEvents * LinuxABI.epollEventSize, alignment: 16)
        readBuffer = .allocate(byteCount: Self.readBufferSize, alignment: 64)
        iovecs = .allocate(capacity: LinuxABI.iovMax)
        cachedNow = .monotonic
        sigemptyset(&signalMask)
        guard control(LinuxABI.epollCtlAdd, wake, LinuxABI.epollIn, Self.tagWake) == 0 else {
            let code = errno
            releaseResources()
            throw EventLoopError(operation: "epoll_ctl(eventfd)", code: code)
        }
    }

    deinit {
        for c in slots where c.id != 0 {
            if let ssl = c.ssl { SSL_free(ssl) }
            Glibc.close(c.fd)
            c.queue.discardAll()
        }
        for fd in listeners where fd >= 0 { Glibc.close(fd) }
        releaseResources()
    }

    func releaseResources() {
        if signalFD >= 0 { Glibc.close(signalFD) }
        if spareFD >= 0 { Glibc.close(spareFD) }
        Glibc.close(wakeFD)
        Glibc.close(epollFD)
        eventBuffer.deallocate()
        readBuffer.deallocate()
        iovecs.deallocate()
        tlsStaging?.deallocate()
    }

    // MARK: - Cross-thread

    /// Ends `run()` after the current turn. Thread-safe; a `stop()` before `run()` makes the
    /// next `run()` return at once.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        wake()
    }

    /// Runs `work` on the loop thread during a coming turn. Thread-safe; posts are batched
    /// behind a single eventfd write.
    public func post(_ work: @escaping @Sendable () -> Void) {
        let needsWake = posted.withLock { queue -> Bool in
            queue.work.append(work)
            if queue.wakePending { return false }
            queue.wakePending = true
            return true
        }
        if needsWake { wake() }
    }

    /// Runs `work` later in this turn (after the current event). Loop thread only; from any
    /// other thread use `post`.
    public func runSoon(_ work: @escaping () -> Void) {
        localWork.append(.closure(work))
    }

    /// Runs `job` on `executor` later in this turn, in order with `runSoon`'s work. Loop
    /// thread only.
    public func runSoon(job: UnownedJob, on executor: UnownedTaskExecutor) {
        localWork.append(.job(job, executor))
    }

    /// True on the thread running the loop.
    public var isLoopThread: Bool {
        guard let thread = loopThread else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    /// Runs the work queued with `runSoon` (and its jobs) after `run()` has returned, on the
    /// thread that ran it: for a driver that ends its tasks once the loop has stopped.
    public func runQueuedWork() {
        precondition(isLoopThread, "runQueuedWork off the loop's thread")
        runLocal()
    }

    /// Runs the work queued with `runSoon`, including work it queues in turn.
    func runLocal() {
        while !localWork.isEmpty {
            swap(&localWork, &localBatch)
            for i in localBatch.indices {
                switch localBatch[i] {
                case .closure(let work): work()
                case .job(let job, let executor): job.runSynchronously(on: executor)
                }
                deliverNotes()
            }
            localBatch.removeAll(keepingCapacity: true)
        }
    }

    func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    /// Monotonic time cached at the start of the turn.
    public var now: Instant { cachedNow }

    // MARK: - Run

    /// Runs the loop on the calling thread until `stop()`.
    public func run() {
        if !limitRaised {
            limitRaised = true
            raiseDescriptorLimit()
        }
        loopThread = pthread_self()
        while !stopRequested.exchange(false, ordering: .acquiringAndReleasing) {
            turnHandler = handler
            cachedNow = .monotonic
            var count = sys.epollWait(epollFD, eventBuffer, Int32(Self.maxEvents), nextTimeout())
            cachedNow = .monotonic
            if count < 0 {
                let code = errno
                guard code == EINTR else { fatalError("SwitchboardPOSIX: epoll_wait: \(errnoText(code))") }
                count = 0
            }
            for i in 0..<Int(count) {
                let event = eventBuffer + i * LinuxABI.epollEventSize
                let flags = event.load(as: UInt32.self)
                let data = event.loadUnaligned(fromByteOffset: LinuxABI.epollDataOffset, as: UInt64.self)
                dispatch(flags, data)
                deliverNotes()
            }
            if !tlsReadAgain.isEmpty { readQueuedTLS() }
            if wakeReady {
                wakeReady = false
                runPosted()
            }
            runLocal()
            fireTimers()
            runLocal()
            if handshakeTimers.count > 0 { expireHandshakes() }
            expireLingers()
            endTurn()
            turnHandler = nil
        }
    }

    func dispatch(_ flags: UInt32, _ data: UInt64) {
        if data > Self.slotMask {
            connectionEvent(flags, data)
        } else if data == Self.tagWake {
            wakeReady = true
        } else if data == Self.tagSignal {
            readSignals()
        } else {
            acceptAll(Int(data - Self.tagListenerBase))
        }
    }

    func nextTimeout() -> Int32 {
        if !dirty.isEmpty || !notes.isEmpty || !tlsReadAgain.isEmpty || !localWork.isEmpty { return 0 }
        var next = timers.nextDeadline()
        if lingerHead < lingers.count {
            next = min(next ?? .max, lingers[lingerHead].deadline)
        }
        if handshakeTimers.count > 0, let handshake = handshakeTimers.nextDeadline() {
            next = min(next ?? .max, handshake)
        }
        guard let deadline = next else { return -1 }
        let delta = deadline - cachedNow.milliseconds
        return delta <= 0 ? 0 : Int32(clamping: delta)
    }

    func runPosted() {
        var counter: UInt64 = 0
        _ = Glibc.read(wakeFD, &counter, 8)
        posted.withLock { queue in
            queue.wakePending = false
            swap(&queue.work, &postBatch)
        }
        for i in postBatch.indices {
            postBatch[i]()
            deliverNotes()
        }
        postBatch.removeAll(keepingCapacity: true)
    }

    /// Delivers queued closes and drains. Runs only at the top of the loop, never inside a
    /// handler callback, so callbacks are never re-entered.
    func deliverNotes() {
        guard !notes.isEmpty, !delivering else { return }
        delivering = true
        var i = 0
        while i < notes.count {
            let note = notes[i]
            i += 1
            switch note {
            case .closed(let raw, let reason):
                turnHandler?.connectionClosed(SocketID(rawValue: raw), reason: reason)
            case .drained(let raw):
                if lookup(raw) != nil { turnHandler?.connectionDrained(SocketID(rawValue: raw)) }
            }
        }
        notes.removeAll(keepingCapacity: true)
        delivering = false
    }

    /// The cork: `loopTurnEnded`, then one flush per dirty connection. Writes made by
    /// `connectionDrained`/`connectionClosed` handlers are flushed in further rounds.
    func endTurn() {
        turnHandler?.loopTurnEnded()
        deliverNotes()
        var rounds = 0
        while !dirty.isEmpty, rounds < 8 {
            swap(&dirty, &flushing)
            for raw in flushing {
                guard let c = lookup(raw) else { continue }
                c.inDirtyList = false
                flush(c)
            }
            flushing.removeAll(keepingCapacity: true)
            deliverNotes()
            rounds += 1
        }
    }

    func raiseDescriptorLimit() {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        if setrlimit(resource, &limit) != 0, limit.rlim_max == rlim_t.max {
            limit.rlim_cur = 1 << 20
            _ = setrlimit(resource, &limit)
        }
    }
}
