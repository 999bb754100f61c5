/// Recognizes one pub/sub push (`message` or `pmessage`) in raw RESP bytes, in place.
///
/// A server's subscription mostly carries its own publishes back (Redis returns them to every
/// subscriber, the sender included). Checking those against what was sent, straight in the
/// received bytes, spares hiredis building and freeing four reply objects per message only for
/// the bus to drop it (`RedisBusCore.skipOwnEchoes`).
enum RESPPush {
    /// The push that starts at `start`: its channel (the actual one, also for `pmessage`), its
    /// payload, and the offset just past it. Nil for anything else (a subscription confirmation,
    /// a PONG, an error) or a push not yet wholly received: the caller hands those to hiredis.
    static func parse(_ bytes: UnsafeRawBufferPointer, at start: Int)
        -> (channel: Range<Int>, payload: Range<Int>, end: Int)? {
        guard start < bytes.count, bytes[start] == UInt8(ascii: "*"),
              let (count, afterHeader) = number(bytes, from: start + 1), count == 3 || count == 4 else { return nil }
        var offset = afterHeader
        // The kind, then (pmessage) the pattern, the channel and the payload; no allocation.
        var kind = 0..<0, channel = 0..<0, payload = 0..<0
        for index in 0..<count {
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "$"),
                  let (length, body) = number(bytes, from: offset + 1),
                  body + length + 2 <= bytes.count,
                  bytes[body + length] == UInt8(ascii: "\r"), bytes[body + length + 1] == UInt8(ascii: "\n")
            else { return nil }
            if index == 0 { kind = body..<body + length }
            channel = payload
            payload = body..<body + length
            offset = body + length + 2
        }
        let name = UnsafeRawBufferPointer(rebasing: bytes[kind])
        guard count == 3 ? equals(name, "message") : equals(name, "pmessage") else { return nil }
        return (channel, payload, offset)
    }

    /// A decimal length terminated by CRLF at `from`, and the offset after the CRLF.
    private static func number(_ bytes: UnsafeRawBufferPointer, from: Int) -> (Int, Int)? {
        var value = 0, offset = from
        while offset < bytes.count, bytes[offset] >= UInt8(ascii: "0"), bytes[offset] <= UInt8(ascii: "9") {
            value = value * 10 + Int(bytes[offset] - UInt8(ascii: "0"))
            if value > 1 << 32 { return nil }   // Redis caps bulk strings at 512 MB
            offset += 1
        }
        guard offset > from, offset + 1 < bytes.count,
              bytes[offset] == UInt8(ascii: "\r"), bytes[offset + 1] == UInt8(ascii: "\n") else { return nil }
        return (value, offset + 2)
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        bytes.count == literal.utf8CodeUnitCount
            && bytes.elementsEqual(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }
}
