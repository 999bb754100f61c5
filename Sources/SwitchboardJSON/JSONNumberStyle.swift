/// How a parser keeps the numbers it reads.
///
/// A JS gateway holds every number as a double: what it relays is `JSON.stringify(JSON.parse(x))`,
/// not `x`. In a fleet that mixes such instances with Switchboard, `.javascript` makes Switchboard
/// write the same bytes, whichever instance a message passes through.
public enum JSONNumberStyle: String, Hashable, Sendable, CaseIterable {
    /// Each number keeps its literal text (`1.0`, `1e2`, `9007199254740993` are written as read).
    case exact
    /// Each number becomes what `JSON.stringify` writes for the double `JSON.parse` reads:
    /// `1.0` -> `1`, `1E2` -> `100`, `-0` -> `0`, `1e21` -> `1e+21`, `9007199254740993` ->
    /// `9007199254740992`, and `1e400` (an infinity in JS) -> `null`.
    case javascript
}

extension JSONNumber {
    /// The value JS holds after reading the valid literal `bytes`: the number as
    /// `JSONNumber.javaScriptText` writes it, or `.null` beyond the double range.
    static func javaScriptValue(_ bytes: UnsafeRawBufferPointer) -> JSONValue {
        if let integer = canonicalInteger(bytes), integer.magnitude < 1 << 53 {
            return .number(JSONNumber(integer))  // exact as a double, written the same
        }
        guard let value = Double(String(decoding: bytes, as: UTF8.self)),
              let text = javaScriptText(value) else { return .null }
        return .number(JSONNumber(uncheckedLiteral: text))
    }

    /// Whether the valid literal `bytes` is already what `javaScriptValue` writes for it.
    static func isJavaScriptText(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if let integer = canonicalInteger(bytes), integer.magnitude < 1 << 53 { return true }
        guard case .number(let number) = javaScriptValue(bytes) else { return false }
        return number.literal.utf8.elementsEqual(bytes)
    }
}
