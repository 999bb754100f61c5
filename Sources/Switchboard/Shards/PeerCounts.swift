import Synchronization

/// Open connections per client address, for `maxConnectionsPerIP`, shared by every loop of a
/// server: a client's connections may land on different loops, and the limit is the server's.
/// Locked, but only at accept and close of a counted connection (with a limit set), never on
/// a message's path.
final class PeerCounts: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    init() {}

    /// Counts one more connection of `address`; false (not counted) when it is at `limit`.
    func add(_ address: String, limit: Int) -> Bool {
        counts.withLock { counts in
            let count = counts[address, default: 0]
            guard count < limit else { return false }
            counts[address] = count + 1
            return true
        }
    }

    /// One connection of `address` closed.
    func remove(_ address: String) {
        counts.withLock { counts in
            guard let count = counts[address] else { return }
            counts[address] = count > 1 ? count - 1 : nil
        }
    }
}
