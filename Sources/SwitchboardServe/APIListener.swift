import Switchboard
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The server API's own HTTP/1.1 listener (`api.host`, `api.port`). The WebSocket port's
/// `httpHandler` sees no request bodies, and the API needs them, so the API listens apart:
/// a thread accepts, and each connection (at most `maxConnections` at once) is served on a
/// thread of its own with blocking sockets and timeouts, keep-alive included. Requests are
/// few and small next to WebSocket traffic; this keeps the event loop out of it.
public final class APIListener: Sendable {
    public let router: APIRouter
    private let host: String
    private let port: Int
    private let listening = Mutex<(fd: Int32, stopped: Bool)>((-1, false))
    private let open = Atomic<Int>(0)

    static let maxConnections = 64
    static let maxHeadBytes = 16384
    /// A connection that sends nothing for this long is closed (seconds).
    static let idleSeconds = 10

    /// The body limit is the router's (`APIRouter.maxBody`).
    public init(host: String, port: Int, router: APIRouter) {
        self.host = host
        self.port = port
        self.router = router
    }

    /// Binds and starts accepting; returns the bound port (the configured one, or the one the
    /// kernel chose for port 0).
    @discardableResult
    public func start() throws -> Int {
        let (fd, bound) = try Self.bind(host: host, port: port)
        listening.withLock { $0.fd = fd }
        detachThread { [self] in acceptLoop(fd) }
        return bound
    }

    /// Stops accepting; requests in flight finish.
    public func stop() {
        listening.withLock { state in
            guard !state.stopped else { return }
            state.stopped = true
            if state.fd >= 0 { shutdown(state.fd, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop(_ fd: Int32) {
        defer { close(fd) }
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if listening.withLock({ $0.stopped }) { return }
                if errno == EMFILE || errno == ENFILE { usleep(10_000) }
                continue
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            if open.add(1, ordering: .relaxed).newValue > Self.maxConnections {
                write(client, APIError(status: 503, code: "unavailable", message: "too many API connections").response,
                      keepAlive: false)
                close(client)
                open.subtract(1, ordering: .relaxed)
                continue
            }
            detachThread { [self] in
                serve(client)
                close(client)
                open.subtract(1, ordering: .relaxed)
            }
        }
    }

    // MARK: - One connection

    private func serve(_ fd: Int32) {
        var timeout = timeval(tv_sec: Self.idleSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer: [UInt8] = []
        let executor = APIExecutor()
        while true {
            let head: APIRequestHead
            switch APIRequestHead.read(fd, &buffer, limit: Self.maxHeadBytes) {
            case .closed: return
            case .failed(let error):
                write(fd, error.response, keepAlive: false)
                return
            case .head(let parsed): head = parsed
            }
            var request = APIRequest(method: head.method, path: head.path, query: head.query, headers: head.headers)
            if let refusal = router.refusalBeforeBody(request, contentLength: head.contentLength, chunked: head.chunked) {
                // The body is never read: the connection cannot be reused after it.
                write(fd, refusal, keepAlive: false)
                return
            }
            guard let body = APIRequestHead.readBody(fd, &buffer, count: head.contentLength) else { return }
            request.body = body
            let response = answer(request, on: executor)
            guard write(fd, response, keepAlive: head.keepAlive), head.keepAlive else { return }
        }
    }

    /// Runs the router on this connection's thread (`APIExecutor`), not on the concurrency pool.
    private func answer(_ request: APIRequest, on executor: APIExecutor) -> APIResponse {
        let router = self.router
        return executor.run { await router.handle(request) }
    }

    @discardableResult
    private func write(_ fd: Int32, _ response: APIResponse, keepAlive: Bool) -> Bool {
        let body = response.bodyBytes
        var head = "HTTP/1.1 \(response.status) \(HTTPReason.phrase(response.status))\r\n"
        head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\nCache-Control: no-store\r\n"
        head += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + body
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            sent += count
        }
        return true
    }

    // MARK: - Socket

    static func bind(host: String, port: Int) throws -> (Int32, Int) {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw StartupError(message: "api: cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StartupError(message: "api: socket: \(lastErrorText())") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard Glibc.bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(fd, 128) == 0 else {
            let text = lastErrorText()
            close(fd)
            throw StartupError(message: "api: cannot listen on \(host):\(port): \(text)")
        }
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        // The port sits at the same offset in sockaddr_in and sockaddr_in6.
        let bound = withUnsafePointer(to: &address) { pointer -> Int in
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
        return (fd, bound)
    }
}
