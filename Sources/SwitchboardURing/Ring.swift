import CURing
import Glibc

/// One io_uring instance: the submission and completion rings mapped into this process, and
/// the one system call a loop turn makes (`submitAndWait`).
///
/// Set up disabled (`IORING_SETUP_R_DISABLED`) so that it can be made and checked on any
/// thread; `enable()` on the loop thread makes that thread its single issuer
/// (`IORING_SETUP_SINGLE_ISSUER` with `IORING_SETUP_DEFER_TASKRUN`: completions are produced
/// only inside our own `io_uring_enter`, so the kernel does no work for us behind the loop's
/// back and never interrupts it with task work). Loop-confined after that; not thread-safe.
final class Ring {
    /// A completion: what `forEachCompletion` hands out.
    struct Completion {
        var userData: UInt64
        var result: Int32
        var flags: UInt32
    }

    let fd: Int32
    /// `fd`, or its index once registered with the loop thread (`IORING_REGISTER_RING_FDS`).
    private var enterFD: Int32
    private var enterFlags: UInt32 = 0
    let features: UInt32
    /// The flags the ring was set up with (the first combination the kernel accepted).
    let setupFlags: UInt32

    /// Both rings (one mapping: IORING_FEAT_SINGLE_MMAP).
    private let ringMemory: UnsafeMutableRawPointer
    private let ringMemorySize: Int
    private let sqes: UnsafeMutableRawPointer
    private let sqesSize: Int

    private let sqHead: UnsafeMutablePointer<UInt32>
    private let sqTail: UnsafeMutablePointer<UInt32>
    private let sqMask: UInt32
    let sqEntries: UInt32
    private let cqHead: UnsafeMutablePointer<UInt32>
    private let cqTail: UnsafeMutablePointer<UInt32>
    private let cqMask: UInt32
    private let cqes: UnsafeMutableRawPointer

    /// Entries prepared so far (published to the kernel at the next `submitAndWait`).
    @exclusivity(unchecked) private var localTail: UInt32

