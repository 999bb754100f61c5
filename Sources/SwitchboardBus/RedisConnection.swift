import CHiredis
import Glibc

/// Why a Redis connection or command failed.
struct RedisIOError: Error, CustomStringConvertible {
    enum Kind { case woken, timeout, closedByPeer, io, protocolError, rejected }
    var kind: Kind
    var description: String

    static let woken = RedisIOError(kind: .woken, description: "closed")
}

/// One TCP connection to one Redis node, owned by one thread. Sockets are nonblocking and every
/// wait is a `poll` that also watches `wakeFD` (closing the bus makes it readable), so nothing
/// blocks past its deadline or past `close()`. Writes use `send(MSG_NOSIGNAL)`: no SIGPIPE.
/// Replies are parsed by hiredis's reader (`redisReply` objects).
final class RedisConnection {
    let node: RedisURL.Node
    private(set) var fd: Int32
    private let wakeFD: Int32
    private let reader: UnsafeMutablePointer<redisReader>
    private let buffer: UnsafeMutableRawBufferPointer
    /// Offered each read's bytes while hiredis holds nothing unfinished (so they start at a
    /// reply boundary); returns how many leading bytes it dealt with itself, which hiredis never
    /// sees. The subscriber drops its own echoes here (`RedisBusCore.skipOwnEchoes`).
    var consumeFront: ((UnsafeRawBufferPointer) -> Int)?

    private init(node: RedisURL.Node, fd: Int32, wakeFD: Int32) {
        self.node = node
        self.fd = fd
        self.wakeFD = wakeFD
        reader = redisReaderCreate()
        buffer = .allocate(byteCount: 64 * 1024, alignment: 16)
    }

