import Foundation
import Glibc
import SwitchboardDriverSupport
import SwitchboardPOSIX
import Testing

/// Generous upper bound on any wait; a guard against hangs, never used for ordering.
let failureTimeout: TimeInterval = 30

/// What the recording handler has seen. Guarded by `Recorder`'s condition variable.
struct Events {
    var accepted: [(id: SocketID, peer: PeerAddress)] = []
    var received: [SocketID: [UInt8]] = [:]
    var closed: [(id: SocketID, reason: CloseReason)] = []
    var drained: [SocketID] = []
    var fired: [(token: UInt64, at: Instant)] = []
    var signals: [Int32] = []
    var reentered = false
    var notOnLoopThread = false

    func closes(of id: SocketID) -> [CloseReason] { closed.filter { $0.id == id }.map(\.reason) }
    func acceptedID(peerPort: Int) -> SocketID? { accepted.first { $0.peer.port == peerPort }?.id }
}

/// A handler that records every callback (checking it is neither re-entered nor off the
/// loop thread) and optionally echoes or closes on input.
final class Recorder: EventLoopHandler, @unchecked Sendable {
    /// `echoOnly` echoes without recording the bytes (for throughput measurements).
    enum OnInput { case record, echo, echoOnly, closeImmediately }

    private let condition = NSCondition()
    private var events = Events()
    private let onInput: OnInput
    /// Set once before the loop starts; the loop keeps the handler weakly, we keep the loop.
    var loop: EventLoop!
    var loopThread: pthread_t?
    private var depth = 0

    init(onInput: OnInput) { self.onInput = onInput }

    func with<T>(_ body: (inout Events) -> T) -> T {
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        return body(&events)
    }

    /// Waits until `predicate` holds; false if it still doesn't after `failureTimeout`.
    @discardableResult
    func wait(until predicate: (Events) -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: failureTimeout)
        condition.lock()
        defer { condition.unlock() }
        while !predicate(events) {
            if !condition.wait(until: deadline) { return predicate(events) }
        }
        return true
    }

    func waitForAccept(peerPort: Int) -> SocketID? {
        wait { $0.acceptedID(peerPort: peerPort) != nil }
        return with { $0.acceptedID(peerPort: peerPort) }
    }

    private func enter() {
        depth += 1
        let reentered = depth > 1
        let offThread = loopThread.map { pthread_equal($0, pthread_self()) == 0 } ?? false
        if reentered || offThread {
            with {
                $0.reentered = $0.reentered || reentered
                $0.notOnLoopThread = $0.notOnLoopThread || offThread
            }
        }
    }

    private func leave() { depth -= 1 }

    func connectionAccepted(_ id: SocketID, peer: PeerAddress, listener: ListenerID) {
        enter(); defer { leave() }
        with { $0.accepted.append((id, peer)) }
    }

    func bytesReceived(_ id: SocketID, _ bytes: UnsafeRawBufferPointer) {
        enter(); defer { leave() }
        if onInput == .echoOnly {
            loop.write(id, copying: bytes)
            return
        }
        with { $0.received[id, default: []].append(contentsOf: bytes) }
        switch onInput {
        case .record: break
        case .echo, .echoOnly: loop.write(id, copying: bytes)
        case .closeImmediately:
            loop.close(id, flushFirst: false)
            loop.close(id, flushFirst: false)  // second close of a dead id is ignored
        }
    }

    func connectionDrained(_ id: SocketID) {
        enter(); defer { leave() }
        with { $0.drained.append(id) }
    }

    func connectionClosed(_ id: SocketID, reason: CloseReason) {
        enter(); defer { leave() }
        with { $0.closed.append((id, reason)) }
    }

    func timerFired(_ token: UInt64) {
        enter(); defer { leave() }
        let now = loop.now
        with { $0.fired.append((token, now)) }
    }
}

final class Box<T>: @unchecked Sendable {
    var value: T?
}

/// An `EventLoop` running on its own thread with a `Recorder`, listening on 127.0.0.1:0.
final class LoopServer: @unchecked Sendable {
    let loop: EventLoop
    let recorder: Recorder
    let port: Int
    private let finished = DispatchSemaphore(value: 0)
    private var stopped = false

    /// With `tls`, the one listener is a TLS listener.
    init(onInput: Recorder.OnInput = .echo, lingerMilliseconds: Int64 = 2000, tls: TLSContext? = nil,
         beforeRun: (@Sendable (EventLoop) -> Void)? = nil) throws {
        loop = try EventLoop(lingerMilliseconds: lingerMilliseconds)
        recorder = Recorder(onInput: onInput)
        recorder.loop = loop
        loop.handler = recorder
        port = try loop.listen(host: "127.0.0.1", port: 0, tls: tls).port
        let loop = self.loop, finished = self.finished, recorder = self.recorder
        let started = DispatchSemaphore(value: 0)
        Thread {
            beforeRun?(loop)
            recorder.loopThread = pthread_self()
            started.signal()
            loop.run()
            finished.signal()
        }.start()
        started.wait()
    }

