/// Standard base64 (RFC 4648 section 4, with padding), as used by the WebSocket handshake.
public enum Base64 {
    @usableFromInline
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Maps an ASCII byte to its 6-bit value, or 0xFF when it is not in the alphabet.
    static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    /// Encodes `bytes` as padded base64 text.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity((input.count + 2) / 3 * 4)
        var index = 0
        alphabet.withUnsafeBufferPointer { table in
            while index + 3 <= input.count {
                let word = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
                out.append(table[Int(word >> 18 & 0x3F)])
                out.append(table[Int(word >> 12 & 0x3F)])
                out.append(table[Int(word >> 6 & 0x3F)])
                out.append(table[Int(word & 0x3F)])
                index += 3
            }
            let rest = input.count - index
            if rest > 0 {
                let second = rest == 2 ? UInt32(input[index + 1]) : 0
                let word = UInt32(input[index]) << 16 | second << 8
                out.append(table[Int(word >> 18 & 0x3F)])
                out.append(table[Int(word >> 12 & 0x3F)])
                out.append(rest == 2 ? table[Int(word >> 6 & 0x3F)] : UInt8(ascii: "="))
                out.append(UInt8(ascii: "="))
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes padded base64 text; nil when the length is not a multiple of 4, a character is
    /// outside the alphabet, or padding appears anywhere but at the end. Unused trailing bits are ignored.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(input.count / 4 * 3)
        var index = 0
        while index < input.count {
            let isLast = index + 4 == input.count
            var padding = 0
            if isLast {
                if input[index + 3] == UInt8(ascii: "=") { padding = 1 }
                if padding == 1 && input[index + 2] == UInt8(ascii: "=") { padding = 2 }
            }
            var word: UInt32 = 0
            for offset in 0..<4 {
                let value: UInt8
                if offset >= 4 - padding {
                    value = 0
                } else {
                    value = values[Int(input[index + offset])]
                    if value == 0xFF { return nil }
                }
                word = word << 6 | UInt32(value)
            }
            out.append(UInt8(truncatingIfNeeded: word >> 16))
            if padding < 2 { out.append(UInt8(truncatingIfNeeded: word >> 8)) }
            if padding < 1 { out.append(UInt8(truncatingIfNeeded: word)) }
            index += 4
        }
        return out
    }
}
