import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Seconds from now, as a deadline.
public func deadline(after seconds: Double) -> ContinuousClock.Instant {
    .now + .milliseconds(Int(seconds * 1000))
}

/// A blocking TCP connection to 127.0.0.1 with deadline-bound reads.
public final class TCPConnection {
    public let fd: Int32
    public private(set) var isOpen = true

    /// - Parameter receiveBuffer: SO_RCVBUF set before connecting (a small window makes a
    ///   non-reading client fill the server's buffers quickly).
    public init(port: UInt16, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket(): \(String(cString: strerror(errno)))") }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var sendTimeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        let result = connectLoopback(fd, port: Int(port))
        guard result == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(fd)
            throw TestFailure("connect(127.0.0.1:\(port)): \(message)")
        }
    }

    deinit { close() }

    public func close() {
        guard isOpen else { return }
        isOpen = false
        Glibc.close(fd)
    }

    /// Writes every byte (blocking, 5 s send timeout).
    public func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw TestFailure("send(): \(String(cString: strerror(errno))) after \(offset) of \(bytes.count) bytes")
            }
            offset += written
        }
    }

    /// Appends what arrives before `deadline` to `buffer`; returns the count, 0 at end of stream.
    /// - Throws: on timeout or a socket error.
    public func read(into buffer: inout [UInt8], deadline: ContinuousClock.Instant, what: String) throws -> Int {
        while true {
            let remaining = deadline - .now
            let milliseconds = max(0, Int32(remaining.components.seconds * 1000
                + remaining.components.attoseconds / 1_000_000_000_000_000))
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw TestFailure("poll(): \(String(cString: strerror(errno)))")
            }
            if ready == 0 { throw TestFailure("timed out waiting for \(what)", isTimeout: true) }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == ECONNRESET { return 0 }
                throw TestFailure("recv(): \(String(cString: strerror(errno)))")
            }
            buffer.append(contentsOf: chunk[0..<count])
            return count
        }
    }

    /// Whether nothing (no byte, no end of stream) arrives for `seconds`; paces slow writers.
    public func staysSilent(for seconds: Double) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, Int32(seconds * 1000)) == 0
    }

    /// Whether the peer closed (end of stream or reset) before `deadline`; bytes read meanwhile are discarded.
    public func waitForEndOfStream(deadline: ContinuousClock.Instant) -> Bool {
        var scratch: [UInt8] = []
        while true {
            scratch.removeAll(keepingCapacity: true)
            guard let count = try? read(into: &scratch, deadline: deadline, what: "end of stream") else { return false }
            if count == 0 { return true }
        }
    }
}
