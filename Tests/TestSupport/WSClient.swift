// A small blocking RFC 6455 client over POSIX sockets, for the tests that talk to a real
// server (EndToEndTests, ServeTests).
import Foundation
import SwitchboardCodec
import SwitchboardCrypto
import SwitchboardJSON
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One whole message or control frame from the server.
public enum Frame: Equatable, CustomStringConvertible {
    case text(String)
    case binary([UInt8])
    /// `code` is nil for a close frame without a body.
    case close(code: UInt16?, reason: String)
    case ping([UInt8])
    case pong([UInt8])

    /// A text or binary message.
    public var isData: Bool {
        switch self {
        case .text, .binary: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .text(let text): "text(\(text.count > 300 ? String(text.prefix(300)) + "..." : text))"
        case .binary(let bytes): "binary(\(bytes.count) bytes)"
        case .close(let code, let reason): "close(\(code.map(String.init) ?? "none"), \"\(reason)\")"
        case .ping(let bytes): "ping(\(bytes.count) bytes)"
        case .pong(let bytes): "pong(\(bytes.count) bytes)"
        }
    }
}

/// A server message `{"event", "data"}`.
public struct Message: CustomStringConvertible {
    public let event: String
    public let data: JSONValue?
    public let raw: String
    public var description: String { raw }

    public init(event: String, data: JSONValue?, raw: String) {
        self.event = event
        self.data = data
        self.raw = raw
    }
}

