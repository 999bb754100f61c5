import Switchboard
import SwitchboardCodec
import SwitchboardPOSIX
#if canImport(Glibc)
import Glibc
#endif

/// The internal listener (`internal.port`): a plain HTTP/1.1 port for operators, on an event
/// loop and a thread of its own, so that `/metrics` and the probes need not face the internet
/// and a slow scraper never shares a loop turn with WebSocket traffic.
///
/// One request per connection (answered with `Connection: close`), with a body up to
/// `maxBody` bytes (`Content-Length` only) unless the router's body checks say otherwise
/// (`HTTPRouter.bodyChecks`: the server API's `api.max_body`); a request not complete within
/// `requestTimeoutMilliseconds` is dropped. Each complete request is answered by the
/// `HTTPRouter` in a task that runs on this loop's thread (its `LoopExecutor`): a route's awaits
/// (the gateway's metrics, a query) suspend without blocking the loop, and no answer waits for
/// a thread of Swift's global pool, which busy hooks may hold.
final class InternalListener: EventLoopHandler, @unchecked Sendable {
    static let maxBody = 1 << 20
    static let requestTimeoutMilliseconds: Int64 = 10_000

    private let loop: EventLoop
    private let executor: LoopExecutor
    private let router: HTTPRouter
    /// Requests being read, by connection; loop thread only.
    private var reading: [UInt64: PartialRequest] = [:]

    private struct PartialRequest {
        var parser = HTTPRequestParser()
        var head: HTTPRequestHead?
        var expected = 0
        var body: [UInt8] = []
    }

    init(router: HTTPRouter) throws {
        self.router = router
        self.loop = try EventLoop(lingerMilliseconds: 1000)
        self.executor = LoopExecutor(loop: loop)
        loop.handler = self
    }

    /// Binds `host:port` (0 picks a free port) and runs the loop on a new thread, which keeps
    /// this listener alive until `stop()`. Returns the bound port.
    func start(host: String, port: Int) throws -> Int {
        let bound: Int
        do {
            bound = try loop.listen(host: host, port: port, backlog: 128).port
        } catch {
            throw StartupError(message: "internal listener: \(error)")
        }
        detachThread { [self] in loop.run() }
        return bound
    }

    /// Closes the port and ends the loop (open requests are dropped). Thread-safe.
    func stop() {
        let loop = self.loop
        loop.post {
            loop.stopAccepting()
            loop.stop()
        }
    }

    // MARK: - EventLoopHandler (loop thread)

    func connectionAccepted(_ id: SocketID, peer: PeerAddress, listener: ListenerID) {
        reading[id.rawValue] = PartialRequest()
        loop.schedule(id.rawValue, at: loop.now + Self.requestTimeoutMilliseconds)
    }

    func bytesReceived(_ id: SocketID, _ bytes: UnsafeRawBufferPointer) {
        guard var request = reading[id.rawValue] else { return }  // answered already: ignored
        if request.head == nil {
            switch request.parser.feed(bytes) {
            case .needMore:
                break
            case .failed(let error):
                return finish(id, HTTPResponse.parseFailure(error))
            case .complete(let head, let consumed):
                let chunked = head.header("transfer-encoding") != nil
                let length = head.header("content-length").map { Int($0) ?? -1 } ?? 0
                // A route may refuse on the head, or allow a body of another size (the server API).
                var limit = Self.maxBody
                let bare = HTTPCall(method: head.method, target: head.target, headers: head.headers)
                switch router.bodyDecision(bare, contentLength: length, chunked: chunked) {
                case .refuse(let answer)?: return finish(id, Self.bytes(answer, head: head.method == "HEAD"))
                case .read(let routeLimit)?: limit = routeLimit
                case nil: break
                }
                if chunked {
                    return finish(id, HTTPResponse.simple(status: 411, reason: "Length Required",
                                                          body: "send the body with Content-Length\n"))
                }
                guard (0...limit).contains(length) else {
                    return finish(id, HTTPResponse.simple(status: 413, reason: "Content Too Large",
                                                          body: "the body must be 0 to \(limit) bytes\n"))
                }
                request.head = head
                request.expected = length
                request.body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
            }
        } else {
            request.body.append(contentsOf: bytes)
        }
        guard let head = request.head, request.body.count >= request.expected else {
            reading[id.rawValue] = request
            return
        }
        reading[id.rawValue] = nil
        loop.cancel(id.rawValue)
        let call = HTTPCall(method: head.method, target: head.target, headers: head.headers,
                            body: Array(request.body.prefix(request.expected)))
        let (loop, router) = (self.loop, self.router)
        Task(executorPreference: executor) {
            let bytes = Self.bytes(await router.answer(call), head: call.method == "HEAD")
            let reply: @Sendable () -> Void = { [bytes] in
                bytes.withUnsafeBytes { loop.write(id, copying: $0) }
                loop.close(id, flushFirst: true)
            }
            // A route isolated to an actor may hand the task back elsewhere.
            if loop.isLoopThread { reply() } else { loop.post(reply) }
        }
    }

    func connectionDrained(_ id: SocketID) {}

    func connectionClosed(_ id: SocketID, reason: CloseReason) {
        if reading.removeValue(forKey: id.rawValue) != nil { loop.cancel(id.rawValue) }
    }

    /// A request not complete in time: dropped without an answer (as a slowloris deserves).
    func timerFired(_ token: UInt64) {
        guard reading.removeValue(forKey: token) != nil else { return }
        loop.close(SocketID(rawValue: token), flushFirst: false)
    }

    /// The answer on the wire; for HEAD, the GET's headers (its Content-Length too), no body.
    private static func bytes(_ answer: HTTPAnswerBody, head: Bool) -> [UInt8] {
        var bytes = HTTPResponse.simple(status: answer.status, reason: answer.reason, contentType: answer.contentType,
                                        body: answer.body, extraHeaders: answer.headers.map { (name: $0.0, value: $0.1) })
        if head { bytes.removeLast(answer.body.count) }
        return bytes
    }

    private func finish(_ id: SocketID, _ bytes: [UInt8]) {
        reading[id.rawValue] = nil
        loop.cancel(id.rawValue)
        bytes.withUnsafeBytes { loop.write(id, copying: $0) }
        loop.close(id, flushFirst: true)
    }
}
