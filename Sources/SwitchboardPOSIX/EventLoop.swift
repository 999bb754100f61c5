import COpenSSL
import Glibc
import SwitchboardDriverSupport
import Synchronization

/// Process-wide connection serial (high 40 bits of a `SocketID`).
private let connectionSerial = Atomic<UInt64>(1)

/// Per-connection state, kept in `EventLoop.slots` and reused for later connections.
///
/// Touched only on the loop thread, so no property needs Swift's dynamic exclusivity check.
/// Without `@exclusivity(unchecked)` on the properties above `ssl` (plain TCP state) measured:
/// 230 instructions per echo round trip (scripts/callgrind-echo, 7,686 -> 7,916). The TLS
/// properties cost nothing on plain echo (7,686 both ways); they are read for every record
/// on a TLS connection, which that measurement does not exercise, so they keep the mark.
final class ConnectionSlot {
    /// `SocketID.rawValue`; 0 while the slot is free.
    @exclusivity(unchecked) var id: UInt64 = 0
    @exclusivity(unchecked) var fd: Int32 = -1
    @exclusivity(unchecked) var paused = false
    /// `close(_, flushFirst: true)` was called: flushing, then `SHUT_WR`, then waiting for EOF.
    @exclusivity(unchecked) var closing = false
    @exclusivity(unchecked) var shutdownSent = false
    /// The last write stopped short; EPOLLOUT is armed and writes wait for it.
    @exclusivity(unchecked) var blocked = false
    /// The queue was non-empty after a flush, or a bounded write was refused; the next empty
    /// flush reports `drained` (kept by the queue: `OutboundQueue.drainOwed`).
    var backlogged: Bool {
        get { queue.drainOwed }
        set { queue.drainOwed = newValue }
    }
    @exclusivity(unchecked) var inDirtyList = false
    /// The epoll mask currently registered.
    @exclusivity(unchecked) var interest: UInt32 = 0
    @exclusivity(unchecked) var queue = OutboundQueue()

