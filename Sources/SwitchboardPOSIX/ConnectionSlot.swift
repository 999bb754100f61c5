import SwitchboardDriverSupport

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
