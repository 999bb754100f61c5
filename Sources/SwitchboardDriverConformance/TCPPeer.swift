import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The client side of a check: a blocking loopback socket with deadline-bound reads.
final class TCPPeer {
    let connection: TCPConnection
    /// Bytes read past what a `read(exactly:)` asked for.
    private var spare: [UInt8] = []

    /// - Parameter receiveBuffer: a small SO_RCVBUF makes a peer that does not read stall the
    ///   driver's writes quickly.
    init(port: UInt16, receiveBuffer: Int32? = nil) throws {
        connection = try TCPConnection(port: port, receiveBuffer: receiveBuffer)
    }

    func write(_ bytes: [UInt8]) throws { try connection.write(bytes) }

    /// Exactly `count` bytes, or a failure naming what came instead.
    func read(exactly count: Int, timeout: Double = 5, what: String) throws -> [UInt8] {
        let end = deadline(after: timeout)
        while spare.count < count {
            if try connection.read(into: &spare, deadline: end, what: what) == 0 {
                throw ConformanceFailure("\(what): the connection ended after \(spare.count) of \(count) bytes")
            }
        }
        let result = Array(spare[0..<count])
        spare.removeFirst(count)
        return result
    }

    /// Everything up to the end of the stream (FIN or reset).
    func readToEnd(timeout: Double = 10, what: String) throws -> [UInt8] {
        let end = deadline(after: timeout)
        while try connection.read(into: &spare, deadline: end, what: what) > 0 {}
        defer { spare.removeAll() }
        return spare
    }

    /// Whether the stream ends (FIN or reset) within `seconds`; bytes meanwhile are discarded.
    func endsWithin(seconds: Double) -> Bool {
        connection.waitForEndOfStream(deadline: deadline(after: seconds))
    }

    /// Whether nothing at all arrives for `seconds`.
    func staysSilent(for seconds: Double) -> Bool { connection.staysSilent(for: seconds) }

    func close() { connection.close() }
}
