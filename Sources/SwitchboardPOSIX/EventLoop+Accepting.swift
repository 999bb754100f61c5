import Glibc
import SwitchboardDriverSupport
import Synchronization

/// Process-wide connection serial (high 40 bits of a `SocketID`).
private let connectionSerial = Atomic<UInt64>(1)

/// Listening sockets, accepting connections and the slots that hold them.
extension EventLoop {
    /// Binds and listens (non-blocking, `SO_REUSEADDR`). `host` is an IPv4 or IPv6 literal
    /// (`[::1]` brackets allowed), `localhost`, or empty/`*` for all IPv4 addresses.
    /// Port 0 picks a free port; the bound port is returned. With `tls`, every connection
    /// accepted here speaks TLS (see `EventLoop+TLS.swift`). With `reusePort`, the socket sets
    /// `SO_REUSEPORT`, so that several loops may listen on one port and the kernel spreads
    /// incoming connections over them (by a hash of the peer's address and port).
    public func listen(host: String, port: Int, backlog: Int32 = 4096,
                       tls: TLSContext? = nil, reusePort: Bool = false) throws(ListenError) -> (ListenerID, port: Int) {
        var literal = host
        if literal.hasPrefix("["), literal.hasSuffix("]") { literal = String(literal.dropFirst().dropLast()) }
        if literal.isEmpty || literal == "*" { literal = "0.0.0.0" }
        if literal == "localhost" { literal = "127.0.0.1" }
        let isV6 = literal.contains(":")
        let address = isV6 ? "[\(literal)]:\(port)" : "\(literal):\(port)"
        func failure(_ operation: String, _ code: Int32) -> ListenError {
            ListenError(address: address, operation: operation, code: code)
        }
        guard (0...65535).contains(port) else { throw failure("parse address", EINVAL) }

        var storage = sockaddr_storage()
        let length: socklen_t
        let parsed: Int32 = withUnsafeMutableBytes(of: &storage) { raw in
            let big = UInt16(port).bigEndian
            if isV6 {
                raw.storeBytes(of: sa_family_t(AF_INET6), toByteOffset: 0, as: sa_family_t.self)
                raw.storeBytes(of: big, toByteOffset: 2, as: UInt16.self)
                return inet_pton(AF_INET6, literal, raw.baseAddress! + 8)
            } else {
                raw.storeBytes(of: sa_family_t(AF_INET), toByteOffset: 0, as: sa_family_t.self)
                raw.storeBytes(of: big, toByteOffset: 2, as: UInt16.self)
                return inet_pton(AF_INET, literal, raw.baseAddress! + 4)
            }
        }
        guard parsed == 1 else { throw failure("parse address", EINVAL) }
        length = socklen_t(isV6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)

        let fd = socket(isV6 ? AF_INET6 : AF_INET,
                        Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failure("socket", errno) }
        func abandon(_ operation: String) -> ListenError {
            let code = errno
            Glibc.close(fd)
            return failure(operation, code)
        }
        var one: Int32 = 1
        guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw abandon("setsockopt(SO_REUSEADDR)")
        }
        if reusePort, setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw abandon("setsockopt(SO_REUSEPORT)")
        }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw abandon("bind") }
        guard Glibc.listen(fd, backlog) == 0 else { throw abandon("listen") }
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        guard named == 0 else { throw abandon("getsockname") }
        let boundPort = PeerAddress(actual).port
        let index = listeners.count
        guard control(LinuxABI.epollCtlAdd, fd, LinuxABI.epollIn, Self.tagListenerBase + UInt64(index)) == 0 else {
            throw abandon("epoll_ctl")
        }
        listeners.append(fd)
        listenerTLS.append(tls)
        if tls != nil, tlsStaging == nil {
            tlsStaging = .allocate(byteCount: TLSOptions.recordSize, alignment: 64)
        }
        return (ListenerID(rawValue: index), port: boundPort)
    }

    /// Closes every listening socket; open connections are unaffected.
    public func stopAccepting() {
        for i in listeners.indices where listeners[i] >= 0 {
            Glibc.close(listeners[i])
            listeners[i] = -1
        }
    }

    func acceptAll(_ index: Int) {
        guard index < listeners.count else { return }
        while listeners[index] >= 0 {
            let listenFD = listeners[index]
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sys.accept4(listenFD, $0, &length, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
                }
            }
            if fd < 0 {
                switch errno {
                case EINTR, ECONNABORTED, EPROTO, EPERM: continue
                case EMFILE, ENFILE: shedOne(listenFD)
                default: break
                }
                return
            }
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            guard let c = register(fd) else {
                Glibc.close(fd)
                continue
            }
            let raw = c.id
            let tls = listenerTLS[index]
            if let tls {
                guard let ssl = tls.makeConnection(for: c) else {
                    unregister(c)  // out of memory: dropped before anyone saw it
                    continue
                }
                startHandshake(c, ssl, tls)
            }
            turnHandler?.connectionAccepted(SocketID(rawValue: raw), peer: PeerAddress(storage),
                                            listener: ListenerID(rawValue: index))
            // The ClientHello has usually arrived by the time the accept is reported.
            if tls != nil, c.id == raw { advanceHandshake(c) }
        }
    }

    /// Out of descriptors: accept and drop one pending connection using the reserved
    /// descriptor, so the level-triggered listener does not spin.
    func shedOne(_ listenFD: Int32) {
        guard spareFD >= 0 else { return }
        Glibc.close(spareFD)
        let fd = sys.accept4(listenFD, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
        if fd >= 0 { Glibc.close(fd) }
        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    func register(_ fd: Int32) -> ConnectionSlot? {
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
        } else {
            guard UInt64(slots.count) < Self.slotMask else { return nil }
            slot = slots.count
            slots.append(ConnectionSlot())
        }
        var serial: UInt64 = 0
        while serial == 0 {  // 40 bits; 0 would collide with the non-connection tags
            serial = connectionSerial.wrappingAdd(1, ordering: .relaxed).oldValue & ((1 << 40) - 1)
        }
        let raw = (serial << Self.slotBits) | UInt64(slot)
        guard control(LinuxABI.epollCtlAdd, fd, LinuxABI.epollIn, raw) == 0 else {
            freeSlots.append(slot)
            return nil
        }
        let c = slots[slot]
        c.id = raw
        c.fd = fd
        c.interest = LinuxABI.epollIn
        connectionCount += 1
        return c
    }

    /// Undoes `register` for a connection that was never reported.
    func unregister(_ c: ConnectionSlot) {
        _ = control(LinuxABI.epollCtlDel, c.fd, 0, 0)
        Glibc.close(c.fd)
        freeSlots.append(Int(truncatingIfNeeded: c.id & Self.slotMask))
        c.id = 0
        c.fd = -1
        c.interest = 0
        connectionCount -= 1
    }
}
