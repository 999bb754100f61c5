/// A JSON string with an unpaired surrogate (`"\ud800"`, `"a\udc00b"`): valid JSON and a valid
/// JS string, but no Swift `String`, which holds only Unicode scalars. The parser gives such a
/// string as `JSONValue.unpairedString` (or, for a key, `JSONObject.Member.unpairedKey`) so that a
/// message relayed or echoed keeps its escape, as `JSON.stringify` keeps it, instead of U+FFFD.
///
/// Stored as WTF-8: UTF-8 extended so that an unpaired surrogate is written as its three-byte form
/// (U+D800 as ED A0 80), while a surrogate pair is always one four-byte scalar. Every sequence of
/// UTF-16 code units has exactly one WTF-8 form, so comparing the bytes compares the JS strings
/// (equality and hashing are JS string equality).
public struct JSONUnpairedString: Hashable, Sendable {
    /// The WTF-8 bytes; at least one unpaired surrogate (else a `String` would hold the text).
    public let wtf8: [UInt8]

    /// Bytes the parser built: WTF-8 with at least one unpaired surrogate.
    init(wtf8: [UInt8]) { self.wtf8 = wtf8 }

    /// The string of these UTF-16 code units; nil when they are well-formed (a `String` holds them).
    public init?(utf16 units: some Sequence<UInt16>) {
        var bytes: [UInt8] = []
        var unpaired = false
        var iterator = units.makeIterator()
        var pending = iterator.next()
        while let unit = pending {
            pending = iterator.next()
            var scalar = UInt32(unit)
            if unit & 0xFC00 == 0xD800, let low = pending, low & 0xFC00 == 0xDC00 {
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + UInt32(low - 0xDC00)
                pending = iterator.next()
            } else if unit & 0xF800 == 0xD800 {
                unpaired = true
            }
            JSONUnpairedString.appendWTF8(scalar, to: &bytes)
        }
        guard unpaired else { return nil }
        wtf8 = bytes
    }

    /// The UTF-16 code units, as a JS string holds them.
    public var utf16: [UInt16] {
        var units: [UInt16] = []
        units.reserveCapacity(wtf8.count)
        forEachScalar { scalar, _ in
            if scalar >= 0x10000 {
                units.append(UInt16(truncatingIfNeeded: 0xD800 + ((scalar - 0x10000) >> 10)))
                units.append(UInt16(truncatingIfNeeded: 0xDC00 + (scalar & 0x3FF)))
            } else {
                units.append(UInt16(truncatingIfNeeded: scalar))
            }
        }
        return units
    }

    /// The text with U+FFFD for each unpaired surrogate: what a `String` can hold of it (and what
    /// `JSONValue.stringValue` gives).
    public var lossy: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(wtf8.count)
        forEachScalar { scalar, _ in
            JSONUnpairedString.appendWTF8(scalar & 0xFFFF_F800 == 0xD800 ? 0xFFFD : scalar, to: &bytes)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Calls `body` with each code point (unpaired surrogates included) and its byte offset.
    func forEachScalar(_ body: (UInt32, Int) -> Void) {
        var index = 0
        while index < wtf8.count {
            let lead = wtf8[index]
            let length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            var scalar = length == 1 ? UInt32(lead) : UInt32(lead) & (0x7F >> length)
            for offset in 1..<length { scalar = scalar << 6 | UInt32(wtf8[index + offset] & 0x3F) }
            body(scalar, index)
            index += length
        }
    }

    /// Appends the (generalized, for a surrogate) UTF-8 form of `scalar`.
    static func appendWTF8(_ scalar: UInt32, to bytes: inout [UInt8]) {
        switch scalar {
        case ..<0x80:
            bytes.append(UInt8(scalar))
        case ..<0x800:
            bytes.append(UInt8(0xC0 | scalar >> 6))
            bytes.append(UInt8(0x80 | scalar & 0x3F))
        case ..<0x10000:
            bytes.append(UInt8(0xE0 | scalar >> 12))
            bytes.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | scalar & 0x3F))
        default:
            bytes.append(UInt8(0xF0 | scalar >> 18))
            bytes.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            bytes.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// Writes the string literal as `JSON.stringify` writes it: as `writeEscaped` does, and each
    /// unpaired surrogate as a `\udxxx` escape (lowercase hex).
    func write(to writer: inout ByteWriter) {
        var runStart = 0
        writer.write(UInt8(ascii: "\""))
        wtf8.withUnsafeBytes { bytes in
            forEachScalar { scalar, offset in
                guard scalar & 0xFFFF_F800 == 0xD800 else { return }
                JSONValue.writeEscapedBody(UnsafeRawBufferPointer(rebasing: bytes[runStart..<offset]), to: &writer)
                let hex: StaticString = "0123456789abcdef"
                writer.write(UInt8(ascii: "\\"))
                writer.write(UInt8(ascii: "u"))
                for shift in [12, 8, 4, 0] { writer.write(hex.utf8Start[Int(scalar >> UInt32(shift) & 0xF)]) }
                runStart = offset + 3
            }
            JSONValue.writeEscapedBody(UnsafeRawBufferPointer(rebasing: bytes[runStart...]), to: &writer)
        }
        writer.write(UInt8(ascii: "\""))
    }
}

extension JSONUnpairedString: CustomStringConvertible {
    /// The JSON string literal, escapes included.
    public var description: String {
        ByteWriter.with { writer in
            write(to: &writer)
            return String(decoding: writer.bytes, as: UTF8.self)
        }
    }
}
