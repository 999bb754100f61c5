import CURing
import Glibc
import Switchboard

/// Reading, writing and closing connections: what the engine's calls and the receive and
/// send completions do to a `URingConnection`.
extension URingLoop {
    // MARK: - Reading

    /// Looks at the connection's receive at the end of the turn (see `updateReading`).
    @inline(__always)
    func wantReading(_ c: URingConnection) {
        if !c.inReadList {
            c.inReadList = true
            readList.append(c.id)
        }
    }

    /// Arms the multishot receive if reading is wanted and none is in the kernel; cancels
    /// it if reading is not wanted (paused). Closing overrides pausing: the peer's FIN must
    /// be seen. A cancelled receive is looked at again when its last completion comes.
    func updateReading(_ c: URingConnection) {
        let wanted = (!c.paused || c.closing) && !c.endOfInput
        if wanted, !c.receiving {
            sb_prep_recv_multishot(entry(), c.fd, BufferRing.group, Self.userData(Kind.receive, c.index))
            c.receiving = true
            c.receiveCancelled = false
            c.requests += 1
            requestsInKernel += 1
        } else if !wanted, c.receiving, !c.receiveCancelled {
            cancelReceive(c)
        }
    }

    private func cancelReceive(_ c: URingConnection) {
        sb_prep_cancel(entry(), Self.userData(Kind.receive, c.index), Self.userData(Kind.receiveCancel, c.index))
        c.receiveCancelled = true
    }

    /// `EALREADY`: the receive was running and goes on; cancel it again at the end of the
    /// turn, or a paused connection would keep reading. (`ENOENT`: it had ended already; its
    /// last completion does the rest.)
    func cancelReceiveFailed(_ c: URingConnection, _ result: Int32) {
        guard result == -EALREADY, c.id != 0, c.receiving, c.receiveCancelled else { return }
        c.receiveCancelled = false
        wantReading(c)
    }

    /// A completion of a connection's multishot receive: bytes (in a provided buffer, given
    /// back at once), the peer's FIN (0), or an error; without `IORING_CQE_F_MORE` the
    /// receive has ended (cancelled, out of buffers, FIN, error) and is armed again if wanted.
    func received(_ c: URingConnection, _ completion: Ring.Completion) {
        let result = completion.result
        let last = completion.flags & UInt32(IORING_CQE_F_MORE) == 0
        if last {
            // Ended: whatever the callbacks below do to reading arms a new one.
            c.receiving = false
            c.receiveCancelled = false
        }
        if completion.flags & UInt32(IORING_CQE_F_BUFFER) != 0 {
            let bufferID = UInt16(truncatingIfNeeded: completion.flags >> 16)
            if result > 0, c.id != 0 { input(c, buffers.buffer(bufferID), Int(result)) }
            buffers.recycle(bufferID)
        } else if c.id != 0 {
            if result == 0 {
                readEndOfInput(c)
            } else if result < 0 {
                let code = -result
                if code != ENOBUFS, code != ECANCELED, code != EINTR, code != EAGAIN { destroy(c) }
            }
        }
        if result == -ENOBUFS { buffers.ranDry() }
        guard last else { return }
        c.requests -= 1
        requestsInKernel -= 1
        if c.id != 0 {
            wantReading(c)
        } else {
            releaseIfIdle(c)
        }
    }

