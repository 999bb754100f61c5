/// Frames as a client writes them (RFC 6455 section 5.2): masked with a 4-byte key. The server
/// never writes one; the simulation's clients and the test clients do, and share this writer.
///
/// It also writes what a client must not: `mask` nil gives an unmasked frame, `rsv` sets
/// reserved bits, `length` a longer length form than needed, for tests of the server's refusals.
public enum ClientFrame {
    public enum LengthForm: Sendable {
        /// The shortest form (7 bits, 16 bits after 126, 64 bits after 127).
        case minimal, sixteen, sixtyFour
    }

    /// Appends one frame of `opcode` with `payload` to `out`.
    public static func write(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, mask: [UInt8]?,
                             length: LengthForm = .minimal, into out: inout [UInt8]) {
        precondition(mask.map { $0.count == 4 } ?? true, "a masking key is 4 bytes")
        out.append((fin ? 0x80 : 0) | (rsv << 4) | opcode)
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        let count = payload.count
        let form = length != .minimal ? length : count <= 125 ? .minimal : count <= 0xFFFF ? .sixteen : .sixtyFour
        switch form {
        case .minimal:
            out.append(maskBit | UInt8(count))
        case .sixteen:
            out.append(maskBit | 126)
            out.append(UInt8(count >> 8 & 0xFF))
            out.append(UInt8(count & 0xFF))
        case .sixtyFour:
            out.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(UInt64(count) >> UInt64(shift) & 0xFF)) }
        }
        guard let mask else {
            out.append(contentsOf: payload)
            return
        }
        out.append(contentsOf: mask)
        for (index, byte) in payload.enumerated() { out.append(byte ^ mask[index & 3]) }
    }
}
