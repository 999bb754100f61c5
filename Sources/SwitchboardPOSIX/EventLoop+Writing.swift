import Glibc
import SwitchboardDriverSupport

/// Output: the corked per-connection queues, their flush at the end of a turn, close and linger.
extension EventLoop {
    enum WriteOutcome { case complete, blocked, failed(Int32) }

    func flush(_ c: ConnectionSlot) {
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
    func writeOut(_ c: ConnectionSlot) -> WriteOutcome {
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

    func expireLingers() {
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
}