    /// Bytes read: reported now, or held while paused (and behind bytes held before).
    private func input(_ c: URingConnection, _ bytes: UnsafeMutableRawPointer, _ count: Int) {
        if c.closing { return }  // read only to see the peer's FIN
        if c.paused || c.deliveryQueued || !c.held.isEmpty {
            c.held.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: count))
            return
        }
        events?.bytesReceived(c.id, UnsafeRawBufferPointer(start: bytes, count: count))
    }

    /// The peer's FIN: the end of a linger once everything is sent; behind held bytes while
    /// paused; otherwise the connection ends (after one last try to send what is queued).
    private func readEndOfInput(_ c: URingConnection) {
        c.endOfInput = true
        if c.closing {
            if !c.sending, c.buffered == 0 { destroy(c) }  // else when the send completes
            return
        }
        if c.paused || c.deliveryQueued || !c.held.isEmpty { return }
        peerClosed(c)
    }

    private func peerClosed(_ c: URingConnection) {
        if !c.sending, c.buffered > 0 { sendNow(c) }
        destroy(c)
    }

    /// One non-blocking `sendmsg` of everything queued, for a connection about to end.
    private func sendNow(_ c: URingConnection) {
        if iovecsUsed + 1024 > iovecCapacity { submitNow() }
        let iov = iovecs + iovecsUsed  // below: iovecs of prepared, unsubmitted sends
        var count = c.outgoing.fill(iov, capacity: 512).count
        count += c.queued.fill(iov + count, capacity: 512).count
        var message = msghdr()
        message.msg_iov = iov
        message.msg_iovlen = count
        _ = sendmsg(c.fd, &message, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
    }

    func pauseReading(_ id: UInt64) {
        guard let c = lookup(id), !c.paused else { return }
        c.paused = true
        wantReading(c)
    }

    /// Reading again: held bytes (and a FIN behind them) are reported by a work queued on
    /// the loop, never inside this call.
    func resumeReading(_ id: UInt64) {
        guard let c = lookup(id), c.paused else { return }
        c.paused = false
        wantReading(c)
        if (!c.held.isEmpty || c.endOfInput), !c.deliveryQueued {
            c.deliveryQueued = true
            mailbox.local.append { [unowned(unsafe) self] in self.deliverHeld(id) }
        }
    }

    private func deliverHeld(_ id: UInt64) {
        guard let c = lookup(id) else { return }
        c.deliveryQueued = false
        guard !c.paused, !c.closing else { return }
        if !c.held.isEmpty {
            let bytes = c.held
            c.held = []
            bytes.withUnsafeBytes { events?.bytesReceived(id, $0) }
        }
        guard let still = lookup(id), still.endOfInput, !still.paused, !still.closing, still.held.isEmpty else { return }
        peerClosed(still)
    }

    // MARK: - Writing

    @inline(__always)
    private func markDirty(_ c: URingConnection) {
        if !c.inFlushList {
            c.inFlushList = true
            flushList.append(c.id)
        }
    }

    /// The bounded check of every write: unknown and closing connections take nothing and
    /// answer true; more than `limit` queued refuses, and owes a drain.
    @inline(__always)
    private func writable(_ id: UInt64, _ limit: Int) -> (URingConnection?, Bool) {
        guard let c = lookup(id), !c.closing else { return (nil, true) }
        guard c.buffered <= limit else {
            c.drainOwed = true
            return (nil, false)
        }
        markDirty(c)
        return (c, true)
    }

    func write(_ id: UInt64, _ bytes: SharedBytes, ifBufferedAtMost limit: Int) -> Bool {
        let (c, accepted) = writable(id, limit)
        c?.queued.append(bytes)
        return accepted
    }

    func write(_ id: UInt64, copying bytes: UnsafeRawBufferPointer, ifBufferedAtMost limit: Int) -> Bool {
        let (c, accepted) = writable(id, limit)
        c?.queued.append(copying: bytes)
        return accepted
    }

    func write(_ id: UInt64, copying first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
               ifBufferedAtMost limit: Int) -> Bool {
        let (c, accepted) = writable(id, limit)
        c?.queued.append(copying: first)
        c?.queued.append(copying: second)
        return accepted
    }

    func bufferedAmount(_ id: UInt64) -> Int { lookup(id)?.buffered ?? 0 }

    /// End of turn: starts the connection's send unless one is in the kernel (its completion
    /// marks the connection again); a closing connection with nothing left sends its FIN.
    func flush(_ c: URingConnection) {
        if !c.sending {
            if c.outgoing.isEmpty, !c.queued.isEmpty { swap(&c.outgoing, &c.queued) }
            if !c.outgoing.isEmpty { submitSend(c) }
        }
        if c.closing, !c.sending, c.buffered == 0 {
            if c.endOfInput {
                destroy(c)
            } else if !c.shutdownSent {
                c.shutdownSent = true
                _ = shutdown(c.fd, Int32(SHUT_WR))
            }
        }
    }

    /// One send of `outgoing`: `IORING_OP_SEND` for one segment (the usual corked buffer),
    /// `IORING_OP_SENDMSG` with up to 1024 iovecs for several.
    private func submitSend(_ c: URingConnection) {
        // Room first: a submission between filling the scratch space and taking the entry
        // would reuse the one and send a half-made other.
        if iovecsUsed + 1024 > iovecCapacity || headersUsed == headerCapacity || ring.unsubmitted >= ring.sqEntries {
            submitNow()
        }
        let iov = iovecs + iovecsUsed
        let (count, total) = c.outgoing.fill(iov, capacity: 1024)
        let userData = Self.userData(Kind.send, c.index)
        if count == 1 {
            sb_prep_send(ring.nextEntry()!, c.fd, iov[0].iov_base, UInt32(clamping: total), userData)
        } else {
            let header = headers + headersUsed
            header.initialize(to: msghdr())
            header.pointee.msg_iov = iov
            header.pointee.msg_iovlen = count
            iovecsUsed += count
            headersUsed += 1
            sb_prep_sendmsg(ring.nextEntry()!, c.fd, header, userData)
        }
        c.sending = true
        c.requests += 1
        requestsInKernel += 1
    }

    /// A send completed: what the kernel took leaves the queue; the rest, and what was
    /// written meanwhile, goes at the end of this turn. An emptied queue pays an owed drain.
    func sent(_ c: URingConnection, _ completion: Ring.Completion) {
        c.sending = false
        c.requests -= 1
        requestsInKernel -= 1
        guard c.id != 0 else {
            releaseIfIdle(c)
            return
        }
        let result = completion.result
        if result >= 0 {
            c.outgoing.consume(Int(result))
            // The emptied queue takes the writes again: its copy buffer and segment list are
            // reused, and an idle connection keeps one set of them, not one in each queue.
            if c.outgoing.isEmpty { swap(&c.outgoing, &c.queued) }
            if c.buffered > 0 || c.closing {
                markDirty(c)
            } else if c.drainOwed {
                c.drainOwed = false
                notes.append(.drained(c.id))
            }
        } else {
            let code = -result
            if code == EAGAIN || code == EINTR {
                markDirty(c)
            } else {
                destroy(c)
            }
        }
    }

    // MARK: - Closing

    /// `flushFirst: false`: ends now. `flushFirst: true`: sends what is queued, then FIN, then
    /// waits for the peer's FIN, at most the linger. Either way `connectionClosed` follows.
    func close(_ id: UInt64, flushFirst: Bool) {
        guard let c = lookup(id) else { return }
        guard flushFirst else {
            destroy(c, discardInput: true)
            return
        }
        guard !c.closing else { return }
        c.closing = true
        c.held = []
        addLinger(id)
        markDirty(c)
        if c.endOfInput, !c.sending, c.buffered == 0 {
            destroy(c)
            return
        }
        wantReading(c)
    }

    /// Closes the descriptor and queues the one `connectionClosed`. Requests still in the
    /// kernel are cancelled; the slot (and the bytes a send points into) is reused only after
    /// their last completions.
    func destroy(_ c: URingConnection, discardInput: Bool = false) {
        let id = c.id
        if c.receiving, !c.receiveCancelled { cancelReceive(c) }
        if c.sending {
            sb_prep_cancel(entry(), Self.userData(Kind.send, c.index), Self.userData(Kind.ignore, 0))
        }
        if discardInput {
            // Unread input makes close() send RST instead of FIN: discard a bounded amount.
            var reads = 0
            while reads < 16, recv(c.fd, scratch, Self.scratchSize, Int32(MSG_DONTWAIT)) > 0 { reads += 1 }
        }
        Glibc.close(c.fd)
        c.reset()
        connectionCount -= 1
        notes.append(.closed(id))
        releaseIfIdle(c)
    }
}
