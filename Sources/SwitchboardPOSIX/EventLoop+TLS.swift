import COpenSSL
import Glibc

/// TLS connections (accepted on a listener given a `TLSContext`).
///
/// OpenSSL does its own socket I/O through a small BIO over the descriptor
/// (`socketBIOMethod`) instead of memory BIOs: no ciphertext is copied in or out of
/// OpenSSL, no per-connection ciphertext buffer is kept by the loop, and with
/// `SSL_MODE_RELEASE_BUFFERS` an idle connection holds no record buffers at all. The epoll
/// registration is the same as for plain connections; only the interest mask also follows
/// what OpenSSL waits for.
///
/// Lifecycle: `connectionAccepted` is reported at TCP accept, as for plain connections, and
/// the handshake then runs inside the loop (no thread, no blocking). `bytesReceived` only
/// ever carries plaintext, so nothing arrives before the handshake is done; writes made
/// before then are queued and flushed once it completes. A failed handshake, a client
/// speaking plain HTTP to the port, or a handshake unfinished after
/// `TLSContext.handshakeTimeoutMilliseconds` closes the connection with
/// `connectionClosed(.tlsFailed(reason))`, exactly once, like any other close.
///
/// Reading: per readiness report, `SSL_read` until OpenSSL wants more input or 64 KiB of
/// plaintext is collected, delivered in one `bytesReceived`. Input left inside OpenSSL
/// (which epoll cannot see) is read in the next turn, as is any input held while reading
/// was paused.
///
/// Writing: the output queue holds plaintext (`SharedBytes` stay shared; encryption happens
/// per connection at flush time). A flush hands OpenSSL one record at a time: a segment of
/// at least 16 KiB directly, smaller segments gathered into one 16 KiB staging buffer so
/// many small messages become one record and one `send`. `bufferedAmount` counts plaintext
/// not yet accepted by `SSL_write`. `SSL_ERROR_WANT_READ`/`WANT_WRITE` are honoured in both
/// directions (a write waiting for input arms EPOLLIN, a read waiting for output arms
/// EPOLLOUT). `close(flushFirst: true)` flushes, sends `close_notify`, then FIN, and waits
/// for the peer as for plain connections; `flushFirst: false` drops the connection without
/// `close_notify`. A peer closing without `close_notify` is reported as `.peerClosed`.
extension EventLoop {
    func startHandshake(_ c: ConnectionSlot, _ ssl: OpaquePointer, _ tls: TLSContext) {
        c.ssl = ssl
        c.tlsHandshaking = true
        // The cached clock is truncated to the millisecond: one more keeps the timeout from
        // firing up to 1 ms before it has fully elapsed.
        handshakeTimers.schedule(c.id, at: cachedNow.milliseconds + tls.handshakeTimeoutMilliseconds + 1)
    }

    func tlsEvent(_ c: ConnectionSlot, _ ssl: OpaquePointer, _ flags: UInt32, _ raw: UInt64) {
        if flags & LinuxABI.epollErr != 0 {
            let code = socketError(c.fd)
            if code != 0 {
                fail(c, code)
                return
            }
        }
        if c.tlsHandshaking {
            advanceHandshake(c)
            return
        }
        let readingAllowed = !c.paused || c.closing
        var read = false
        if flags & LinuxABI.epollOut != 0 {
            if c.blocked {
                c.blocked = false
                markDirty(c)
            }
            if c.tlsNeedsWritable {
                c.tlsNeedsWritable = false
                updateInterest(c)
                read = readingAllowed  // else resuming queues a read
            }
        }
        if flags & (LinuxABI.epollIn | LinuxABI.epollHup | LinuxABI.epollErr) != 0 {
            if c.tlsWriteNeedsReadable {
                c.tlsWriteNeedsReadable = false
                updateInterest(c)
                markDirty(c)
            }
            if readingAllowed {
                read = true
            } else if flags & (LinuxABI.epollHup | LinuxABI.epollErr) != 0 {
                fail(c, ECONNRESET)
                return
            }
        }
        if read { readTLS(c, ssl, raw) }
    }