    /// Runs `body` on the loop thread and returns its result (nil if the loop never ran it).
    func onLoop<T>(_ body: @escaping @Sendable (EventLoop) -> T) -> T? {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        let loop = self.loop
        loop.post {
            box.value = body(loop)
            done.signal()
        }
        guard done.wait(timeout: .now() + failureTimeout) == .success else { return nil }
        return box.value
    }

    /// Stops the loop; true once `run()` has returned.
    func shutdown() -> Bool {
        if stopped { return true }
        stopped = true
        loop.stop()
        return finished.wait(timeout: .now() + failureTimeout) == .success
    }

    deinit { _ = shutdown() }
}

extension LoopServer {
    /// Queues `chunk` `times` times for `id` in one loop turn; the bytes then buffered, read in
    /// the next turn (each `onLoop` call returns before its turn's flush).
    func queue(_ chunk: SharedBytes, times: Int, for id: SocketID,
               sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        _ = onLoop { loop in for _ in 0..<times { loop.write(id, chunk) } }
        return try #require(onLoop { $0.bufferedAmount(id) }, sourceLocation: sourceLocation)
    }

    /// Writes one `SharedBytes` of `payload` to every accepted connection in one turn; their ids.
    func broadcastToAll(_ payload: [UInt8]) -> [SocketID] {
        let ids = recorder.with { $0.accepted.map(\.id) }
        _ = onLoop { loop in
            let shared = SharedBytes(payload)
            for id in ids { loop.write(id, shared) }
        }
        return ids
    }

    /// After every client hung up: `ids` all reported closed by the peer, never re-entrantly or
    /// off the loop, no connection left, and the loop shuts down.
    func expectAllClosedByPeers(_ ids: [SocketID], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(recorder.wait { $0.closed.count == ids.count }, sourceLocation: sourceLocation)
        let events = recorder.with { $0 }
        #expect(Set(events.closed.map(\.id)) == Set(ids), sourceLocation: sourceLocation)
        #expect(events.closed.allSatisfy { $0.reason == .peerClosed }, sourceLocation: sourceLocation)
        #expect(!events.reentered && !events.notOnLoopThread, sourceLocation: sourceLocation)
        #expect(onLoop { $0.connectionCount } == 0, sourceLocation: sourceLocation)
        #expect(shutdown(), sourceLocation: sourceLocation)
    }

    /// In one turn: `payload` shared, the bytes 1 2 copied, `close(flushFirst: true)`, then
    /// `payload` again, which must be ignored. What the peer reads is checked by
    /// `expectFlushedBeforeClose`.
    func writeThenCloseFlushing(_ payload: [UInt8], to id: SocketID) {
        let shared = SharedBytes(payload)
        _ = onLoop { loop in
            loop.write(id, shared)
            [UInt8]([1, 2]).withUnsafeBytes { loop.write(id, copying: $0) }
            loop.close(id, flushFirst: true)
            loop.write(id, shared)  // after close: ignored
        }
    }

    /// The peer of `writeThenCloseFlushing` read `payload`, then 1 2, and nothing more.
    static func expectFlushedBeforeClose(_ received: [UInt8], _ payload: [UInt8],
                                         sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(received.count == payload.count + 2, sourceLocation: sourceLocation)
        #expect(received.prefix(payload.count).elementsEqual(payload) && received.suffix(2) == [1, 2],
                sourceLocation: sourceLocation)
    }

    /// `id` was reported drained, exactly once, and has nothing queued.
    func expectDrainedOnce(_ id: SocketID, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(recorder.wait { $0.drained.contains(id) }, sourceLocation: sourceLocation)
        #expect(onLoop { $0.bufferedAmount(id) } == 0, sourceLocation: sourceLocation)
        #expect(recorder.with { $0.drained } == [id], sourceLocation: sourceLocation)
    }
}

/// Blocking POSIX client sockets.
enum Client {
    /// A connected socket, or `-errno`.
    static func connect(port: Int, host: String = "127.0.0.1") -> Int32 {
        // getaddrinfo with a numeric host: one path for IPv4 and IPv6 literals.
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &found) == 0, let address = found?.pointee else { return -EINVAL }
        defer { freeaddrinfo(found) }
        let fd = socket(address.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -errno }
        var timeout = timeval(tv_sec: Int(failureTimeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard Glibc.connect(fd, address.ai_addr, address.ai_addrlen) == 0 else {
            let code = errno
            Glibc.close(fd)
            return -code
        }
        return fd
    }

    static func localPort(_ fd: Int32) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return withUnsafeBytes(of: storage) { Int($0[2]) << 8 | Int($0[3]) }
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    /// Reads exactly `count` bytes (fewer on EOF, error or timeout).
    static func receive(_ fd: Int32, count: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = result.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, count - offset, 0) }
            guard n > 0 else { break }
            offset += n
        }
        return Array(result[0..<offset])
    }

    /// Reads until EOF; `eof` is false on error or timeout.
    static func receiveToEnd(_ fd: Int32) -> (bytes: [UInt8], eof: Bool) {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n == 0 { return (result, true) }
            if n < 0 { return (result, false) }
            result.append(contentsOf: buffer[0..<n])
        }
    }
}
