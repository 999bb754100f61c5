/// Base64 with the standard alphabet and padding (RFC 4648 section 4).
///
/// Decoding is strict: the length must be a multiple of 4, only the alphabet is allowed
/// (no whitespace, no URL-safe characters), `=` may appear only as the last one or two
/// characters, and the unused bits before the padding must be zero, so every byte string
/// has exactly one accepted encoding. The empty string decodes to no bytes.
public enum Base64 {
    public enum DecodingError: Error, Equatable, Sendable {
        /// The length is not a multiple of 4.
        case invalidLength(Int)
        /// A byte outside the alphabet, at this offset.
        case invalidCharacter(offset: Int)
        /// `=` somewhere other than the final one or two positions.
        case invalidPadding
        /// The bits that padding discards are not zero.
        case nonZeroPaddingBits
    }

    /// Length of the encoding of `byteCount` bytes.
    @inlinable
    public static func encodedCount(_ byteCount: Int) -> Int {
        (byteCount + 2) / 3 * 4
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { encode($0) }
    }

    public static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        let count = encodedCount(bytes.count)
        return String(unsafeUninitializedCapacity: count) { out in
            encode(bytes, into: UnsafeMutableRawBufferPointer(out))
        }
    }

    /// Writes the encoding of `bytes` at the start of `out` (at least `encodedCount` bytes)
    /// and returns the number of bytes written.
    @discardableResult
    public static func encode(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int {
        let n = bytes.count
        let total = encodedCount(n)
        precondition(out.count >= total, "Base64.encode: output buffer too small")
        let table = alphabet.utf8Start
        var i = 0
        var o = 0
        while i + 3 <= n {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out[o] = table[Int(v >> 18)]
            out[o + 1] = table[Int(v >> 12 & 0x3F)]
            out[o + 2] = table[Int(v >> 6 & 0x3F)]
            out[o + 3] = table[Int(v & 0x3F)]
            i += 3
            o += 4
        }
        switch n - i {
        case 1:
            let v = UInt32(bytes[i]) << 16
            out[o] = table[Int(v >> 18)]
            out[o + 1] = table[Int(v >> 12 & 0x3F)]
            out[o + 2] = pad
            out[o + 3] = pad
        case 2:
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out[o] = table[Int(v >> 18)]
            out[o + 1] = table[Int(v >> 12 & 0x3F)]
            out[o + 2] = table[Int(v >> 6 & 0x3F)]
            out[o + 3] = pad
        default:
            break
        }
        return total
    }

    public static func decode(_ string: String) throws(DecodingError) -> [UInt8] {
        var string = string
        let result = string.withUTF8 { utf8 in
            Result { () throws(DecodingError) in try decode(UnsafeRawBufferPointer(utf8)) }
        }
        return try result.get()
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodingError) -> [UInt8] {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(DecodingError) in try decode(raw) }
        }
        return try result.get()
    }

    public static func decode(_ text: UnsafeRawBufferPointer) throws(DecodingError) -> [UInt8] {
        let n = text.count
        if n == 0 { return [] }
        guard n % 4 == 0 else { throw .invalidLength(n) }
        let padding = text[n - 1] != pad ? 0 : text[n - 2] != pad ? 1 : 2
        let count = n / 4 * 3 - padding
        var failure: DecodingError?
        let decoded = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            failure = decodeGroups(text, padding: padding, into: out)
            initialized = failure == nil ? count : 0
        }
        if let failure { throw failure }
        return decoded
    }

    // MARK: - Internals

    private static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    private static let pad = UInt8(ascii: "=")

    /// Sextet value per byte; 0xFF marks bytes outside the alphabet (including `=`).
    private static let sextets: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in UnsafeBufferPointer(start: alphabet.utf8Start, count: 64).enumerated() {
            table[Int(byte)] = UInt8(value)
        }
        return table
    }()

    private static func decodeGroups(
        _ text: UnsafeRawBufferPointer, padding: Int, into out: UnsafeMutableBufferPointer<UInt8>
    ) -> DecodingError? {
        sextets.withUnsafeBufferPointer { table in
            let n = text.count
            let fullEnd = padding == 0 ? n : n - 4
            var i = 0
            var o = 0
            while i < fullEnd {
                let a = table[Int(text[i])], b = table[Int(text[i + 1])]
                let c = table[Int(text[i + 2])], d = table[Int(text[i + 3])]
                if (a | b | c | d) & 0x80 != 0 { return firstBadByte(text, from: i) }
                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                out[o] = UInt8(truncatingIfNeeded: v >> 16)
                out[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                out[o + 2] = UInt8(truncatingIfNeeded: v)
                i += 4
                o += 3
            }
            guard padding > 0 else { return nil }
            // Last group: "xx==" or "xxx=".
            let a = table[Int(text[i])], b = table[Int(text[i + 1])]
            let c = padding == 1 ? table[Int(text[i + 2])] : 0
            if (a | b | c) & 0x80 != 0 { return firstBadByte(text, from: i) }
            if padding == 2 {
                guard b & 0x0F == 0 else { return .nonZeroPaddingBits }
                out[o] = a << 2 | b >> 4
            } else {
                guard c & 0x03 == 0 else { return .nonZeroPaddingBits }
                out[o] = a << 2 | b >> 4
                out[o + 1] = b << 4 | c >> 2
            }
            return nil
        }
    }

    /// Cold path: classifies the first byte at or after `start` that is not in the alphabet.
    @inline(never)
    private static func firstBadByte(_ text: UnsafeRawBufferPointer, from start: Int) -> DecodingError {
        for offset in start..<text.count where sextets[Int(text[offset])] == 0xFF {
            return text[offset] == pad ? .invalidPadding : .invalidCharacter(offset: offset)
        }
        preconditionFailure("Base64: no invalid byte found")
    }
}
