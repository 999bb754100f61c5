import COpenSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Random bytes for AES-GCM IVs, which must be unique but need not be secret. A
/// `RAND_bytes` call costs about a microsecond whatever its size, so IVs come from a shared
/// reserve refilled 4 KiB at a time (a few nanoseconds plus an uncontended lock per IV).
/// Never used for keys or salts. A forked child discards the reserve it inherited.
struct IVSource: RandomSource {
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        IVReserve.fill(buffer)
    }
}

enum IVReserve {
    static let capacity = 4080  // 340 IVs

    private struct State {
        var bytes = [UInt8](repeating: 0, count: IVReserve.capacity)
        var next = IVReserve.capacity  // empty: the first draw refills
        var forkGeneration: UInt64 = 0
    }

    private static let state: Mutex<State> = {
        pthread_atfork(nil, nil, { forkGeneration.add(1, ordering: .relaxed) })
        return Mutex(State())
    }()

    static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard var out = buffer.baseAddress else { return }
        var remaining = buffer.count
        state.withLock { state in
            let generation = forkGeneration.load(ordering: .relaxed)
            if state.forkGeneration != generation {
                state.forkGeneration = generation
                state.next = capacity
            }
            while remaining > 0 {
                if state.next == capacity {
                    state.bytes.withUnsafeMutableBytes { SecureRandom.fill($0) }
                    state.next = 0
                }
                let take = min(remaining, capacity - state.next)
                let start = state.next
                state.bytes.withUnsafeBytes { reserve in
                    out.copyMemory(from: reserve.baseAddress! + start, byteCount: take)
                }
                state.next += take  // bytes before `next` are never handed out again
                out += take
                remaining -= take
            }
        }
    }
}

private let forkGeneration = Atomic<UInt64>(0)
