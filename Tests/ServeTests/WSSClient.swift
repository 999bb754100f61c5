import COpenSSL
import Foundation
import Switchboard
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A blocking `wss://` client on OpenSSL: verifies the server's certificate against exactly
/// `trusting` (a PEM file) and the name `localhost`, upgrades, and sends and reads unfragmented
/// text frames. Enough to hold a connection open across a certificate reload. Used by one
/// task at a time (hence `@unchecked Sendable`: it moves between the test and its threads).
final class WSSClient: @unchecked Sendable {
    private let fd: Int32
    private let context: OpaquePointer
    private let ssl: OpaquePointer
    private var buffer: [UInt8] = []
    /// The code of the server's close frame, once one arrived.
    private(set) var closeCode: UInt16?

    /// Connects, completes the TLS handshake and the upgrade; throws with OpenSSL's reason
    /// when the server's certificate is not the trusted one.
    init(port: Int, trusting certificate: String) throws {
        signal(SIGPIPE, SIG_IGN)  // SSL_write on a reset socket
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw TestFailure("SSL_CTX_new") }
        self.context = context
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        guard SSL_CTX_load_verify_locations(context, certificate, nil) == 1 else {
            SSL_CTX_free(context)
            throw TestFailure("cannot trust \(certificate)")
        }
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connectLoopback(fd, port: port) == 0, let ssl = SSL_new(context) else {
            Glibc.close(fd)
            SSL_CTX_free(context)
            throw TestFailure("cannot connect to 127.0.0.1:\(port)")
        }
        self.ssl = ssl
        SSL_set_fd(ssl, fd)
        _ = SSL_set1_host(ssl, "localhost")
        ERR_clear_error()
        guard SSL_connect(ssl) == 1 else {
            let code = ERR_get_error()
            ERR_clear_error()
            throw TestFailure("SSL_connect: " + (ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(code)"))
        }
        let key = randomWebSocketKey()
        try write(Array(upgradeRequest(port: UInt16(port), key: key).utf8))
        while !buffer.containsHeadEnd {
            guard try fill() else { throw TestFailure("closed during the upgrade") }
        }
        let head = String(decoding: buffer, as: UTF8.self)
        guard head.hasPrefix("HTTP/1.1 101") else { throw TestFailure("no upgrade: \(head)") }
        buffer.removeFirst(buffer.headEnd!)
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
        Glibc.close(fd)
    }

    /// `{"event", "data"}` as one masked text frame.
    func send(_ event: String, _ data: JSONValue) throws {
        let payload = Array(JSONValue.object(JSONObject([("event", .string(event)), ("data", data)])).serialized().utf8)
        precondition(payload.count < 65536, "messages under 64 KiB only")
        let length: [UInt8] = payload.count < 126 ? [0x80 | UInt8(payload.count)]
            : [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        let mask: [UInt8] = [1, 2, 3, 4]
        try write([0x81] + length + mask + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
    }

    /// The data of the next message whose event is `event` (others skipped); nil once the
    /// server closed (its code in `closeCode`).
    func receive(event: String) throws -> JSONValue? {
        while let message = try next() {
            if message.event == event { return message.data }
        }
        return nil
    }

    /// The next message as `(event, data)`; nil once the server closed (its code in `closeCode`).
    func next() throws -> (event: String, data: JSONValue)? {
        while let (opcode, payload) = try nextFrame() {
            if opcode == 0x8 {
                if payload.count >= 2 { closeCode = UInt16(payload[0]) << 8 | UInt16(payload[1]) }
                return nil
            }
            guard opcode == 0x1 else { continue }
            let message = try JSONValue.parse(String(decoding: payload, as: UTF8.self))
            return (message["event"]?.stringValue ?? "", message["data"] ?? .null)
        }
        return nil
    }

    /// The next server frame (unmasked, unfragmented); nil at the end of the stream.
    private func nextFrame() throws -> (UInt8, [UInt8])? {
        while true {
            if buffer.count >= 2 {
                var length = Int(buffer[1] & 0x7F), offset = 2
                if length == 126, buffer.count >= 4 {
                    length = Int(buffer[2]) << 8 | Int(buffer[3])
                    offset = 4
                } else if length == 127 {
                    throw TestFailure("frame too large for this client")
                }
                if length < 126 || offset == 4, buffer.count >= offset + length {
                    let frame = (buffer[0] & 0x0F, Array(buffer[offset..<offset + length]))
                    buffer.removeFirst(offset + length)
                    return frame
                }
            }
            guard try fill() else { return nil }
        }
    }

    /// Reads what is there into `buffer`; false at the end of the stream.
    @discardableResult
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16384)
        var count = 0
        guard chunk.withUnsafeMutableBytes({ SSL_read_ex(ssl, $0.baseAddress!, $0.count, &count) }) == 1 else {
            ERR_clear_error()
            return false
        }
        buffer += chunk[0..<count]
        return true
    }

    private func write(_ bytes: [UInt8]) throws {
        var written = 0
        guard bytes.withUnsafeBytes({ SSL_write_ex(ssl, $0.baseAddress!, $0.count, &written) }) == 1 else {
            ERR_clear_error()
            throw TestFailure("SSL_write failed")
        }
    }
}

private extension [UInt8] {
    /// The index just past the blank line ending an HTTP head.
    var headEnd: Int? {
        guard count >= 4 else { return nil }
        for index in 0...(count - 4) where self[index] == 13 && self[index + 1] == 10 && self[index + 2] == 13 && self[index + 3] == 10 {
            return index + 4
        }
        return nil
    }
    var containsHeadEnd: Bool { headEnd != nil }
}
