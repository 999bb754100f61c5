import Foundation
import Switchboard
#if canImport(Glibc)
import Glibc
#endif

/// One accepted socket of the `BlockingDriver`: a reader thread (blocking `recv`, waiting
/// while paused) and a writer thread (blocking `send` of what each loop turn queued). The
/// threads share `state` with the loop; everything they report goes through the loop.
final class BlockingConnection: @unchecked Sendable {
    let id: ConnectionID
    private let fd: Int32
    private let loop: WorkQueue

    // Loop-only.
    var closeRequested = false
    private(set) var paused = false
    /// Bytes read but not reported (read just before a pause, or waiting for the resume's work).
    var held: [[UInt8]] = []
    /// The peer's FIN came behind held bytes: `connectionClosed` waits until they are reported.
    var endPending = false

    // Shared, under `state`.
    private let state = NSCondition()
    private var pending: [UInt8] = []  // queued this turn
    private var outgoing: [UInt8] = []  // handed to the writer
    private var sending = 0
    private var readPaused = false
    private var finRequested = false
    private var closeAfterFlush = false
    private var aborted = false
    private var backlogged = false
    private var threadsEnded = 0
    private var socketClosed = false

    init(id: ConnectionID, fd: Int32, loop: WorkQueue) {
        self.id = id
        self.fd = fd
        self.loop = loop
    }

    /// Bytes queued and not yet taken by the kernel.
    var buffered: Int { state.withLock { pending.count + outgoing.count + sending } }

    /// Whether a write bounded by `limit` may be queued; when not, a drain is owed.
    func accepts(_ limit: Int) -> Bool {
        state.withLock {
            if pending.count + outgoing.count + sending <= limit { return true }
            backlogged = true
            return false
        }
    }

    /// Queues bytes; true when this is the turn's first write (the driver then flushes it).
    func enqueue(_ bytes: UnsafeRawBufferPointer) -> Bool {
        state.withLock {
            let first = pending.isEmpty && !closeAfterFlush
            pending.append(contentsOf: bytes)
            return first
        }
    }

    /// `close(flushFirst: true)`: what is queued goes, then FIN; reading goes on to see the peer's.
    func finishWriting() {
        state.withLock {
            closeAfterFlush = true
            readPaused = false
            state.broadcast()
        }
    }

    /// The end of a loop turn: this turn's writes go to the writer.
    func flush() {
        state.withLock {
            outgoing.append(contentsOf: pending)
            pending.removeAll()
            if closeAfterFlush { finRequested = true }
            state.broadcast()
        }
    }

    func setPaused(_ paused: Bool) {
        self.paused = paused
        state.withLock {
            readPaused = paused && !closeAfterFlush
            state.broadcast()
        }
    }

    /// Ends the connection now: both threads wake (the socket is shut down) and end. Under the
    /// lock, so that it never shuts down a descriptor number already closed and reused.
    func abort() {
        state.withLock {
            aborted = true
            state.broadcast()
            if !socketClosed { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    func startThreads(received: @escaping @Sendable ([UInt8]) -> Void, ended: @escaping @Sendable () -> Void,
                      drained: @escaping @Sendable () -> Void) {
        Thread.detachNewThread { [self] in
            read(received)
            abort()
            threadEnded(ended)
        }
        Thread.detachNewThread { [self] in
            write(drained)
            threadEnded(ended)
        }
    }

    private func read(_ received: @escaping @Sendable ([UInt8]) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            // Paused: not reading, so the bytes (and a FIN behind them) wait in the kernel.
            let stop = state.withLock { () -> Bool in
                while readPaused, !aborted { state.wait() }
                return aborted
            }
            if stop { return }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { return }
            let bytes = Array(buffer[0..<n])
            loop.post { received(bytes) }
        }
    }

    private func write(_ drained: @escaping @Sendable () -> Void) {
        while true {
            state.lock()
            while outgoing.isEmpty, !finRequested, !aborted { state.wait() }
            if aborted {
                state.unlock()
                return
            }
            if outgoing.isEmpty {  // finRequested, everything written
                state.unlock()
                shutdown(fd, Int32(SHUT_WR))
                return
            }
            var chunk: [UInt8] = []
            swap(&chunk, &outgoing)
            sending = chunk.count
            state.unlock()
            let sent = sendAll(chunk)
            let drain = state.withLock { () -> Bool in
                sending = 0
                guard sent, pending.isEmpty, outgoing.isEmpty, backlogged else { return false }
                backlogged = false
                return true
            }
            if !sent {
                abort()
                return
            }
            if drain { loop.post { drained() } }
        }
    }

    private func sendAll(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    /// The second thread to end closes the socket and has the loop report the close, once.
    private func threadEnded(_ ended: @escaping @Sendable () -> Void) {
        let last = state.withLock { () -> Bool in
            threadsEnded += 1
            guard threadsEnded == 2 else { return false }
            socketClosed = true
            Glibc.close(fd)
            return true
        }
        if last { loop.post { ended() } }
    }
}
