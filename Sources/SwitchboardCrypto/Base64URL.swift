/// Unpadded base64url (RFC 4648 section 5), as JSON Web Tokens use it: `-` and `_` stand for
/// `+` and `/`, and there is no `=`. A translation around the one strict `Base64`, so both
/// alphabets accept exactly one encoding per byte string.
extension Base64 {
    public static func encodeURL(_ bytes: [UInt8]) -> String {
        var text = Array(encode(bytes).utf8)
        while text.last == UInt8(ascii: "=") { text.removeLast() }
        for index in text.indices {
            if text[index] == UInt8(ascii: "+") { text[index] = UInt8(ascii: "-") }
            if text[index] == UInt8(ascii: "/") { text[index] = UInt8(ascii: "_") }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The bytes of unpadded base64url text; nil for `+`, `/`, `=` or any other byte outside
    /// the URL alphabet, a length that leaves one character over, or nonzero unused bits.
    public static func decodeURL(_ text: some Collection<UInt8>) -> [UInt8]? {
        var standard: [UInt8] = []
        standard.reserveCapacity(text.count + 2)
        for byte in text {
            switch byte {
            case UInt8(ascii: "-"): standard.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): standard.append(UInt8(ascii: "/"))
            case UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="): return nil
            default: standard.append(byte)
            }
        }
        switch standard.count % 4 {
        case 0: break
        case 2: standard += [UInt8(ascii: "="), UInt8(ascii: "=")]
        case 3: standard.append(UInt8(ascii: "="))
        default: return nil
        }
        return try? decode(standard)
    }
}