    /// One `SSL_do_handshake` step; on completion, flushes queued output and reads any
    /// application data that came with the client's Finished.
    func advanceHandshake(_ c: ConnectionSlot) {
        guard let ssl = c.ssl else { return }
        let raw = c.id
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            c.tlsHandshaking = false
            c.tlsNeedsWritable = false
            handshakeTimers.cancel(raw)
            if !c.queue.isEmpty || c.closing { markDirty(c) }
            updateInterest(c)
            if !c.paused || c.closing { readTLS(c, ssl, raw) }
            return
        }
        let code = errno
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ:
            if c.tlsNeedsWritable {
                c.tlsNeedsWritable = false
                updateInterest(c)
            }
        case SSL_ERROR_WANT_WRITE:
            if !c.tlsNeedsWritable {
                c.tlsNeedsWritable = true
                updateInterest(c)
            }
        case SSL_ERROR_ZERO_RETURN:
            destroy(c, c.closing ? .closedLocally : .peerClosed)
        case SSL_ERROR_SYSCALL:
            takeOpenSSLReason()
            if code == 0 {
                destroy(c, c.closing ? .closedLocally : .peerClosed)
            } else {
                fail(c, code)
            }
        default:
            let reason = takeOpenSSLReason()
            destroy(c, c.closing ? .closedLocally : .tlsFailed(reason), drainInput: true)
        }
    }

    /// `SSL_read` until OpenSSL needs more input or the read buffer is full, then one
    /// `bytesReceived` (discarded while closing), then the close the read ran into, if any.
    /// Stops early when OpenSSL holds nothing and the socket was just read empty: more input
    /// will be reported by epoll.
    func readTLS(_ c: ConnectionSlot, _ ssl: OpaquePointer, _ raw: UInt64) {
        ERR_clear_error()
        var total = 0
        var ending: CloseReason?
        c.tlsInputDrained = false
        reading: while total < Self.readBufferSize {
            var n = 0
            if SSL_read_ex(ssl, readBuffer + total, Self.readBufferSize - total, &n) == 1 {
                total += n
                if c.tlsInputDrained, SSL_has_pending(ssl) == 0 { break }
                continue
            }
            let code = errno
            switch SSL_get_error(ssl, 0) {
            case SSL_ERROR_WANT_READ:
                break
            case SSL_ERROR_WANT_WRITE:
                c.tlsNeedsWritable = true
            case SSL_ERROR_ZERO_RETURN:
                ending = .peerClosed
            case SSL_ERROR_SYSCALL:
                takeOpenSSLReason()
                ending = code == 0 ? .peerClosed : code == ECONNRESET ? .reset : .error(code)
            default:
                ending = .tlsFailed(takeOpenSSLReason())
            }
            break reading
        }
        if total > 0, !c.closing {
            turnHandler?.bytesReceived(SocketID(rawValue: raw),
                                       UnsafeRawBufferPointer(start: readBuffer, count: total))
            guard c.id == raw else { return }
        }
        if let ending {
            if c.closing {
                destroy(c, .closedLocally)
                return
            }
            if ending == .peerClosed, !c.queue.isEmpty, !c.blocked, !c.tlsWriteNeedsReadable {
                _ = writeTLS(c, ssl)  // best effort, as for plain connections
            }
            if case .tlsFailed = ending {
                destroy(c, ending, drainInput: true)
            } else {
                destroy(c, ending)
            }
            return
        }
        if total == Self.readBufferSize, SSL_has_pending(ssl) == 1 { queueTLSRead(c) }
        if c.tlsNeedsWritable { updateInterest(c) }
    }

    func queueTLSRead(_ c: ConnectionSlot) {
        guard !c.tlsReadQueued else { return }
        c.tlsReadQueued = true
        tlsReadAgain.append(c.id)
    }

    func readQueuedTLS() {
        swap(&tlsReadAgain, &tlsReadBatch)
        for raw in tlsReadBatch {
            guard let c = lookup(raw), let ssl = c.ssl else { continue }
            c.tlsReadQueued = false
            if !c.tlsHandshaking, !c.paused || c.closing {
                readTLS(c, ssl, raw)
                deliverNotes()
            }
        }
        tlsReadBatch.removeAll(keepingCapacity: true)
    }

    func expireHandshakes() {
        handshakeTimers.collectDue(now: cachedNow.milliseconds, into: &dueHandshakes)
        for entry in dueHandshakes where handshakeTimers.claim(entry) {
            if let c = lookup(entry.token), c.tlsHandshaking {
                destroy(c, .tlsFailed("handshake timed out"), drainInput: true)
                deliverNotes()
            }
        }
        dueHandshakes.removeAll(keepingCapacity: true)
    }

    /// The TLS counterpart of `flush`: encrypt and send the queue, report `drained`, and once
    /// a closing connection's queue is empty send `close_notify` and FIN.
    func flushTLS(_ c: ConnectionSlot, _ ssl: OpaquePointer) {
        if c.tlsHandshaking {
            if c.closing {
                destroy(c, .closedLocally, drainInput: true)  // nothing can be sent before the handshake
            } else if !c.queue.isEmpty {
                c.backlogged = true
            }
            return
        }
        if !c.queue.isEmpty, !c.blocked, !c.tlsWriteNeedsReadable {
            switch writeTLS(c, ssl) {
            case .failed(let reason):
                destroy(c, c.closing ? .closedLocally : reason)
                return
            case .waitingForWritable:
                c.blocked = true
            case .waitingForReadable:
                c.tlsWriteNeedsReadable = true
            case .complete:
                break
            }
        }
        if settleBacklog(c), c.closing, !c.shutdownSent, !c.blocked, !c.tlsWriteNeedsReadable {
            sendCloseNotify(c, ssl)
            guard c.ssl != nil else { return }
        }
        updateInterest(c)
    }

    enum TLSWriteOutcome {
        case complete, waitingForWritable, waitingForReadable
        case failed(CloseReason)
    }

    /// `SSL_write_ex` one record (at most 16 KiB) at a time until the queue is empty or
    /// OpenSSL waits. A retried record always starts with the same bytes and is never
    /// shorter, as `SSL_write` requires: the queue only grows at its tail between attempts.
    /// One call never sends more than the bytes it is given, so `MSG_MORE` is exact.
    func writeTLS(_ c: ConnectionSlot, _ ssl: OpaquePointer) -> TLSWriteOutcome {
        ERR_clear_error()
        defer { c.tlsMoreToSend = false }
        while !c.queue.isEmpty {
            var chunk = c.queue.firstSegment()
            if chunk.count >= TLSOptions.recordSize {
                chunk = UnsafeRawBufferPointer(rebasing: chunk[0..<TLSOptions.recordSize])
            } else if chunk.count < c.queue.bytes, let staging = tlsStaging {
                let gathered = c.queue.gather(into: staging, capacity: TLSOptions.recordSize)
                chunk = UnsafeRawBufferPointer(start: staging, count: gathered)
            }
            c.tlsMoreToSend = c.queue.bytes > chunk.count
            var written = 0
            if SSL_write_ex(ssl, chunk.baseAddress, chunk.count, &written) == 1 {
                c.queue.consume(written)
                continue
            }
            let code = errno
            switch SSL_get_error(ssl, 0) {
            case SSL_ERROR_WANT_WRITE:
                return .waitingForWritable
            case SSL_ERROR_WANT_READ:
                return .waitingForReadable
            case SSL_ERROR_SYSCALL:
                takeOpenSSLReason()
                return .failed(code == ECONNRESET ? .reset : .error(code == 0 ? EPIPE : code))
            default:
                return .failed(.tlsFailed(takeOpenSSLReason()))
            }
        }
        return .complete
    }

    /// `SSL_shutdown` (sends `close_notify`), then `SHUT_WR`; the connection then waits for
    /// the peer's close or the linger deadline like a plain one.
    private func sendCloseNotify(_ c: ConnectionSlot, _ ssl: OpaquePointer) {
        ERR_clear_error()
        let result = SSL_shutdown(ssl)
        if result >= 0 {
            c.shutdownSent = true
            _ = shutdown(c.fd, Int32(SHUT_WR))
            if result == 1 { destroy(c, .closedLocally) }  // the peer's close_notify already came
            return
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_WRITE:
            c.blocked = true
        case SSL_ERROR_WANT_READ:
            c.tlsWriteNeedsReadable = true
        default:
            takeOpenSSLReason()
            destroy(c, .closedLocally)
        }
    }
}
