import CURing
import Glibc

/// The receive buffers the kernel picks from (a provided buffer ring, Linux 5.19): one pool
/// shared by every connection's multishot receive, so an idle connection holds no read
/// buffer at all, as with the epoll driver's one 64 KiB buffer.
///
/// Each completion names the buffer it filled; the loop hands its bytes to the engine and
/// gives the buffer back at once (`recycle`), and makes the returned buffers visible to the
/// kernel once per batch of completions (`publish`). When the pool runs dry, a receive ends
/// with `ENOBUFS` and the loop arms it again; the bytes wait in the socket meanwhile.
///
/// The memory is mapped lazily: pages are touched only as the kernel fills buffers, so a
/// quiet server keeps few of them resident. Loop-confined.
final class BufferRing {
    /// The buffer group of every receive (the one group this driver registers).
    static let group: UInt16 = 0

    let count: Int
    let size: Int
    private let ring: UnsafeMutableRawPointer
    private let ringBytes: Int
    private let buffers: UnsafeMutableRawPointer
    private let buffersBytes: Int
    private let mask: UInt16
    @exclusivity(unchecked) private var tail: UInt16 = 0
    @exclusivity(unchecked) private var unpublished = false

    /// `count` buffers (a power of two, at most 32768) of `size` bytes each, registered with
    /// `ring`. - Throws: `URingUnavailable` when the kernel has no provided buffer rings.
    init(ring owner: Ring, count: Int, size: Int) throws(URingUnavailable) {
        precondition(count > 0 && count <= 32768 && count & (count - 1) == 0, "buffer count: a power of two")
        self.count = count
        self.size = size
        mask = UInt16(count - 1)
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
        for id in 0..<count { recycle(UInt16(id)) }
        publish()
    }

    /// Unmaps the memory. Only once nothing in the kernel may still pick a buffer: the ring
    /// is closed, or every receive has ended (see `URingLoop.finish`).
    func release() {
        munmap(ring, ringBytes)
        munmap(buffers, buffersBytes)
    }

    /// The memory of buffer `id`.
    @inline(__always)
    func buffer(_ id: UInt16) -> UnsafeMutableRawPointer {
        buffers + Int(id) * size
    }

    /// Gives buffer `id` back to the pool (visible to the kernel after `publish`).
    @inline(__always)
    func recycle(_ id: UInt16) {
        sb_buf_ring_add(ring, mask, tail, buffers + Int(id) * size, UInt32(size), id)
        tail &+= 1
        unpublished = true
    }

    /// Makes the recycled buffers available to the kernel.
    @inline(__always)
    func publish() {
        guard unpublished else { return }
        unpublished = false
        sb_buf_ring_publish(ring, tail)
    }
}
