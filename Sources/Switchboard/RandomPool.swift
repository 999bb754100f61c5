import Glibc
import Synchronization

/// Random words for `IDGenerator`, read from the kernel 4 KiB at a time.
///
/// `SystemRandomNumberGenerator` asks the kernel for every word it gives (a `getrandom` system
/// call per `next()`), so an id cost two system calls: with the accept, the reads and the
/// writes, two of the fourteen a connection made. From the pool, a read of `/dev/urandom`
/// (the same source) serves 256 ids. Shared by the loops' generators, hence the lock; if the
/// device cannot be read, words come from `SystemRandomNumberGenerator` as before.
/// (`@usableFromInline`: `IDGenerator.init`'s default argument names it.)
@usableFromInline
final class RandomPool: Sendable {
    @usableFromInline static let shared = RandomPool()

    private struct Words {
        var buffer = [UInt64](repeating: 0, count: 512)
        var next = 512  // empty: filled on first use
    }

    private let words = Mutex(Words())

    /// Two random words.
    @usableFromInline func pair() -> (UInt64, UInt64) {
        words.withLock { words in
            if words.next + 2 > words.buffer.count {
                Self.fill(&words.buffer)
                words.next = 0
            }
            defer { words.next += 2 }
            return (words.buffer[words.next], words.buffer[words.next + 1])
        }
    }

    private static func fill(_ buffer: inout [UInt64]) {
        let filled = buffer.withUnsafeMutableBytes { bytes -> Bool in
            let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var done = 0
            while done < bytes.count {
                let count = read(fd, bytes.baseAddress! + done, bytes.count - done)
                if count > 0 {
                    done += count
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    return false
                }
            }
            return true
        }
        guard !filled else { return }
        var generator = SystemRandomNumberGenerator()
        for index in buffer.indices { buffer[index] = generator.next() }
    }
}