    deinit {
        close()
        redisReaderFree(reader)
        buffer.deallocate()
    }

    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Resolves and connects (each address in turn) before `deadline`.
    static func open(_ node: RedisURL.Node, deadline: UInt64, wakeFD: Int32) throws(RedisIOError) -> RedisConnection {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(node.host, String(node.port), &hints, &list)
        guard rc == 0, let list else {
            throw RedisIOError(kind: .io, description: "cannot resolve \(node.host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var failure = RedisIOError(kind: .io, description: "no address")
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let address = entry {
            entry = address.pointee.ai_next
            do throws(RedisIOError) {
                let fd = try connect(address.pointee, deadline: deadline, wakeFD: wakeFD)
                return RedisConnection(node: node, fd: fd, wakeFD: wakeFD)
            } catch {
                if error.kind == .woken { throw error }
                failure = error
            }
        }
        throw failure
    }

    private static func connect(_ address: addrinfo, deadline: UInt64, wakeFD: Int32) throws(RedisIOError) -> Int32 {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(address.ai_family, type, 0)
        if fd < 0 { throw RedisIOError(kind: .io, description: redisErrnoText()) }
        var ok = false
        defer { if !ok { Glibc.close(fd) } }
        if Glibc.connect(fd, address.ai_addr, address.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else { throw RedisIOError(kind: .io, description: redisErrnoText()) }
            try wait(fd: fd, events: Int16(POLLOUT), deadline: deadline, wakeFD: wakeFD, what: "connect")
            var code: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
            if code != 0 { throw RedisIOError(kind: .io, description: redisErrnoText(code)) }
        }
        var one: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, size)
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, size)
        var idle: Int32 = 15, interval: Int32 = 5, probes: Int32 = 3
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, &idle, size)
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, &interval, size)
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, &probes, size)
        ok = true
        return fd
    }

    /// Polls `fd` for `events` until `deadline`; throws `.timeout` or `.woken`.
    private static func wait(fd: Int32, events: Int16, deadline: UInt64, wakeFD: Int32, what: String) throws(RedisIOError) {
        var fds = (pollfd(fd: fd, events: events, revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0))
        while true {
            let now = redisNow()
            let timeout: Int32
            if deadline == .max {
                timeout = -1
            } else if deadline <= now {
                timeout = 0
            } else {
                timeout = Int32(clamping: (deadline - now + 999_999) / 1_000_000)
            }
            let n = withUnsafeMutableBytes(of: &fds) { poll($0.baseAddress!.assumingMemoryBound(to: pollfd.self), 2, timeout) }
            if n < 0 {
                if errno == EINTR { continue }
                throw RedisIOError(kind: .io, description: redisErrnoText())
            }
            if fds.1.revents != 0 { throw .woken }
            if fds.0.revents != 0 { return }
            if timeout == 0 || redisNow() >= deadline {
                throw RedisIOError(kind: .timeout, description: "\(what) timed out")
            }
        }
    }

    /// Sends all of `bytes` before `deadline`.
    func write(_ bytes: [UInt8], deadline: UInt64) throws(RedisIOError) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                sent += n
            } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                try Self.wait(fd: fd, events: Int16(POLLOUT), deadline: deadline, wakeFD: wakeFD, what: "write")
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                throw RedisIOError(kind: .io, description: n == 0 ? "write failed" : redisErrnoText())
            }
        }
    }

    /// Waits for data before `deadline` and feeds it to the parser; false on timeout.
    func fill(deadline: UInt64) throws(RedisIOError) -> Bool {
        do throws(RedisIOError) {
            try Self.wait(fd: fd, events: Int16(POLLIN), deadline: deadline, wakeFD: wakeFD, what: "read")
        } catch {
            if error.kind == .timeout { return false }
            throw error
        }
        let n = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
        if n > 0 {
            var consumed = 0
            if let consumeFront, parserIsIdle {
                consumed = consumeFront(UnsafeRawBufferPointer(start: buffer.baseAddress, count: n))
            }
            if consumed < n,
               redisReaderFeed(reader, buffer.baseAddress!.assumingMemoryBound(to: CChar.self) + consumed, n - consumed) != REDIS_OK {
                throw RedisIOError(kind: .protocolError, description: readerError)
            }
        } else if n == 0 {
            throw RedisIOError(kind: .closedByPeer, description: "connection closed by the server")
        } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
            throw RedisIOError(kind: .io, description: redisErrnoText())
        }
        return true
    }

    /// hiredis has no unread bytes and no reply under way: what arrives next starts a reply.
    /// (`ridx` is -1 between replies; 0 with the top task's type still unread (-1) when a reply
    /// was begun on no data. Once the type byte is read, the reply is under way.)
    private var parserIsIdle: Bool {
        reader.pointee.pos == reader.pointee.len
            && (reader.pointee.ridx == -1 || (reader.pointee.ridx == 0 && reader.pointee.rstack.0.type < 0))
    }

    /// True when the peer hung up or sent something while no command is outstanding (a
    /// connection that only sends commands has nothing to read otherwise). Does not block.
    func isStale() -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) != 0
    }

    /// The next reply already received, or nil. The caller frees it (`freeReplyObject`).
    func bufferedReply() throws(RedisIOError) -> UnsafeMutablePointer<redisReply>? {
        var reply: UnsafeMutableRawPointer?
        if redisReaderGetReply(reader, &reply) != REDIS_OK {
            throw RedisIOError(kind: .protocolError, description: readerError)
        }
        return reply?.assumingMemoryBound(to: redisReply.self)
    }

    /// The next reply, waiting until `deadline`. The caller frees it.
    func reply(deadline: UInt64) throws(RedisIOError) -> UnsafeMutablePointer<redisReply> {
        while true {
            if let reply = try bufferedReply() { return reply }
            if try !fill(deadline: deadline) {
                throw RedisIOError(kind: .timeout, description: "no reply from Redis in time")
            }
        }
    }

    private var readerError: String {
        "protocol error: " + withUnsafeBytes(of: reader.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// `open` and `handshake`, both before `deadline`: a connection ready for commands.
    static func connect(_ node: RedisURL.Node, of url: RedisURL, deadline: UInt64, wakeFD: Int32) throws(RedisIOError) -> RedisConnection {
        let connection = try open(node, deadline: deadline, wakeFD: wakeFD)
        try connection.handshake(url, deadline: deadline)
        return connection
    }

    /// Sends `AUTH` and `SELECT` as the URL asks and checks their replies.
    func handshake(_ url: RedisURL, deadline: UInt64) throws(RedisIOError) {
        var writer = RESPWriter()
        var names: [String] = []
        if let password = url.password, !password.isEmpty {
            if let username = url.username {
                writer.command(["AUTH", username, password])
            } else {
                writer.command(["AUTH", password])
            }
            names.append("AUTH")
        }
        if url.database != 0 {
            writer.command(["SELECT", String(url.database)])
            names.append("SELECT")
        }
        if names.isEmpty { return }
        try write(writer.bytes, deadline: deadline)
        var failure: RedisIOError?
        for name in names {
            let reply = try reply(deadline: deadline)
            defer { freeReplyObject(reply) }
            if reply.pointee.type == REDIS_REPLY_ERROR, failure == nil {
                failure = RedisIOError(kind: .rejected, description: "\(name) failed: \(RedisConnection.text(reply))")
            }
        }
        if let failure { throw failure }
    }

    /// A reply's string payload (status, error, string), or a short rendering.
    static func text(_ reply: UnsafeMutablePointer<redisReply>) -> String {
        switch reply.pointee.type {
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS, REDIS_REPLY_ERROR:
            guard let str = reply.pointee.str else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: str, count: reply.pointee.len), as: UTF8.self)
        case REDIS_REPLY_INTEGER: return String(reply.pointee.integer)
        case REDIS_REPLY_NIL: return "(nil)"
        default: return "(array of \(reply.pointee.elements))"
        }
    }

    /// True when `reply` is a string equal to `literal`.
    static func reply(_ reply: UnsafeMutablePointer<redisReply>, is literal: StaticString) -> Bool {
        let type = reply.pointee.type
        guard type == REDIS_REPLY_STRING || type == REDIS_REPLY_STATUS,
              reply.pointee.len == literal.utf8CodeUnitCount, let str = reply.pointee.str else { return false }
        return memcmp(str, literal.utf8Start, literal.utf8CodeUnitCount) == 0
    }
}
