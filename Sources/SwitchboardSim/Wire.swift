import SwitchboardCodec

/// How a simulated client opens its connection.
public enum UpgradeStyle: Sendable, Equatable {
    /// A valid RFC 6455 upgrade request.
    case normal
    /// Half a request, then silence (the server's upgrade timeout answers 408).
    case slow
    /// `Sec-WebSocket-Version: 8` (426).
    case badVersion
    /// A `Sec-WebSocket-Key` that is not base64 of 16 bytes (500).
    case badKey
    /// A plain GET of the path without `Upgrade` (404: no httpHandler).
    case plainHTTP

    /// The HTTP status the protocol answers with (nil: no answer expected before the timeout).
    var expectedStatus: Int? {
        switch self {
        case .normal: 101
        case .slow: nil
        case .badVersion: 426
        case .badKey: 500
        case .plainHTTP: 404
        }
    }
}

/// What a client puts on the wire: an RFC 6455 upgrade request and masked frames.
enum ClientWire {
    static func upgradeRequest(_ style: UpgradeStyle, path: String, key: String) -> [UInt8] {
        var lines = ["GET \(path) HTTP/1.1", "Host: sim.invalid"]
        switch style {
        case .plainHTTP:
            lines.append("Accept: */*")
        case .normal, .slow, .badVersion, .badKey:
            lines.append("Upgrade: websocket")
            lines.append("Connection: Upgrade")
            lines.append("Sec-WebSocket-Key: \(style == .badKey ? "not-a-key" : key)")
            lines.append("Sec-WebSocket-Version: \(style == .badVersion ? "8" : "13")")
        }
        return Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8)
    }

    /// One frame; `mask` nil writes an unmasked frame (a protocol violation from a client).
    static func frame(opcode: UInt8, payload: [UInt8], fin: Bool = true, mask: UInt32?, rsv: UInt8 = 0,
                      into out: inout [UInt8]) {
        let key = mask.map { [UInt8($0 >> 24), UInt8(($0 >> 16) & 0xFF), UInt8(($0 >> 8) & 0xFF), UInt8($0 & 0xFF)] }
        ClientFrame.write(opcode, payload, fin: fin, rsv: rsv, mask: key, into: &out)
    }

    static func closePayload(_ code: UInt16?, reason: String = "") -> [UInt8] {
        guard let code else { return [] }
        return [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8)
    }
}

/// A frame as both ends saw it, for comparing what the server wrote with what the client read.
struct FrameDigest: Equatable {
    var opcode: UInt8
    var length: Int
    var hash: UInt64

    init(opcode: UInt8, payload: [UInt8]) {
        self.opcode = opcode
        self.length = payload.count
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in payload { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        self.hash = h
    }
}

/// Reads what a server sends: one HTTP response head, then unmasked RFC 6455 frames.
/// Used twice per connection: on the bytes the server wrote, and on the bytes the client read.
struct FrameReader {
    enum Event: Equatable {
        case http(status: Int, accept: String?)
        case text([UInt8])
        case binary([UInt8])
        case ping([UInt8])
        case pong([UInt8])
        case close(code: UInt16?, reason: String)
        /// The server broke RFC 6455 (or HTTP) here; nothing more is read.
        case malformed(String)
    }

    private var buffer: [UInt8] = []
    private var head = 0
    private var inHTTP = true
    private var stopped = false
    private var bodyLeft = 0
    private var fragments: [UInt8] = []
    private var fragmentOpcode: UInt8?
    private(set) var digests: [FrameDigest] = []

    mutating func feed(_ bytes: [UInt8], into events: inout [Event]) {
        guard !stopped else { return }
        buffer.append(contentsOf: bytes)
        while !stopped {
            if bodyLeft > 0 {
                let take = min(bodyLeft, buffer.count - head)
                head += take
                bodyLeft -= take
                if bodyLeft > 0 { break }
                continue
            }
            if inHTTP {
                guard parseHTTP(into: &events) else { break }
            } else {
                guard parseFrame(into: &events) else { break }
            }
        }
        if head == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 65536 {
            buffer.removeSubrange(0..<head)
            head = 0
        }
    }

    private mutating func fail(_ why: String, into events: inout [Event]) {
        stopped = true
        events.append(.malformed(why))
    }