    /// TLS connections only: the `SSL *` (owned, freed on close).
    @exclusivity(unchecked) var ssl: OpaquePointer?
    /// Accepted on a TLS listener and the handshake is not finished.
    @exclusivity(unchecked) var tlsHandshaking = false
    /// `SSL_do_handshake` or `SSL_read` is waiting for the socket to become writable.
    @exclusivity(unchecked) var tlsNeedsWritable = false
    /// `SSL_write` or `SSL_shutdown` is waiting for the socket to become readable.
    @exclusivity(unchecked) var tlsWriteNeedsReadable = false
    /// In `EventLoop.tlsReadAgain`: OpenSSL holds input that epoll will not report again.
    @exclusivity(unchecked) var tlsReadQueued = false
    /// Set by `writeTLS` while more records follow the one being written (`MSG_MORE`).
    @exclusivity(unchecked) var tlsMoreToSend = false
    /// The BIO's last `recv` returned less than it asked for: the socket was empty then.
    @exclusivity(unchecked) var tlsInputDrained = false
}

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

    private static let slotBits: UInt64 = 24
    private static let slotMask: UInt64 = (1 << 24) - 1
    private static let tagWake: UInt64 = 0
    private static let tagSignal: UInt64 = 1
    private static let tagListenerBase: UInt64 = 2
    static let readBufferSize = 64 * 1024
    private static let maxEvents = 1024

    private let sys = LinuxCalls.shared
    private let epollFD: Int32
    private let wakeFD: Int32
    private var signalFD: Int32 = -1
    private var spareFD: Int32
    private let eventBuffer: UnsafeMutableRawPointer
    let readBuffer: UnsafeMutableRawPointer
    private let iovecs: UnsafeMutablePointer<iovec>

    // Loop-thread state. Without `@exclusivity(unchecked)` on all of it measured: 114
    // instructions per echo round trip (scripts/callgrind-echo, 7,686 -> 7,800). The marks stay
    // on what every turn or every write touches; the accept, listener, handshake-timer and
    // thread properties go without (7,687 with them unmarked). `tlsStaging` and `tlsReadBatch`
    // serve TLS records only, which that measurement does not exercise: marked.
    @exclusivity(unchecked) private var slots: [ConnectionSlot] = []
    private var freeSlots: [Int] = []
    public private(set) var connectionCount = 0
    private var listeners: [Int32] = []
    /// The TLS context of each listener (parallel to `listeners`), nil for plain TCP.
    private var listenerTLS: [TLSContext?] = []
    /// One record of plaintext, gathered from small queued segments before `SSL_write`.
    @exclusivity(unchecked) var tlsStaging: UnsafeMutableRawPointer?
    /// TLS connections to read in the next turn (input buffered inside OpenSSL).
    var tlsReadAgain: [UInt64] = []
    @exclusivity(unchecked) var tlsReadBatch: [UInt64] = []
    /// Handshake deadlines, keyed by connection id.
    var handshakeTimers = TimerHeap()
    var dueHandshakes: [TimerHeap.Entry] = []

    @exclusivity(unchecked) private var dirty: [UInt64] = []
    @exclusivity(unchecked) private var flushing: [UInt64] = []
    enum Note {
        case closed(UInt64, CloseReason)
        case drained(UInt64)
    }
    @exclusivity(unchecked) var notes: [Note] = []
    @exclusivity(unchecked) private var delivering = false

    @exclusivity(unchecked) private var timers = TimerHeap()
    @exclusivity(unchecked) private var dueTimers: [TimerHeap.Entry] = []
    @exclusivity(unchecked) private var lingers: [(deadline: Int64, id: UInt64)] = []
    @exclusivity(unchecked) private var lingerHead = 0

    @exclusivity(unchecked) var cachedNow: Instant
    /// Strong copy of `handler` for the current turn.
    @exclusivity(unchecked) var turnHandler: EventLoopHandler?
    @exclusivity(unchecked) private var wakeReady = false

    private struct PostQueue {
        var work: [@Sendable () -> Void] = []
        var wakePending = false
    }
    private let posted = Mutex(PostQueue())
    @exclusivity(unchecked) private var postBatch: [@Sendable () -> Void] = []
    /// Work queued from the loop thread itself: no lock, no wake-up; runs later this turn.
    @exclusivity(unchecked) private var localWork: [() -> Void] = []
    @exclusivity(unchecked) private var localBatch: [() -> Void] = []
    /// The thread running `run()`, for `isLoopThread`.
    private var loopThread: pthread_t?
    private let stopRequested = Atomic<Bool>(false)

    private var signalMask = sigset_t()
    private var signalHandlers: [Int32: [() -> Void]] = [:]
    private var limitRaised = false

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

    private func releaseResources() {
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
        localWork.append(work)
    }

    /// True on the thread running the loop.
    public var isLoopThread: Bool {
        guard let thread = loopThread else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    /// Runs the work queued with `runSoon`, including work it queues in turn.
    private func runLocal() {
        while !localWork.isEmpty {
            swap(&localWork, &localBatch)
            for i in localBatch.indices {
                localBatch[i]()
                deliverNotes()
            }
            localBatch.removeAll(keepingCapacity: true)
        }
    }

    private func wake() {
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

    private func dispatch(_ flags: UInt32, _ data: UInt64) {
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

    private func nextTimeout() -> Int32 {
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

    private func runPosted() {
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
    private func endTurn() {
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

    // MARK: - Listening and accepting

    /// Binds and listens (non-blocking, `SO_REUSEADDR`). `host` is an IPv4 or IPv6 literal
    /// (`[::1]` brackets allowed), `localhost`, or empty/`*` for all IPv4 addresses.
    /// Port 0 picks a free port; the bound port is returned. With `tls`, every connection
    /// accepted here speaks TLS (see `EventLoop+TLS.swift`). With `reusePort`, the socket sets
    /// `SO_REUSEPORT`, so that several loops may listen on one port and the kernel spreads
    /// incoming connections over them (by a hash of the peer's address and port).
    public func listen(host: String, port: Int, backlog: Int32 = 4096,
                       tls: TLSContext? = nil, reusePort: Bool = false) throws(ListenError) -> (ListenerID, port: Int) {
        var literal = host
        if literal.hasPrefix("["), literal.hasSuffix("]") { literal = String(literal.dropFirst().dropLast()) }
        if literal.isEmpty || literal == "*" { literal = "0.0.0.0" }
        if literal == "localhost" { literal = "127.0.0.1" }
        let isV6 = literal.contains(":")
        let address = isV6 ? "[\(literal)]:\(port)" : "\(literal):\(port)"
        func failure(_ operation: String, _ code: Int32) -> ListenError {
            ListenError(address: address, operation: operation, code: code)
        }
        guard (0...65535).contains(port) else { throw failure("parse address", EINVAL) }

        var storage = sockaddr_storage()
        let length: socklen_t
        let parsed: Int32 = withUnsafeMutableBytes(of: &storage) { raw in
            let big = UInt16(port).bigEndian
            if isV6 {
                raw.storeBytes(of: sa_family_t(AF_INET6), toByteOffset: 0, as: sa_family_t.self)
                raw.storeBytes(of: big, toByteOffset: 2, as: UInt16.self)
                return inet_pton(AF_INET6, literal, raw.baseAddress! + 8)
            } else {
                raw.storeBytes(of: sa_family_t(AF_INET), toByteOffset: 0, as: sa_family_t.self)
                raw.storeBytes(of: big, toByteOffset: 2, as: UInt16.self)
                return inet_pton(AF_INET, literal, raw.baseAddress! + 4)
            }
        }
        guard parsed == 1 else { throw failure("parse address", EINVAL) }
        length = socklen_t(isV6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)

        let fd = socket(isV6 ? AF_INET6 : AF_INET,
                        Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failure("socket", errno) }
        func abandon(_ operation: String) -> ListenError {
            let code = errno
            Glibc.close(fd)
            return failure(operation, code)
        }
        var one: Int32 = 1
        guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw abandon("setsockopt(SO_REUSEADDR)")
        }
        if reusePort, setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw abandon("setsockopt(SO_REUSEPORT)")
        }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw abandon("bind") }
        guard Glibc.listen(fd, backlog) == 0 else { throw abandon("listen") }
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        guard named == 0 else { throw abandon("getsockname") }
        let boundPort = PeerAddress(actual).port
        let index = listeners.count
        guard control(LinuxABI.epollCtlAdd, fd, LinuxABI.epollIn, Self.tagListenerBase + UInt64(index)) == 0 else {
            throw abandon("epoll_ctl")
        }
        listeners.append(fd)
        listenerTLS.append(tls)
        if tls != nil, tlsStaging == nil {
            tlsStaging = .allocate(byteCount: TLSOptions.recordSize, alignment: 64)
        }
        return (ListenerID(rawValue: index), port: boundPort)
    }

    /// Closes every listening socket; open connections are unaffected.
    public func stopAccepting() {
        for i in listeners.indices where listeners[i] >= 0 {
            Glibc.close(listeners[i])
            listeners[i] = -1
        }
    }

    private func acceptAll(_ index: Int) {
        guard index < listeners.count else { return }
        while listeners[index] >= 0 {
            let listenFD = listeners[index]
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sys.accept4(listenFD, $0, &length, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
                }
            }
            if fd < 0 {
                switch errno {
                case EINTR, ECONNABORTED, EPROTO, EPERM: continue
                case EMFILE, ENFILE: shedOne(listenFD)
                default: break
                }
                return
            }
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            guard let c = register(fd) else {
                Glibc.close(fd)
                continue
            }
            let raw = c.id
            let tls = listenerTLS[index]
            if let tls {
                guard let ssl = tls.makeConnection(for: c) else {
                    unregister(c)  // out of memory: dropped before anyone saw it
                    continue
                }
                startHandshake(c, ssl, tls)
            }
            turnHandler?.connectionAccepted(SocketID(rawValue: raw), peer: PeerAddress(storage),
                                            listener: ListenerID(rawValue: index))
            // The ClientHello has usually arrived by the time the accept is reported.
            if tls != nil, c.id == raw { advanceHandshake(c) }
        }
    }

    /// Out of descriptors: accept and drop one pending connection using the reserved
    /// descriptor, so the level-triggered listener does not spin.
    private func shedOne(_ listenFD: Int32) {
        guard spareFD >= 0 else { return }
        Glibc.close(spareFD)
        let fd = sys.accept4(listenFD, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
        if fd >= 0 { Glibc.close(fd) }
        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    private func register(_ fd: Int32) -> ConnectionSlot? {
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
        } else {
            guard UInt64(slots.count) < Self.slotMask else { return nil }
            slot = slots.count
            slots.append(ConnectionSlot())
        }
        var serial: UInt64 = 0
        while serial == 0 {  // 40 bits; 0 would collide with the non-connection tags
            serial = connectionSerial.wrappingAdd(1, ordering: .relaxed).oldValue & ((1 << 40) - 1)
        }
        let raw = (serial << Self.slotBits) | UInt64(slot)
        guard control(LinuxABI.epollCtlAdd, fd, LinuxABI.epollIn, raw) == 0 else {
            freeSlots.append(slot)
            return nil
        }
        let c = slots[slot]
        c.id = raw
        c.fd = fd
        c.interest = LinuxABI.epollIn
        connectionCount += 1
        return c
    }

    /// Undoes `register` for a connection that was never reported.
    private func unregister(_ c: ConnectionSlot) {
        _ = control(LinuxABI.epollCtlDel, c.fd, 0, 0)
        Glibc.close(c.fd)
        freeSlots.append(Int(truncatingIfNeeded: c.id & Self.slotMask))
        c.id = 0
        c.fd = -1
        c.interest = 0
        connectionCount -= 1
    }

    // MARK: - Connections

    @inline(__always)
    func lookup(_ raw: UInt64) -> ConnectionSlot? {
        let slot = Int(truncatingIfNeeded: raw & Self.slotMask)
        guard slot < slots.count else { return nil }
        let c = slots[slot]
        return c.id == raw && raw != 0 ? c : nil
    }

    private func connectionEvent(_ flags: UInt32, _ raw: UInt64) {
        guard let c = lookup(raw) else { return }
        if let ssl = c.ssl {
            tlsEvent(c, ssl, flags, raw)
            return
        }
        if flags & LinuxABI.epollErr != 0 {
            let code = socketError(c.fd)
            if code != 0 {
                fail(c, code)
                return
            }
        }
        if !c.paused || c.closing {
            if flags & (LinuxABI.epollIn | LinuxABI.epollHup | LinuxABI.epollErr) != 0 {
                readOnce(c, raw)
                guard c.id == raw else { return }
            }
        } else if flags & (LinuxABI.epollHup | LinuxABI.epollErr) != 0 {
            fail(c, ECONNRESET)
            return
        }
        if flags & LinuxABI.epollOut != 0, c.blocked {
            c.blocked = false
            markDirty(c)
        }
    }

    /// One `recv` per readiness report: level-triggered epoll reports the socket again next
    /// turn if more is pending, so one busy peer cannot starve the others.
    private func readOnce(_ c: ConnectionSlot, _ raw: UInt64) {
        let n = sys.recv(c.fd, readBuffer, Self.readBufferSize, 0)
        if n > 0 {
            if c.closing { return }
            turnHandler?.bytesReceived(SocketID(rawValue: raw),
                                       UnsafeRawBufferPointer(start: readBuffer, count: n))
        } else if n == 0 {
            if c.closing {
                destroy(c, .closedLocally)
            } else {
                if !c.queue.isEmpty, !c.blocked { _ = writeOut(c) }
                destroy(c, .peerClosed)
            }
        } else {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return }
            fail(c, code)
        }
    }

    func socketError(_ fd: Int32) -> Int32 {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) == 0 else { return errno }
        return code
    }

    func fail(_ c: ConnectionSlot, _ code: Int32) {
        let reason: CloseReason = c.closing ? .closedLocally : (code == ECONNRESET ? .reset : .error(code))
        destroy(c, reason)
    }

    /// Closes the descriptor, frees the slot and queues the single close notification.
    func destroy(_ c: ConnectionSlot, _ reason: CloseReason, drainInput: Bool = false) {
        let raw = c.id
        _ = control(LinuxABI.epollCtlDel, c.fd, 0, 0)
        if drainInput {
            // Unread input makes close() send RST; discard a bounded amount first.
            var reads = 0
            while reads < 16, recv(c.fd, readBuffer, Self.readBufferSize, 0) > 0 { reads += 1 }
        }
        if let ssl = c.ssl {
            SSL_free(ssl)
            c.ssl = nil
            if c.tlsHandshaking { handshakeTimers.cancel(raw) }
            c.tlsHandshaking = false
            c.tlsNeedsWritable = false
            c.tlsWriteNeedsReadable = false
            c.tlsReadQueued = false
            c.tlsMoreToSend = false
            c.tlsInputDrained = false
        }
        Glibc.close(c.fd)
        c.queue.discardAll()
        c.id = 0
        c.fd = -1
        c.paused = false
        c.closing = false
        c.shutdownSent = false
        c.blocked = false
        c.inDirtyList = false
        c.interest = 0
        freeSlots.append(Int(truncatingIfNeeded: raw & Self.slotMask))
        connectionCount -= 1
        notes.append(.closed(raw, reason))
    }

    @inline(__always)
    func markDirty(_ c: ConnectionSlot) {
        if !c.inDirtyList {
            c.inDirtyList = true
            dirty.append(c.id)
        }
    }

    func updateInterest(_ c: ConnectionSlot) {
        var wanted: UInt32 = 0
        if !c.paused || c.closing { wanted |= LinuxABI.epollIn }
        if c.blocked { wanted |= LinuxABI.epollOut }
        if c.ssl != nil {
            if c.tlsHandshaking || c.tlsWriteNeedsReadable { wanted |= LinuxABI.epollIn }
            if c.tlsNeedsWritable { wanted |= LinuxABI.epollOut }
        }
        if wanted != c.interest, control(LinuxABI.epollCtlMod, c.fd, wanted, c.id) == 0 {
            c.interest = wanted
        }
    }

    @discardableResult
    private func control(_ op: Int32, _ fd: Int32, _ events: UInt32, _ data: UInt64) -> Int32 {
        var event: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &event) { raw in
            raw.storeBytes(of: events, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: data, toByteOffset: LinuxABI.epollDataOffset, as: UInt64.self)
            return sys.epollCtl(epollFD, op, fd, raw.baseAddress)
        }
    }

    // MARK: - Writing

    private enum WriteOutcome { case complete, blocked, failed(Int32) }

    private func flush(_ c: ConnectionSlot) {
        if let ssl = c.ssl {
            flushTLS(c, ssl)
            return
        }
        if !c.queue.isEmpty, !c.blocked {
            switch writeOut(c) {
            case .failed(let code):
                fail(c, code)
                return
            case .blocked:
                c.blocked = true
            case .complete:
                break
            }
        }
        if settleBacklog(c), c.closing, !c.shutdownSent {
            c.shutdownSent = true
            _ = shutdown(c.fd, Int32(SHUT_WR))
        }
        updateInterest(c)
    }

    /// After a write attempt (plain or TLS): whether the queue is empty. An emptied queue that
    /// had been backlogged reports `drained` (not while closing); a non-empty one is backlogged.
    @inline(__always)
    func settleBacklog(_ c: ConnectionSlot) -> Bool {
        let (isEmpty, drained) = c.queue.settle()
        if drained, !c.closing { notes.append(.drained(c.id)) }
        return isEmpty
    }

    /// `sendmsg` (= `writev` plus `MSG_NOSIGNAL`, so no SIGPIPE) of up to IOV_MAX segments, or
    /// `send` for one; repeats only if every byte offered was taken and segments remain.
    private func writeOut(_ c: ConnectionSlot) -> WriteOutcome {
        while true {
            let (count, total) = c.queue.fill(iovecs, capacity: LinuxABI.iovMax)
            let n: Int
            if count == 1 {
                // One segment (the usual corked buffer): plain send, no msghdr or iovec import.
                n = sys.send(c.fd, iovecs[0].iov_base, total, Int32(MSG_NOSIGNAL))
            } else {
                var message = msghdr()
                message.msg_iov = iovecs
                message.msg_iovlen = count
                n = sys.sendmsg(c.fd, &message, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK { return .blocked }
                return .failed(code)
            }
            c.queue.consume(n)
            if n < total { return .blocked }
            if c.queue.isEmpty { return .complete }
        }
    }

    /// Queues `bytes` without copying; written at the end of the turn. Ignored for unknown
    /// or closing connections.
    public func write(_ id: SocketID, _ bytes: SharedBytes) {
        _ = write(id, bytes, ifBufferedAtMost: .max)
    }

    /// Copies `copying` into the connection's queue (consecutive copies are merged).
    public func write(_ id: SocketID, copying bytes: UnsafeRawBufferPointer) {
        _ = write(id, copying: bytes, ifBufferedAtMost: .max)
    }

    /// `write(_:copying:)` unless more than `limit` bytes are queued: then false, nothing
    /// queued. Unknown and closing connections take nothing and answer true (no backpressure).
    public func write(_ id: SocketID, copying bytes: UnsafeRawBufferPointer, ifBufferedAtMost limit: Int) -> Bool {
        guard let c = lookup(id.rawValue), !c.closing else { return true }
        guard c.queue.accepts(limit) else { return false }
        c.queue.append(copying: bytes)
        if !c.blocked { markDirty(c) }
        return true
    }

    /// `first` then `second` copied (merged into one segment), unless more than `limit` bytes
    /// are queued (then false, nothing queued): a frame's header and payload in one call.
    public func write(_ id: SocketID, copying first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
                      ifBufferedAtMost limit: Int) -> Bool {
        guard let c = lookup(id.rawValue), !c.closing else { return true }
        guard c.queue.accepts(limit) else { return false }
        c.queue.append(copying: first)
        c.queue.append(copying: second)
        if !c.blocked { markDirty(c) }
        return true
    }

    /// `write(_:_:)` unless more than `limit` bytes are queued (then false).
    public func write(_ id: SocketID, _ bytes: SharedBytes, ifBufferedAtMost limit: Int) -> Bool {
        guard let c = lookup(id.rawValue), !c.closing else { return true }
        guard c.queue.accepts(limit) else { return false }
        c.queue.append(bytes)
        if !c.blocked { markDirty(c) }
        return true
    }

    /// Bytes queued and not yet accepted by the kernel (for TLS: plaintext not yet accepted
    /// by `SSL_write`); 0 for unknown connections.
    public func bufferedAmount(_ id: SocketID) -> Int {
        lookup(id.rawValue)?.queue.bytes ?? 0
    }

    /// `flushFirst: false` closes now (queued output dropped, pending input discarded so no
    /// RST). `flushFirst: true` flushes the queue, sends FIN, and closes when the peer's FIN
    /// arrives or after `lingerMilliseconds`. Either way `connectionClosed(.closedLocally)`
    /// follows once the descriptor is closed, and later writes are ignored.
    public func close(_ id: SocketID, flushFirst: Bool) {
        guard let c = lookup(id.rawValue) else { return }
        guard flushFirst else {
            destroy(c, .closedLocally, drainInput: true)
            return
        }
        guard !c.closing else { return }
        c.closing = true
        updateInterest(c)
        lingers.append((cachedNow.milliseconds + lingerMilliseconds, c.id))
        markDirty(c)
    }

    /// Stops (or resumes) reading; removes EPOLLIN so a paused socket costs nothing.
    /// Ignored while closing (reading continues to see the peer's FIN).
    public func pauseReading(_ id: SocketID, _ paused: Bool) {
        guard let c = lookup(id.rawValue), c.paused != paused else { return }
        c.paused = paused
        updateInterest(c)
        // OpenSSL may hold decrypted or buffered input that epoll will not report again.
        if !paused, c.ssl != nil, !c.tlsHandshaking { queueTLSRead(c) }
    }

    private func expireLingers() {
        while lingerHead < lingers.count, lingers[lingerHead].deadline <= cachedNow.milliseconds {
            let raw = lingers[lingerHead].id
            lingerHead += 1
            if let c = lookup(raw), c.closing { destroy(c, .closedLocally) }
            deliverNotes()
        }
        if lingerHead == lingers.count, lingerHead > 0 {
            lingers.removeAll(keepingCapacity: true)
            lingerHead = 0
        }
    }

    // MARK: - Timers

    /// Arms a one-shot timer; scheduling an armed token replaces it. O(log n).
    public func schedule(_ token: UInt64, at deadline: Instant) {
        timers.schedule(token, at: deadline.milliseconds)
    }

    public func cancel(_ token: UInt64) {
        timers.cancel(token)
    }

    private func fireTimers() {
        timers.collectDue(now: cachedNow.milliseconds, into: &dueTimers)
        var i = 0
        while i < dueTimers.count {
            let entry = dueTimers[i]
            i += 1
            if timers.claim(entry) {
                turnHandler?.timerFired(entry.token)
                deliverNotes()
            }
        }
        dueTimers.removeAll(keepingCapacity: true)
    }

    // MARK: - Signals

    /// Runs `handler` on the loop when one of `signals` arrives, through a signalfd. The
    /// signals are blocked in the calling thread; call this before starting other threads
    /// (they inherit the mask) so that no thread takes the default action instead.
    public func onSignal(_ signals: [Int32], _ handler: @escaping () -> Void) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals {
            sigaddset(&set, signal)
            sigaddset(&signalMask, signal)
            signalHandlers[signal, default: []].append(handler)
        }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        if signalFD < 0 {
            signalFD = sys.signalfd(-1, &signalMask, LinuxABI.nonblock | LinuxABI.cloexec)
            guard signalFD >= 0 else { fatalError("SwitchboardPOSIX: signalfd: \(errnoText(errno))") }
            control(LinuxABI.epollCtlAdd, signalFD, LinuxABI.epollIn, Self.tagSignal)
        } else {
            _ = sys.signalfd(signalFD, &signalMask, 0)
        }
    }

    private func readSignals() {
        withUnsafeTemporaryAllocation(byteCount: LinuxABI.signalInfoSize * 8, alignment: 8) { buffer in
            while true {
                let n = Glibc.read(signalFD, buffer.baseAddress, buffer.count)
                guard n >= LinuxABI.signalInfoSize else { return }
                for offset in stride(from: 0, to: n, by: LinuxABI.signalInfoSize) {
                    let signal = Int32(buffer.load(fromByteOffset: offset, as: UInt32.self))
                    for handler in signalHandlers[signal] ?? [] { handler() }
                }
            }
        }
    }
}