    private static let sqeSize = 64
    /// `MAP_FAILED`, which Swift does not import.
    static var mapFailed: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: -1) }
    private static let cqeSize = 16

    /// Sets up a ring of `entries` submissions and `completions` completions.
    /// - Throws: `URingUnavailable` naming the step that failed and the errno.
    init(entries: UInt32, completions: UInt32) throws(URingUnavailable) {
        let base = UInt32(IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP)
        // The fast combination first (Linux 6.1); then without the single-issuer pair.
        let attempts = [
            base | UInt32(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN),
            base | UInt32(IORING_SETUP_COOP_TASKRUN),
            base,
        ]
        var params = io_uring_params()
        var result: Int32 = -EINVAL
        var chosen: UInt32 = 0
        for flags in attempts {
            params = io_uring_params()
            params.flags = flags
            params.cq_entries = completions
            result = sb_uring_setup(entries, &params)
            chosen = flags
            if result != -EINVAL { break }
        }
        guard result >= 0 else { throw URingUnavailable(step: "io_uring_setup", code: -result) }
        let ringFD = result
        let features = params.features
        fd = ringFD
        enterFD = ringFD
        setupFlags = chosen
        self.features = features
        func fail(_ step: String, _ code: Int32) -> URingUnavailable {
            Glibc.close(ringFD)
            return URingUnavailable(step: step, code: code)
        }
        let needed = UInt32(IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_SUBMIT_STABLE | IORING_FEAT_EXT_ARG)
        guard features & needed == needed else {
            throw fail("io_uring features (single mmap, no drop, stable submissions, timeouts on enter: Linux 5.11)", ENOTSUP)
        }

        let sqOff = params.sq_off
        let cqOff = params.cq_off
        // IORING_FEAT_SINGLE_MMAP: one mapping serves both rings.
        let ringSize = max(Int(sqOff.array) + Int(params.sq_entries) * MemoryLayout<UInt32>.size,
                           Int(cqOff.cqes) + Int(params.cq_entries) * Self.cqeSize)
        guard let rings = mmap(nil, ringSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ringFD,
                               off_t(IORING_OFF_SQ_RING)), rings != Self.mapFailed else {
            throw fail("mmap of the rings", errno)
        }
        let entriesSize = Int(params.sq_entries) * Self.sqeSize
        guard let entriesMemory = mmap(nil, entriesSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ringFD,
                                       off_t(IORING_OFF_SQES)), entriesMemory != Self.mapFailed else {
            let code = errno
            munmap(rings, ringSize)
            throw fail("mmap of the submission entries", code)
        }
        ringMemory = rings
        ringMemorySize = ringSize
        sqes = entriesMemory
        sqesSize = entriesSize
        func word(_ memory: UnsafeMutableRawPointer, _ offset: UInt32) -> UnsafeMutablePointer<UInt32> {
            (memory + Int(offset)).assumingMemoryBound(to: UInt32.self)
        }
        let tail = word(rings, sqOff.tail)
        let entryCount = word(rings, sqOff.ring_entries).pointee
        sqHead = word(rings, sqOff.head)
        sqTail = tail
        sqMask = word(rings, sqOff.ring_mask).pointee
        sqEntries = entryCount
        cqHead = word(rings, cqOff.head)
        cqTail = word(rings, cqOff.tail)
        cqMask = word(rings, cqOff.ring_mask).pointee
        cqes = rings + Int(cqOff.cqes)
        // The indirection array, set to the identity once: entry i is slot i.
        let array = word(rings, sqOff.array)
        for i in 0..<Int(entryCount) { array[i] = UInt32(i) }
        localTail = tail.pointee
    }

    deinit {
        munmap(sqes, sqesSize)
        munmap(ringMemory, ringMemorySize)
        Glibc.close(fd)
    }

    /// Whether the kernel knows every operation the driver submits.
    var supportsNetworkOperations: Bool { sb_probe_network_ops(fd) == 1 }

    /// Enables the ring on the calling thread, which becomes the only one that may submit
    /// (and registers the ring's descriptor with it, where the kernel allows).
    func enable() -> Int32 {
        let result = sb_uring_register(fd, UInt32(IORING_REGISTER_ENABLE_RINGS), nil, 0)
        guard result >= 0 else { return -result }
        let index = sb_register_ring_fd(fd)
        if index >= 0 {
            enterFD = index
            enterFlags = UInt32(IORING_ENTER_REGISTERED_RING)
        }
        return 0
    }

    /// On the loop thread, once it stops submitting: the thread's registration of the ring
    /// would otherwise keep the ring alive until the thread ends.
    func unregisterFromThread() {
        guard enterFlags != 0 else { return }
        _ = sb_unregister_ring_fd(fd, UInt32(enterFD))
        enterFD = fd
        enterFlags = 0
    }

    /// Entries prepared and not yet taken by the kernel.
    var unsubmitted: UInt32 { localTail &- sb_load_acquire(sqHead) }

    /// The next free submission entry, to be filled by one of the `sb_prep_*` helpers; nil
    /// when the ring is full (submit first).
    @inline(__always)
    func nextEntry() -> UnsafeMutableRawPointer? {
        guard localTail &- sb_load_acquire(sqHead) < sqEntries else { return nil }
        let entry = sqes + Int(localTail & sqMask) * Self.sqeSize
        localTail &+= 1
        return entry
    }

    /// Publishes the prepared entries and enters the kernel once: submits them, runs the
    /// completions that are ready, and with `waitFor` > 0 sleeps until that many are (or
    /// `timeoutNanoseconds` passed; negative: no limit). Answers 0 or an errno: `ETIME` (the
    /// timeout), `EINTR` (a signal), `EBUSY`/`EAGAIN` (the kernel's completion backlog is full:
    /// reap and enter again).
    func submitAndWait(waitFor: UInt32, timeoutNanoseconds: Int64) -> Int32 {
        sb_store_release(sqTail, localTail)
        let pending = localTail &- sb_load_acquire(sqHead)
        let result = sb_uring_enter(enterFD, pending, waitFor, enterFlags, timeoutNanoseconds)
        return result < 0 ? -result : 0
    }

    /// Hands every ready completion to `body`, oldest first, then frees their slots. `body`
    /// may prepare entries, and may submit (`submitAndWait` with no wait) if the ring is full.
    @inline(__always)
    func forEachCompletion(_ body: (Completion) -> Void) {
        var head = cqHead.pointee
        while true {
            let tail = sb_load_acquire(cqTail)
            if head == tail { break }
            while head != tail {
                let cqe = cqes + Int(head & cqMask) * Self.cqeSize
                let completion = Completion(userData: cqe.load(as: UInt64.self),
                                            result: cqe.load(fromByteOffset: 8, as: Int32.self),
                                            flags: cqe.load(fromByteOffset: 12, as: UInt32.self))
                head &+= 1
                // Freed before the body runs: a body that submits frees room for the kernel.
                sb_store_release(cqHead, head)
                body(completion)
            }
        }
    }
}
