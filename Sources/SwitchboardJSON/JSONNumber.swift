/// A JSON number, kept as its validated literal text so that re-serialization is exact.
///
/// Equality and hashing compare the literal (`1.0`, `1` and `1e0` are different values).
/// A canonical integer literal (`0`, `-12`, no leading zeros, not `-0`) that fits an `Int`
/// is stored as that integer: no text on the heap, and it is written straight from the value.
public struct JSONNumber: Hashable, Sendable {
    /// The literal text, or "" when the literal is `integer`'s canonical digits. Each literal
    /// has exactly one representation, so comparing the two fields compares literals.
    private let text: String
    private let integer: Int

    /// The literal text: always valid RFC 8259 number syntax.
    public var literal: String { text.isEmpty ? String(integer) : text }

    init(uncheckedLiteral literal: String) {
        var text = literal
        let integer = text.withUTF8 { JSONNumber.canonicalInteger(UnsafeRawBufferPointer($0)) }
        self.text = integer == nil ? literal : ""
        self.integer = integer ?? 0
    }

    /// A literal the parser has validated, straight from the input bytes.
    init(uncheckedLiteral bytes: UnsafeRawBufferPointer) {
        if let integer = JSONNumber.canonicalInteger(bytes) {
            self.text = ""
            self.integer = integer
        } else {
            self.text = String(decoding: bytes, as: UTF8.self)
            self.integer = 0
        }
    }