    private mutating func parseHTTP(into events: inout [Event]) -> Bool {
        let count = buffer.count
        var end = -1
        var i = head
        while i + 3 < count {
            if buffer[i] == 13, buffer[i + 1] == 10, buffer[i + 2] == 13, buffer[i + 3] == 10 {
                end = i
                break
            }
            i += 1
        }
        guard end >= 0 else {
            if count - head > 16384 { fail("HTTP response head too long", into: &events) }
            return false
        }
        let text = String(decoding: buffer[head..<end], as: UTF8.self)
        head = end + 4
        let lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, statusParts[0] == "HTTP/1.1", let status = Int(statusParts[1]) else {
            fail("bad status line \(lines.first ?? "")", into: &events)
            return false
        }
        var accept: String?
        var length = 0
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces()
            if name == "sec-websocket-accept" { accept = value }
            if name == "content-length" { length = Int(value) ?? 0 }
        }
        events.append(.http(status: status, accept: accept))
        if status == 101 {
            inHTTP = false
        } else {
            bodyLeft = length
            if length == 0 { stopped = true }
        }
        return true
    }

    private mutating func parseFrame(into events: inout [Event]) -> Bool {
        let available = buffer.count - head
        guard available >= 2 else { return false }
        let b0 = buffer[head]
        let b1 = buffer[head + 1]
        let fin = b0 & 0x80 != 0
        let opcode = b0 & 0x0F
        if b0 & 0x70 != 0 {
            fail("reserved bits set", into: &events)
            return false
        }
        if b1 & 0x80 != 0 {
            fail("a server frame is masked", into: &events)
            return false
        }
        var length = Int(b1 & 0x7F)
        var headerSize = 2
        if length == 126 {
            guard available >= 4 else { return false }
            length = Int(buffer[head + 2]) << 8 | Int(buffer[head + 3])
            headerSize = 4
        } else if length == 127 {
            guard available >= 10 else { return false }
            var value: UInt64 = 0
            for k in 0..<8 { value = value << 8 | UInt64(buffer[head + 2 + k]) }
            guard value < 1 << 40 else {
                fail("absurd frame length", into: &events)
                return false
            }
            length = Int(value)
            headerSize = 10
        }
        guard available >= headerSize + length else { return false }
        let payload = Array(buffer[(head + headerSize)..<(head + headerSize + length)])
        head += headerSize + length
        switch opcode {
        case 0x8, 0x9, 0xA:
            guard fin, length <= 125 else {
                fail("fragmented or long control frame", into: &events)
                return false
            }
            digests.append(FrameDigest(opcode: opcode, payload: payload))
            if opcode == 0x9 { events.append(.ping(payload)) }
            if opcode == 0xA { events.append(.pong(payload)) }
            if opcode == 0x8 {
                stopped = true
                if payload.isEmpty {
                    events.append(.close(code: nil, reason: ""))
                } else if payload.count == 1 {
                    events.append(.malformed("close frame with a 1-byte body"))
                } else {
                    let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
                    events.append(.close(code: code, reason: String(decoding: payload[2...], as: UTF8.self)))
                }
            }
        case 0x1, 0x2:
            guard fragmentOpcode == nil else {
                fail("new data frame inside a fragmented message", into: &events)
                return false
            }
            if fin {
                digests.append(FrameDigest(opcode: opcode, payload: payload))
                events.append(opcode == 0x1 ? .text(payload) : .binary(payload))
            } else {
                fragmentOpcode = opcode
                fragments = payload
            }
        case 0x0:
            guard let first = fragmentOpcode else {
                fail("continuation without a message", into: &events)
                return false
            }
            fragments.append(contentsOf: payload)
            if fin {
                fragmentOpcode = nil
                digests.append(FrameDigest(opcode: first, payload: fragments))
                events.append(first == 0x1 ? .text(fragments) : .binary(fragments))
                fragments = []
            }
        default:
            fail("reserved opcode \(opcode)", into: &events)
            return false
        }
        return true
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var slice = self[...]
        while slice.first == " " || slice.first == "\t" { slice = slice.dropFirst() }
        while slice.last == " " || slice.last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}

/// ISO-8601 UTC with milliseconds, written independently of the kernel's formatter.
func isoTime(unixMilliseconds ms: Int64) -> String {
    let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
    let rest = ms - days * 86_400_000
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    func pad(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(rest / 3_600_000, 2)):\(pad(rest / 60_000 % 60, 2)):"
        + "\(pad(rest / 1000 % 60, 2)).\(pad(rest % 1000, 3))Z"
}
