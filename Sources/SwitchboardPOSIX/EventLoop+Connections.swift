import COpenSSL
import Glibc
import SwitchboardDriverSupport

/// Readiness events of one connection: reading, failing and closing it, and its epoll interest.
extension EventLoop {
    @inline(__always)
    func lookup(_ raw: UInt64) -> ConnectionSlot? {
        let slot = Int(truncatingIfNeeded: raw & Self.slotMask)
        guard slot < slots.count else { return nil }
        let c = slots[slot]
        return c.id == raw && raw != 0 ? c : nil
    }

    func connectionEvent(_ flags: UInt32, _ raw: UInt64) {
        guard let c = lookup(raw) else { return }
        if let ssl = c.ssl {
            tlsEvent(c, ssl, flags, raw)
            return
        }
        if flags & LinuxABI.epollErr != 0 {
            let code = socketError(c.fd)
            if code != 0 {
                fail(c, code)
                return
            }
        }
        if !c.paused || c.closing {
            if flags & (LinuxABI.epollIn | LinuxABI.epollHup | LinuxABI.epollErr) != 0 {
                readOnce(c, raw)
                guard c.id == raw else { return }
            }
        } else if flags & (LinuxABI.epollHup | LinuxABI.epollErr) != 0 {
            fail(c, ECONNRESET)
            return
        }
        if flags & LinuxABI.epollOut != 0, c.blocked {
            c.blocked = false
            markDirty(c)
        }
    }

    /// One `recv` per readiness report: level-triggered epoll reports the socket again next
    /// turn if more is pending, so one busy peer cannot starve the others.
    func readOnce(_ c: ConnectionSlot, _ raw: UInt64) {
        let n = sys.recv(c.fd, readBuffer, Self.readBufferSize, 0)
        if n > 0 {
            if c.closing { return }
            turnHandler?.bytesReceived(SocketID(rawValue: raw),
                                       UnsafeRawBufferPointer(start: readBuffer, count: n))
        } else if n == 0 {
            if c.closing {
                destroy(c, .closedLocally)
            } else {
                if !c.queue.isEmpty, !c.blocked { _ = writeOut(c) }
                destroy(c, .peerClosed)
            }
        } else {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return }
            fail(c, code)
        }
    }

    func socketError(_ fd: Int32) -> Int32 {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) == 0 else { return errno }
        return code
    }

    func fail(_ c: ConnectionSlot, _ code: Int32) {
        let reason: CloseReason = c.closing ? .closedLocally : (code == ECONNRESET ? .reset : .error(code))
        destroy(c, reason)
    }

    /// Closes the descriptor, frees the slot and queues the single close notification.
    func destroy(_ c: ConnectionSlot, _ reason: CloseReason, drainInput: Bool = false) {
        let raw = c.id
        // No EPOLL_CTL_DEL: closing the last descriptor of the socket takes it out of the epoll
        // set, and the loop holds the only one (accepted CLOEXEC, never duplicated), so the
        // call was one system call per connection for nothing. Were a child forked in between
        // to hold it until its exec, its late events carry this slot's old id and are ignored.
        if drainInput {
            // Unread input makes close() send RST; discard a bounded amount first.
            var reads = 0
            while reads < 16, recv(c.fd, readBuffer, Self.readBufferSize, 0) > 0 { reads += 1 }
        }
        if let ssl = c.ssl {
            SSL_free(ssl)
            c.ssl = nil
            if c.tlsHandshaking { handshakeTimers.cancel(raw) }
            c.tlsHandshaking = false
            c.tlsNeedsWritable = false
            c.tlsWriteNeedsReadable = false
            c.tlsReadQueued = false
            c.tlsMoreToSend = false
            c.tlsInputDrained = false
        }
        Glibc.close(c.fd)
        c.queue.discardAll()
        c.id = 0
        c.fd = -1
        c.paused = false
        c.closing = false
        c.shutdownSent = false
        c.blocked = false
        c.inDirtyList = false
        c.interest = 0
        freeSlots.append(Int(truncatingIfNeeded: raw & Self.slotMask))
        connectionCount -= 1
        notes.append(.closed(raw, reason))
    }

    @inline(__always)
    func markDirty(_ c: ConnectionSlot) {
        if !c.inDirtyList {
            c.inDirtyList = true
            dirty.append(c.id)
        }
    }

    func updateInterest(_ c: ConnectionSlot) {
        var wanted: UInt32 = 0
        if !c.paused || c.closing { wanted |= LinuxABI.epollIn }
        if c.blocked { wanted |= LinuxABI.epollOut }
        if c.ssl != nil {
            if c.tlsHandshaking || c.tlsWriteNeedsReadable { wanted |= LinuxABI.epollIn }
            if c.tlsNeedsWritable { wanted |= LinuxABI.epollOut }
        }
        if wanted != c.interest, control(LinuxABI.epollCtlMod, c.fd, wanted, c.id) == 0 {
            c.interest = wanted
        }
    }

    @discardableResult
    func control(_ op: Int32, _ fd: Int32, _ events: UInt32, _ data: UInt64) -> Int32 {
        var event: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &event) { raw in
            raw.storeBytes(of: events, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: data, toByteOffset: LinuxABI.epollDataOffset, as: UInt64.self)
            return sys.epollCtl(epollFD, op, fd, raw.baseAddress)
        }
    }
}