/// The base64 of 16 random bytes, as a `Sec-WebSocket-Key`.
public func randomWebSocketKey() -> String {
    var generator = SystemRandomNumberGenerator()
    return Data((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
}

/// The upgrade request `WSClient` sends.
public func upgradeRequest(port: UInt16, path: String = "/ws", key: String) -> String {
    "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

/// A WebSocket client: handshake on init, masked frames out, whole messages in, pings answered.
public final class WSClient {
    public let connection: TCPConnection
    public let port: UInt16
    /// Received bytes not yet parsed, from `readIndex` on.
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var fragments: [UInt8] = []
    private var fragmentOpcode: UInt8?
    /// A close frame arrived.
    public private(set) var closeReceived = false
    /// The server ended the TCP connection (seen by `receive`).
    public private(set) var endOfStream = false
    /// The code of the close frame that arrived (nil before one arrives, or for one without a body).
    public private(set) var closeCode: UInt16?
    private var closeSent = false
    /// Pings are answered with a pong and not returned by `receive`.
    public var answersPings = true
    private var nonce = 0

    public static let acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// Connects and performs the opening handshake; checks 101 and `Sec-WebSocket-Accept`.
    public init(port: UInt16, path: String = "/ws", receiveBuffer: Int32? = nil, timeout: Double = 2) throws {
        self.port = port
        connection = try TCPConnection(port: port, receiveBuffer: receiveBuffer)
        let key = randomWebSocketKey()
        try connection.write(Array(upgradeRequest(port: port, path: path, key: key).utf8))
        try finishHandshake(key: key, timeout: timeout)
    }

    /// A client over an already connected socket whose upgrade request (with `key`) was sent.
    public init(connection: TCPConnection, port: UInt16, key: String, timeout: Double = 2) throws {
        self.port = port
        self.connection = connection
        try finishHandshake(key: key, timeout: timeout)
    }

    private func finishHandshake(key: String, timeout: Double) throws {
        let end = deadline(after: timeout)
        while true {
            if let head = parseHTTPHead(buffer) {
                let raw = String(decoding: buffer[0..<head.bodyStart], as: UTF8.self)
                guard head.status == 101 else { throw TestFailure("upgrade answered \(head.status), not 101:\n\(raw)") }
                let expected = Base64.encode(SHA1.hash(Array((key + Self.acceptGUID).utf8)))
                guard head.headers["sec-websocket-accept"] == expected else {
                    throw TestFailure("Sec-WebSocket-Accept is \(head.headers["sec-websocket-accept"] ?? "missing"), expected \(expected):\n\(raw)")
                }
                readIndex = head.bodyStart
                return
            }
            let soFar = String(decoding: buffer, as: UTF8.self)
            let count = try connection.read(into: &buffer, deadline: end, what: "the upgrade response (so far: \(soFar))")
            if count == 0 {
                throw TestFailure("connection closed during the upgrade; got: \(String(decoding: buffer, as: UTF8.self))")
            }
        }
    }

    public func close() { connection.close() }

    // MARK: Sending

    /// Sends one frame; client frames are masked unless `masked` is false (a protocol error).
    public func sendFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true, masked: Bool = true) throws {
        var generator = SystemRandomNumberGenerator()
        let mask = masked ? (0..<4).map { _ in UInt8.random(in: 0...255, using: &generator) } : nil
        var frame: [UInt8] = []
        frame.reserveCapacity(payload.count + 14)
        ClientFrame.write(opcode, payload, fin: fin, mask: mask, into: &frame)
        try connection.write(frame)
    }

    public func sendText(_ text: String) throws { try sendFrame(opcode: 0x1, payload: Array(text.utf8)) }
    public func sendBinary(_ bytes: [UInt8]) throws { try sendFrame(opcode: 0x2, payload: bytes) }
    /// Bytes as they are, no framing (garbage, hand-made frames).
    public func sendRaw(_ bytes: [UInt8]) throws { try connection.write(bytes) }

    /// Sends `{"event": event, "data": data}` as a text frame.
    public func send(_ event: String, _ data: JSONValue? = nil) throws {
        var object = JSONObject()
        object.append(key: "event", value: .string(event))
        if let data { object.append(key: "data", value: data) }
        try sendText(JSONValue.object(object).serialized())
    }

    /// A close frame with `code` (masked).
    public func sendClose(code: UInt16 = 1000) throws {
        closeSent = true
        try sendFrame(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)])
    }

    // MARK: Receiving

    /// The next whole message or control frame. Fragmented messages are reassembled; pings
    /// are answered (and skipped while `answersPings`).
    /// - Throws: on timeout, end of stream, or a malformed server frame.
    public func receive(timeout: Double = 2) throws -> Frame {
        let end = deadline(after: timeout)
        while true {
            if let frame = try parseFrame() {
                switch frame {
                case .ping(let payload):
                    if !closeSent { try? sendFrame(opcode: 0xA, payload: payload) }
                    if answersPings { continue }
                case .close(let code, _):
                    closeReceived = true
                    closeCode = code
                default:
                    break
                }
                return frame
            }
            let count = try connection.read(into: &buffer, deadline: end, what: "a frame (\(timeout) s)")
            if count == 0 {
                endOfStream = true
                throw TestFailure("connection closed without a close frame while waiting for a frame")
            }
        }
    }

    /// The next frame, or nil when none arrives within `timeout`.
    public func receiveIfAny(timeout: Double) throws -> Frame? {
        do {
            return try receive(timeout: timeout)
        } catch let error as TestFailure where error.isTimeout {
            return nil
        }
    }

    /// The next message, which must be a text (or binary) JSON object with a string `event`.
    public func receiveJSON(timeout: Double = 2) throws -> Message {
        let frame = try receive(timeout: timeout)
        let text: String
        switch frame {
        case .text(let string): text = string
        case .binary(let bytes): text = String(decoding: bytes, as: UTF8.self)
        default: throw TestFailure("expected a JSON message, got \(frame)")
        }
        guard let value = try? JSONValue.parse(text) else { throw TestFailure("server sent invalid JSON: \(text)") }
        guard case .object(let object) = value, let event = object["event"]?.stringValue else {
            throw TestFailure("server message is not {\"event\",\"data\"}: \(text)")
        }
        return Message(event: event, data: object["data"], raw: text)
    }

    /// The next message, which must be the event `event`; returns its data.
    @discardableResult
    public func receiveEvent(_ event: String, timeout: Double = 2) throws -> JSONValue? {
        let message = try receiveJSON(timeout: timeout)
        guard message.event == event else { throw TestFailure("expected event \"\(event)\", got \(message)") }
        return message.data
    }

    /// The next frame must be a close frame with `code` and `reason` (nil: any reason). The
    /// close is answered, and the server must then end the TCP connection. With
    /// `skippingMessages`, data messages before the close are counted and skipped.
    @discardableResult
    public func expectClose(code: UInt16, reason: String?, timeout: Double = 2, skippingMessages: Bool = false,
                     sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        var skipped = 0
        var frame = try receive(timeout: timeout)
        while skippingMessages, frame.isData {
            skipped += 1
            frame = try receive(timeout: timeout)
        }
        guard case .close(let gotCode, let gotReason) = frame else {
            Issue.record("expected close(\(code), \(reason.map { "\"\($0)\"" } ?? "any reason")), got \(frame)",
                         sourceLocation: sourceLocation)
            return skipped
        }
        #expect(gotCode == code, "close code", sourceLocation: sourceLocation)
        if let reason { #expect(gotReason == reason, "close reason", sourceLocation: sourceLocation) }
        if !closeSent { try? sendClose(code: gotCode ?? 1000) }
        #expect(connection.waitForEndOfStream(deadline: deadline(after: 2)),
                "the server did not end the TCP connection within 2 s after the close handshake",
                sourceLocation: sourceLocation)
        return skipped
    }

    /// What proves that nothing was sent: a follow-up that does get a reply.
    public enum Probe {
        /// `echo` with a fresh nonce (authenticated clients): the reply echoes it.
        case echo
        /// `{"event":"join"}` (clients not yet authenticated): the reply is "Not authenticated".
        case notAuthenticated
    }

    /// Proves that the server sent nothing (for inputs that get no reply): sends `probe` and
    /// requires its reply to be the very next frame.
    public func expectNoMessage(probe: Probe, within timeout: Double = 2,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
        switch probe {
        case .echo:
            let token = nextNonce()
            try send("echo", ["probe": .string(token)])
            let message = try receiveJSON(timeout: timeout)
            #expect(message.event == "echo" && message.data?["probe"]?.stringValue == token,
                    "expected nothing before the probe's echo \(token), got \(message)", sourceLocation: sourceLocation)
        case .notAuthenticated:
            try sendText(#"{"event":"join"}"#)
            let message = try receiveJSON(timeout: timeout)
            #expect(message.event == "error" && message.data?["message"]?.stringValue == "Not authenticated",
                    "expected nothing before the probe's \"Not authenticated\", got \(message)",
                    sourceLocation: sourceLocation)
        }
    }

    /// A string unique within this client.
    public func nextNonce() -> String {
        nonce += 1
        return "n\(nonce)-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Parses one frame from the buffer; nil when more bytes are needed. Continuation frames
    /// are collected until the final one.
    private func parseFrame() throws -> Frame? {
        while true {
            let available = buffer.count - readIndex
            guard available >= 2 else { return nil }
            let first = buffer[readIndex]
            let second = buffer[readIndex + 1]
            guard second & 0x80 == 0 else { throw TestFailure("the server sent a masked frame (RFC 6455 5.1 forbids it)") }
            guard first & 0x70 == 0 else { throw TestFailure("the server set RSV bits without an extension: 0x\(String(first, radix: 16))") }
            var length = Int(second & 0x7F)
            var headerLength = 2
            if length == 126 {
                guard available >= 4 else { return nil }
                length = Int(buffer[readIndex + 2]) << 8 | Int(buffer[readIndex + 3])
                headerLength = 4
            } else if length == 127 {
                guard available >= 10 else { return nil }
                length = (0..<8).reduce(0) { $0 << 8 | Int(buffer[readIndex + 2 + $1]) }
                headerLength = 10
            }
            guard available >= headerLength + length else { return nil }
            let payload = Array(buffer[(readIndex + headerLength)..<(readIndex + headerLength + length)])
            readIndex += headerLength + length
            if readIndex > 1 << 20 || readIndex == buffer.count {
                buffer.removeFirst(readIndex)
                readIndex = 0
            }
            let fin = first & 0x80 != 0
            let opcode = first & 0x0F
            switch opcode {
            case 0x0:
                guard let started = fragmentOpcode else { throw TestFailure("continuation frame without a first fragment") }
                fragments.append(contentsOf: payload)
                guard fin else { continue }
                fragmentOpcode = nil
                defer { fragments.removeAll() }
                return started == 0x1 ? .text(String(decoding: fragments, as: UTF8.self)) : .binary(fragments)
            case 0x1, 0x2:
                guard fragmentOpcode == nil else { throw TestFailure("new data frame inside a fragmented message") }
                if !fin {
                    fragmentOpcode = opcode
                    fragments = payload
                    continue
                }
                return opcode == 0x1 ? .text(String(decoding: payload, as: UTF8.self)) : .binary(payload)
            case 0x8:
                guard payload.count >= 2 else { return .close(code: nil, reason: "") }
                return .close(code: UInt16(payload[0]) << 8 | UInt16(payload[1]),
                              reason: String(decoding: payload[2...], as: UTF8.self))
            case 0x9: return .ping(payload)
            case 0xA: return .pong(payload)
            default: throw TestFailure("unknown opcode \(opcode) from the server")
            }
        }
    }
}
