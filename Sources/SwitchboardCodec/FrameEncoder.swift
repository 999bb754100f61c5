/// RFC 6455 frame encoder for the server side: frames are never masked.
public enum FrameEncoder {
    /// The header length for a payload of `payloadCount` bytes: 2, 4 or 10.
    @inlinable
    public static func headerSize(payloadCount: Int) -> Int {
        payloadCount <= 125 ? 2 : (payloadCount <= 0xFFFF ? 4 : 10)
    }

    /// Writes the header of an unmasked frame at `destination` (room for `headerSize(payloadCount:)`
    /// bytes); returns the bytes written. Lets a caller put the header in front of a payload it already holds.
    @inlinable
    public static func writeHeader(opcode: Opcode, payloadCount: Int, fin: Bool = true, rsv1: Bool = false,
                                   to destination: UnsafeMutableRawPointer) -> Int {
        precondition(payloadCount >= 0)
        precondition(!opcode.isControl || (fin && payloadCount <= 125), "control frames are final and at most 125 bytes")
        let first = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode.rawValue
        destination.storeBytes(of: first, as: UInt8.self)
        if payloadCount <= 125 {
            destination.storeBytes(of: UInt8(payloadCount), toByteOffset: 1, as: UInt8.self)
            return 2
        } else if payloadCount <= 0xFFFF {
            destination.storeBytes(of: 126, toByteOffset: 1, as: UInt8.self)
            destination.storeBytes(of: UInt16(payloadCount).bigEndian, toByteOffset: 2, as: UInt16.self)
            return 4
        } else {
            destination.storeBytes(of: 127, toByteOffset: 1, as: UInt8.self)
            destination.storeBytes(of: UInt64(payloadCount).bigEndian, toByteOffset: 2, as: UInt64.self)
            return 10
        }
    }

    /// Appends one frame (header then payload) to `out`.
    public static func encode(opcode: Opcode, payload: UnsafeRawBufferPointer, fin: Bool = true, rsv1: Bool = false,
                              into out: inout [UInt8]) {
        var header: (UInt64, UInt64) = (0, 0)
        let size = withUnsafeMutableBytes(of: &header) { raw in
            writeHeader(opcode: opcode, payloadCount: payload.count, fin: fin, rsv1: rsv1, to: raw.baseAddress!)
        }
        out.reserveCapacity(out.count + size + payload.count)
        withUnsafeBytes(of: header) { out.append(contentsOf: $0.prefix(size)) }
        out.append(contentsOf: payload)
    }

    /// Appends one frame whose payload is `payload` to `out`.
    public static func encode(opcode: Opcode, payload: [UInt8], fin: Bool = true, rsv1: Bool = false,
                              into out: inout [UInt8]) {
        payload.withUnsafeBytes { encode(opcode: opcode, payload: $0, fin: fin, rsv1: rsv1, into: &out) }
    }

    /// A single final frame of `opcode` carrying `payload`.
    public static func frame(opcode: Opcode, payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        encode(opcode: opcode, payload: payload, into: &out)
        return out
    }

    /// A text frame carrying `text` as UTF-8.
    public static func text(_ text: String) -> [UInt8] {
        var text = text
        return text.withUTF8 { utf8 in
            var out: [UInt8] = []
            encode(opcode: .text, payload: UnsafeRawBufferPointer(utf8), into: &out)
            return out
        }
    }

    /// A binary frame carrying `bytes`.
    public static func binary(_ bytes: [UInt8]) -> [UInt8] { frame(opcode: .binary, payload: bytes) }

    /// A ping frame; `payload` must be at most 125 bytes.
    public static func ping(_ payload: [UInt8] = []) -> [UInt8] { frame(opcode: .ping, payload: payload) }

    /// A pong frame; `payload` (usually the ping's) must be at most 125 bytes.
    public static func pong(_ payload: [UInt8] = []) -> [UInt8] { frame(opcode: .pong, payload: payload) }

    /// A close frame with `code` and `reason`, the reason cut at a character boundary to fit 123 bytes.
    public static func close(code: UInt16, reason: String) -> [UInt8] {
        var payload: [UInt8] = [UInt8(code >> 8), UInt8(code & 0xFF)]
        var reasonBytes = 0
        for scalar in reason.unicodeScalars {
            let width = UTF8.width(scalar)
            guard reasonBytes + width <= 123 else { break }
            reasonBytes += width
        }
        payload.append(contentsOf: reason.utf8.prefix(reasonBytes))
        return frame(opcode: .close, payload: payload)
    }

    /// A close frame with an empty payload (no status code).
    public static func close() -> [UInt8] { frame(opcode: .close, payload: []) }
}
