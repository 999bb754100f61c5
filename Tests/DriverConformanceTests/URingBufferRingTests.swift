import CURing
import Glibc
@testable import SwitchboardURing
import Testing

/// `BufferRing` against the kernel: multishot receives on socket pairs, the buffers they
/// name counted. The pool's resident memory is the buffers the kernel ever filled, so which
/// ones it is offered is what these check.
@Suite("URing buffer ring", .enabled(if: uringUnavailable == nil, "io_uring is not available here"))
struct URingBufferRingTests {
    /// A ring enabled on this thread, a pool of 512 buffers of 4 KiB, and `pairs` socket
    /// pairs, each with a multishot receive on its first end.
    private final class Rig {
        let ring: Ring
        let buffers: BufferRing
        var pairs: [(Int32, Int32)] = []
        /// Receives still in the kernel.
        var armed = 0

        init(pairs count: Int) throws {
            ring = try Ring(entries: 256, completions: 1024)
            #expect(ring.enable() == 0)
            buffers = try BufferRing(ring: ring, count: 512, size: 4096)
            for index in 0..<count {
                var fds: [Int32] = [0, 0]
                #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
                pairs.append((fds[0], fds[1]))
                sb_prep_recv_multishot(ring.nextEntry()!, fds[0], BufferRing.group, UInt64(index))
            }
            armed = count
        }

        /// Enters once, waiting for `count` completions; the buffers they name, given back.
        func receive(_ count: UInt32) -> (buffers: [UInt16], dry: Int) {
            buffers.publish()
            _ = ring.submitAndWait(waitFor: count, timeoutNanoseconds: 5_000_000_000)
            var named: [UInt16] = []
            var dry = 0
            ring.forEachCompletion { completion in
                if completion.flags & UInt32(IORING_CQE_F_BUFFER) != 0 {
                    let id = UInt16(truncatingIfNeeded: completion.flags >> 16)
                    named.append(id)
                    buffers.recycle(id)
                } else if completion.result == -ENOBUFS {
                    dry += 1
                    buffers.ranDry()
                }
                if completion.flags & UInt32(IORING_CQE_F_MORE) == 0 { armed -= 1 }
            }
            return (named, dry)
        }

        /// Ends every receive (the peers' FIN) before the memory goes.
        func close() {
            for (_, theirs) in pairs { Glibc.close(theirs) }
            while armed > 0 {
                guard ring.submitAndWait(waitFor: 1, timeoutNanoseconds: 5_000_000_000) == 0 else { break }
                ring.forEachCompletion { completion in
                    if completion.flags & UInt32(IORING_CQE_F_BUFFER) != 0 {
                        buffers.recycle(UInt16(truncatingIfNeeded: completion.flags >> 16))
                    }
                    if completion.flags & UInt32(IORING_CQE_F_MORE) == 0 { armed -= 1 }
                }
            }
            for (mine, _) in pairs { Glibc.close(mine) }
            ring.unregisterFromThread()
            buffers.release()
        }
    }

    @Test("a thousand receives one at a time fill only the buffers kept ahead, not the whole pool")
    func recentBuffersAreReused() throws {
        let rig = try Rig(pairs: 1)
        var seen = Set<UInt16>()
        let byte: UInt8 = 42
        for _ in 0..<1000 {
            var copy = byte
            #expect(write(rig.pairs[0].1, &copy, 1) == 1)
            let (named, dry) = rig.receive(1)
            #expect(named.count == 1 && dry == 0)
            seen.formUnion(named)
        }
        rig.close()
        // Filling the ring in order with every buffer given back at its tail walks the whole
        // pool (512 buffers); offering the last ones given back keeps to `depth` and one more.
        #expect(rig.buffers.depth == BufferRing.initialDepth)
        #expect(seen.count <= BufferRing.initialDepth + 1, "\(seen.count) distinct buffers filled")
    }

    @Test("a batch of receives larger than what is offered runs dry once, and twice as many are offered next")
    func runningDryDoublesTheDepth() throws {
        let count = BufferRing.initialDepth + 16
        let rig = try Rig(pairs: count)
        let byte: UInt8 = 7
        for pair in rig.pairs {
            var copy = byte
            #expect(write(pair.1, &copy, 1) == 1)
        }
        // Every receive completes in this one enter: 64 with a buffer, 16 with ENOBUFS.
        var filled = 0
        var dry = 0
        while filled + dry < count {
            let (named, ranDry) = rig.receive(UInt32(count - filled - dry))
            filled += named.count
            dry += ranDry
        }
        #expect(filled == BufferRing.initialDepth)
        #expect(dry == 16)
        rig.buffers.publish()
        #expect(rig.buffers.depth == 2 * BufferRing.initialDepth)
        rig.close()
    }
}
