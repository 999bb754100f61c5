import CURing
import Glibc

/// The receive buffers the kernel picks from (a provided buffer ring, Linux 5.19): one pool
/// shared by every connection's multishot receive, so an idle connection holds no read
/// buffer at all, as with the epoll driver's one 64 KiB buffer.
///
/// Each completion names the buffer it filled; the loop hands its bytes to the engine and
/// gives the buffer back at once (`recycle`). The kernel takes buffers in ring order, so a
/// ring holding the whole pool would walk through every buffer in turn and keep all of them
/// resident (512 of 4 KiB: 2 MiB, 420 bytes per connection of 5,000 idle ones). Instead
/// `publish` keeps only `depth` buffers ahead of the kernel, taken from the top of a stack of
/// free ones: the buffers just given back are the next ones offered, and the rest of the
/// pool is never touched. `depth` starts small and doubles each time a receive finds the
/// ring empty (`ENOBUFS`, after which the loop arms it again and the bytes wait in the
/// socket meanwhile), so a busy server soon offers what its turns take.
///
/// The memory is mapped lazily: pages are touched only as the kernel fills buffers.
/// Loop-confined.
final class BufferRing {
    /// The buffer group of every receive (the one group this driver registers).
    static let group: UInt16 = 0
    /// Buffers kept ahead of the kernel at first (see `depth`).
    static let initialDepth = 64

    let count: Int
    let size: Int
    private let ring: UnsafeMutableRawPointer
    private let ringBytes: Int
    private let buffers: UnsafeMutableRawPointer
    private let buffersBytes: Int
    private let mask: UInt16
    @exclusivity(unchecked) private var tail: UInt16 = 0
    /// Buffers given back and not in the ring, the most recently used on top (`freeCount` of
    /// them; a plain stack of `count` ids: no array's uniqueness and bounds checks per buffer).
    private let free: UnsafeMutablePointer<UInt16>
    @exclusivity(unchecked) private var freeCount: Int
    /// Buffers in the ring that no completion has named yet.
    @exclusivity(unchecked) private var offered = 0
    /// How many buffers `publish` keeps in the ring.
    @exclusivity(unchecked) private(set) var depth: Int
    @exclusivity(unchecked) private var dry = false

    /// `count` buffers (a power of two, at most 32768) of `size` bytes each, registered with
    /// `ring`. - Throws: `URingUnavailable` when the kernel has no provided buffer rings.
    init(ring owner: Ring, count: Int, size: Int) throws(URingUnavailable) {
        precondition(count > 0 && count <= 32768 && count & (count - 1) == 0, "buffer count: a power of two")
        self.count = count
        self.size = size
        mask = UInt16(count - 1)
        depth = min(count, Self.initialDepth)
        ringBytes = count * 16  // sizeof(struct io_uring_buf)
        buffersBytes = count * size
        guard let ringMemory = mmap(nil, ringBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              ringMemory != Ring.mapFailed else {
            throw URingUnavailable(step: "mmap of the buffer ring", code: errno)
        }
        guard let bufferMemory = mmap(nil, buffersBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              bufferMemory != Ring.mapFailed else {
            let code = errno
            munmap(ringMemory, ringBytes)
            throw URingUnavailable(step: "mmap of the receive buffers", code: code)
        }
        ring = ringMemory
        buffers = bufferMemory
        let registered = sb_register_buf_ring(owner.fd, ring, UInt32(count), Self.group)
        guard registered >= 0 else {
            munmap(ringMemory, ringBytes)
            munmap(bufferMemory, buffersBytes)
            throw URingUnavailable(step: "IORING_REGISTER_PBUF_RING (provided buffer rings: Linux 5.19)", code: -registered)
        }
        // Buffer 0 on top: the first ones offered are the first in memory.
        free = .allocate(capacity: count)
        for i in 0..<count { free[i] = UInt16(count - 1 - i) }
        freeCount = count
        publish()
    }

    /// Unmaps the memory. Only once nothing in the kernel may still pick a buffer: the ring
    /// is closed, or every receive has ended (see `URingLoop.finish`).
    func release() {
        munmap(ring, ringBytes)
        munmap(buffers, buffersBytes)
    }

    deinit { free.deallocate() }

    /// The memory of buffer `id`.
    @inline(__always)
    func buffer(_ id: UInt16) -> UnsafeMutableRawPointer {
        buffers + Int(id) * size
    }

    /// Gives buffer `id`, named by a completion, back to the pool (offered again by `publish`).
    @inline(__always)
    func recycle(_ id: UInt16) {
        offered -= 1
        free[freeCount] = id
        freeCount += 1
    }

    /// A receive found no buffer: the next `publish` offers twice as many (once however
    /// many receives of the batch ran dry).
    func ranDry() {
        dry = true
    }

    /// Tops the ring up to `depth` buffers with the most recently used free ones, and makes
    /// them available to the kernel.
    @inline(__always)
    func publish() {
        if dry {
            dry = false
            depth = min(count, depth * 2)
        }
        guard offered < depth, freeCount > 0 else { return }
        while offered < depth, freeCount > 0 {
            freeCount -= 1
            let id = free[freeCount]
            sb_buf_ring_add(ring, mask, tail, buffers + Int(id) * size, UInt32(size), id)
            tail &+= 1
            offered += 1
        }
        sb_buf_ring_publish(ring, tail)
    }
}
