// A plain Redis subscriber (RESP over a TCP socket) that sees every envelope the servers
// publish, in order: what a server publishes is checked at the source, not through another
// instance's deliveries.
import TestSupport
import Foundation
import Switchboard

/// `PSUBSCRIBE <pattern>` on a real redis-server; `next` returns the published messages in the
/// order Redis relays them.
final class E2ERedisSubscriber {
    private let connection: TCPConnection
    private var buffer: [UInt8] = []
    private var index = 0

    /// Connects and returns once Redis confirmed the subscription.
    init(port: Int, pattern: String = "ws:*", timeout: Double = 3) throws {
        connection = try TCPConnection(port: UInt16(port))
        try connection.write(Array("*2\r\n$10\r\nPSUBSCRIBE\r\n$\(pattern.utf8.count)\r\n\(pattern)\r\n".utf8))
        let reply = try nextArray(deadline: deadline(after: timeout))
        guard reply.first == "psubscribe" else { throw E2EError("PSUBSCRIBE answered \(reply)") }
    }

    /// The next published message: its channel and its text.
    /// - Throws: when nothing is published within `timeout`.
    func next(timeout: Double = 3) throws -> (channel: String, message: String) {
        let reply = try nextArray(deadline: deadline(after: timeout))
        guard reply.count == 4, reply[0] == "pmessage" else { throw E2EError("expected a pmessage, got \(reply)") }
        return (reply[2], reply[3])
    }

    /// The next published message, parsed as an envelope (PROTOCOL.md 8).
    func nextEnvelope(timeout: Double = 3) throws -> (channel: String, envelope: JSONValue) {
        let (channel, message) = try next(timeout: timeout)
        guard let envelope = try? JSONValue.parse(message) else { throw E2EError("\(channel): not JSON: \(message)") }
        return (channel, envelope)
    }

    func close() { connection.close() }

    // MARK: RESP

    /// One array reply of bulk strings and integers (integers as their text).
    private func nextArray(deadline: ContinuousClock.Instant) throws -> [String] {
        while true {
            let start = index
            if let array = try parseArray() { return array }
            index = start
            if try connection.read(into: &buffer, deadline: deadline, what: "a Redis reply") == 0 {
                throw E2EError("Redis closed the subscriber connection")
            }
        }
    }

    private func parseArray() throws -> [String]? {
        guard let header = line() else { return nil }
        guard header.first == "*", let count = Int(header.dropFirst()) else { throw E2EError("unexpected RESP \(header)") }
        var items: [String] = []
        for _ in 0..<count {
            guard let item = line() else { return nil }
            switch item.first {
            case ":":
                items.append(String(item.dropFirst()))
            case "$":
                guard let length = Int(item.dropFirst()) else { throw E2EError("bad bulk length \(item)") }
                guard buffer.count - index >= length + 2 else { return nil }
                items.append(String(decoding: buffer[index..<index + length], as: UTF8.self))
                index += length + 2
            default:
                throw E2EError("unexpected RESP item \(item)")
            }
        }
        return items
    }

    /// The next CRLF-terminated line from `index`, or nil when it has not fully arrived.
    private func line() -> String? {
        var end = index
        while end + 1 < buffer.count {
            if buffer[end] == 13, buffer[end + 1] == 10 {
                let text = String(decoding: buffer[index..<end], as: UTF8.self)
                index = end + 2
                return text
            }
            end += 1
        }
        return nil
    }
}
