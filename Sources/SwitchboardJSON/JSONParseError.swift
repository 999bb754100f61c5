/// Why and where (byte offset from the start of the input) parsing stopped.
public struct JSONParseError: Error, Hashable, Sendable {
    public enum Reason: Hashable, Sendable {
        /// The input ended inside a value (or was empty / only whitespace).
        case unexpectedEnd
        /// A byte that cannot start or continue the value here (`'`, `N`, `,}`...).
        case unexpectedByte(UInt8)
        /// Bad number syntax: leading zero, `1.`, `.5`, `1e`, `-`.
        case invalidNumber
        /// A backslash followed by something other than `" \ / b f n r t u`.
        case invalidEscape
        /// `\u` not followed by four hex digits.
        case invalidUnicodeEscape
        /// A raw byte below 0x20 inside a string.
        case controlCharacterInString
        /// More than whitespace after the value.
        case trailingData
        /// Arrays and objects nested deeper than the parser's limit.
        case depthLimitExceeded
    }

    public var reason: Reason
    /// Offset of the offending byte (the input's length for `unexpectedEnd`).
    public var offset: Int

    public init(_ reason: Reason, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }
}

extension JSONParseError: CustomStringConvertible {
    public var description: String {
        let what: String
        switch reason {
        case .unexpectedEnd: what = "unexpected end of input"
        case .unexpectedByte(let byte):
            if byte >= 0x21 && byte < 0x7F {
                what = "unexpected character '\(Character(Unicode.Scalar(byte)))'"
            } else {
                what = "unexpected byte 0x\(String(byte, radix: 16))"
            }
        case .invalidNumber: what = "invalid number"
        case .invalidEscape: what = "invalid escape"
        case .invalidUnicodeEscape: what = "invalid \\u escape"
        case .controlCharacterInString: what = "control character in string"
        case .trailingData: what = "unexpected data after the value"
        case .depthLimitExceeded: what = "nesting too deep"
        }
        return "JSON: \(what) at byte \(offset)"
    }
}