    /// `nil` unless `literal` is exactly one JSON number (no whitespace, sign `+`, leading zeros...).
    public init?(literal: String) {
        var text = literal
        let valid = text.withUTF8 { bytes -> Bool in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return false }
            let end = try? JSONParser.scanNumber(UnsafeRawPointer(base), count: bytes.count, from: 0)
            return end == bytes.count
        }
        guard valid else { return nil }
        self.init(uncheckedLiteral: text)
    }

    /// The value of a valid literal that is a canonical integer within `Int`, else nil.
    static func canonicalInteger(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var index = 0
        let negative = bytes.count > 0 && bytes[0] == UInt8(ascii: "-")
        if negative { index = 1 }
        let digits = bytes.count - index
        guard digits > 0, digits <= 19 else { return nil }
        if bytes[index] == UInt8(ascii: "0") {
            return digits == 1 && !negative ? 0 : nil  // "0" only; "-0" keeps its text
        }
        var magnitude: UInt64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }  // a fraction or an exponent
            magnitude = magnitude &* 10 &+ UInt64(digit)  // 19 digits cannot overflow UInt64
            index += 1
        }
        if negative {
            return magnitude <= UInt64(Int.max) + 1 ? Int(truncatingIfNeeded: 0 &- magnitude) : nil
        }
        return magnitude <= UInt64(Int.max) ? Int(magnitude) : nil
    }

    /// Appends the literal's bytes.
    func write(to writer: inout ByteWriter) {
        guard text.isEmpty else { return JSONValue.writeUTF8(text, to: &writer) }
        var magnitude = integer.magnitude
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes, filled from the end
        withUnsafeMutableBytes(of: &scratch) { scratch in
            var at = scratch.count
            while magnitude >= 100 {  // two digits per 64-bit division
                let pair = UInt8(truncatingIfNeeded: magnitude % 100)
                magnitude /= 100
                at -= 2
                scratch[at] = UInt8(ascii: "0") &+ pair / 10
                scratch[at + 1] = UInt8(ascii: "0") &+ pair % 10
            }
            if magnitude >= 10 {
                let pair = UInt8(truncatingIfNeeded: magnitude)
                at -= 2
                scratch[at] = UInt8(ascii: "0") &+ pair / 10
                scratch[at + 1] = UInt8(ascii: "0") &+ pair % 10
            } else {
                at -= 1
                scratch[at] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude)
            }
            if integer < 0 { writer.write(UInt8(ascii: "-")) }
            writer.write(scratch.baseAddress! + at, count: scratch.count - at)
        }
    }

    /// The decimal digits of `value` (exact, also beyond 2^53).
    public init(_ value: Int) {
        text = ""
        integer = value
    }

    /// The decimal digits of `value` (exact, also beyond 2^53).
    public init(_ value: some BinaryInteger) {
        let int = Int(exactly: value)
        text = int == nil ? String(value) : ""
        integer = int ?? 0
    }

    /// The text `JSON.stringify` writes for `value`; `nil` for NaN and infinities, which JSON
    /// cannot hold (`JSONValue(Double)` turns them into `null`, as `JSON.stringify` does).
    ///
    /// Covers every finite double: the shortest round-trip digits (Swift and ECMAScript both pick
    /// the shortest digit string that reads back exactly, nearest to the value) laid out by
    /// ECMAScript Number::toString: `-0` -> `0`, integers below 1e21 without `.0`
    /// (`100000000000000000000`), `1e+21`, `1.5e-7`, `0.000001`, `5e-324`.
    public init?(_ value: Double) {
        guard let text = JSONNumber.javaScriptText(value) else { return nil }
        self.init(uncheckedLiteral: text)
    }

    /// The value as a finite `Double` (the nearest one, as `JSON.parse` reads it);
    /// `nil` when the literal is beyond the `Double` range, where JS would read an infinity.
    public var double: Double? {
        guard let value = Double(literal), value.isFinite else { return nil }
        return value
    }

    /// The value as an `Int` if it is an integer in range: exact for integer literals
    /// (`-0` gives 0), through `Double` for literals with a fraction or exponent (`1.0`, `1e2`).
    public var int: Int? {
        if text.isEmpty { return integer }
        if let value = Int(literal) { return value }
        var isInteger = true
        for byte in literal.utf8 where byte == UInt8(ascii: ".") || byte | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            break
        }
        if isInteger { return nil }  // an integer literal beyond Int
        guard let value = double else { return nil }
        return JSONNumber.exactInt(value)
    }

    /// `Int(exactly:)` without libm (which this module does not link).
    static func exactInt(_ value: Double) -> Int? {
        guard value >= -0x1p63 && value < 0x1p63 else { return nil }  // NaN fails too
        let int = Int(value)
        return Double(int) == value ? int : nil
    }

    /// What `JSON.stringify(JSON.parse(literal))` writes: `1.50` -> `1.5`, `-0` -> `0`,
    /// `1E5` -> `100000`, `1e400` -> `null`.
    public var javaScriptText: String {
        guard let value = Double(literal) else { return "null" }
        return JSONNumber.javaScriptText(value) ?? "null"
    }

    /// ECMAScript Number::toString for a finite `value`, built from Swift's shortest digits.
    static func javaScriptText(_ value: Double) -> String? {
        guard value.isFinite else { return nil }
        if value == 0 { return "0" }
        if let int = exactInt(value), int.magnitude < 1 << 53 { return String(int) }

        // Decompose Swift's description ("1.5", "100.0", "1e-07", "1.2345e+20") into digits
        // and the decimal point position n (value = 0.d1d2... x 10^n).
        var digits: [UInt8] = []
        digits.reserveCapacity(20)
        var pointPosition = 0
        var sawPoint = false
        var exponent = 0
        var exponentSign = 1
        var inExponent = false
        for byte in value.magnitude.description.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if inExponent {
                    exponent = exponent * 10 + Int(byte - UInt8(ascii: "0"))
                } else {
                    digits.append(byte)
                    if !sawPoint { pointPosition += 1 }
                }
            case UInt8(ascii: "."): sawPoint = true
            case UInt8(ascii: "e"), UInt8(ascii: "E"): inExponent = true
            case UInt8(ascii: "-"): exponentSign = -1
            default: break  // "+"
            }
        }
        pointPosition += exponentSign * exponent
        var leading = 0
        while leading < digits.count, digits[leading] == UInt8(ascii: "0") { leading += 1 }
        digits.removeFirst(leading)
        pointPosition -= leading
        while let last = digits.last, last == UInt8(ascii: "0") { digits.removeLast() }

        let k = digits.count
        let n = pointPosition
        var out: [UInt8] = []
        out.reserveCapacity(k + 8)
        if value < 0 { out.append(UInt8(ascii: "-")) }
        if k <= n && n <= 21 {
            out += digits
            out += repeatElement(UInt8(ascii: "0"), count: n - k)
        } else if 0 < n && n <= 21 {
            out += digits[0..<n]
            out.append(UInt8(ascii: "."))
            out += digits[n...]
        } else if -6 < n && n <= 0 {
            out += [UInt8(ascii: "0"), UInt8(ascii: ".")]
            out += repeatElement(UInt8(ascii: "0"), count: -n)
            out += digits
        } else {
            out.append(digits[0])
            if k > 1 {
                out.append(UInt8(ascii: "."))
                out += digits[1...]
            }
            out.append(UInt8(ascii: "e"))
            out.append(n - 1 < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            out += String((n - 1).magnitude).utf8
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension JSONNumber: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) { self.init(value) }
}

extension JSONNumber: CustomStringConvertible {
    public var description: String { literal }
}
