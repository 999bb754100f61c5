import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Collects a child's output on a background thread; readers wait with a timeout.
public final class OutputCollector: @unchecked Sendable {
    private let condition = NSCondition()
    private var bytes: [UInt8] = []
    private var lines: [String] = []
    private var taken: [Bool] = []
    private var partial: [UInt8] = []
    private var ended = false
    private let pipe: Pipe

    public init(pipe: Pipe) {
        self.pipe = pipe
        let thread = Thread { [self] in readLoop() }
        thread.name = "child output"
        thread.start()
    }

    private func readLoop() {
        let fd = pipe.fileHandleForReading.fileDescriptor
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            condition.lock()
            if count <= 0 {
                if !partial.isEmpty { appendLine(partial) }
                ended = true
                condition.broadcast()
                condition.unlock()
                return
            }
            bytes.append(contentsOf: chunk[0..<count])
            for byte in chunk[0..<count] {
                if byte == 10 {
                    appendLine(partial)
                    partial.removeAll()
                } else {
                    partial.append(byte)
                }
            }
            condition.broadcast()
            condition.unlock()
        }
    }

    private func appendLine(_ line: [UInt8]) {
        lines.append(String(decoding: line, as: UTF8.self))
        taken.append(false)
    }

    /// Everything read so far.
    public var data: [UInt8] {
        condition.lock()
        defer { condition.unlock() }
        return bytes
    }

    /// Everything read so far, as text.
    public var text: String {
        condition.lock()
        defer { condition.unlock() }
        return String(decoding: bytes, as: UTF8.self)
    }

    public var allLines: [String] {
        condition.lock()
        defer { condition.unlock() }
        return lines
    }

    /// The first line starting with `prefix` not returned before; nil when the timeout ran
    /// out or the stream ended without one.
    public func takeLine(prefix: String, timeout: Double) -> String? {
        let end = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let index = lines.indices.first(where: { !taken[$0] && lines[$0].hasPrefix(prefix) }) {
                taken[index] = true
                return lines[index]
            }
            if ended { return nil }
            if !condition.wait(until: end) { return nil }
        }
    }

    /// Waits until the stream ends; false on timeout.
    public func waitForEnd(timeout: Double) -> Bool {
        let end = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while !ended {
            if !condition.wait(until: end) { return ended }
        }
        return true
    }
}
