#if canImport(Glibc)
import Glibc
#endif

extension JSONValue {
    /// Compact JSON text, byte for byte what `JSON.stringify` writes for the equivalent JS value
    /// (see `serialize(into:)`).
    public func serialized() -> String {
        ByteWriter.with { writer in
            write(to: &writer)
            return String(decoding: writer.bytes, as: UTF8.self)
        }
    }

    /// Appends the compact JSON text, as `JSON.stringify(value)` writes it:
    /// - strings: see `serializeString(_:into:)`;
    /// - numbers: their literal text (a parsed `1.50` stays `1.50`; `JSONNumber.javaScriptText`
    ///   gives what JS would write after its own parse);
    /// - objects: each key once, in JS property order: keys that are array indices (`"0"` to
    ///   `"4294967294"`, no leading zeros) first in ascending numeric order, then the others in
    ///   order of first appearance; a duplicate key takes the value of its last member.
    public func serialize(into out: inout [UInt8]) {
        ByteWriter.with { writer in
            write(to: &writer)
            out.append(contentsOf: writer.bytes)
        }
    }

    /// Appends `string` as a JSON string literal, as `JSON.stringify` writes it: `"` and `\`
    /// escaped; U+0008, U+0009, U+000A, U+000C, U+000D as `\b \t \n \f \r`; other code points below
    /// U+0020 as `\u00xx` (lowercase hex); everything else (`/`, DEL, non-ASCII, U+2028) as is.
    public static func serializeString(_ string: String, into out: inout [UInt8]) {
        ByteWriter.with(stackBytes: 256) { writer in
            writeString(string, to: &writer)
            out.append(contentsOf: writer.bytes)
        }
    }

    func write(to writer: inout ByteWriter) {
        switch self {
        case .null: writer.write("null")
        case .bool(let value): writer.write(value ? "true" : "false")
        case .number(let number): number.write(to: &writer)
        case .string(let string): JSONValue.writeString(string, to: &writer)
        case .unpairedString(let string): string.write(to: &writer)
        case .array(let elements):
            writer.write(UInt8(ascii: "["))
            for index in elements.indices {
                if index > 0 { writer.write(UInt8(ascii: ",")) }
                elements[index].write(to: &writer)
            }
            writer.write(UInt8(ascii: "]"))
        case .object(let object):
            JSONValue.writeObject(object, to: &writer)
        }
    }

    @inline(__always)
    static func writeString(_ string: String, to writer: inout ByteWriter) {
        let done: Void? = string.utf8.withContiguousStorageIfAvailable {
            writeEscaped(UnsafeRawBufferPointer($0), to: &writer)
        }
        if done == nil {
            var copy = string
            copy.withUTF8 { writeEscaped(UnsafeRawBufferPointer($0), to: &writer) }
        }
    }

    @inline(__always)
    static func writeUTF8(_ text: String, to writer: inout ByteWriter) {
        let done: Void? = text.utf8.withContiguousStorageIfAvailable {
            writer.write(UnsafeRawPointer($0.baseAddress!), count: $0.count)
        }
        if done == nil {
            var copy = text
            copy.withUTF8 { writer.write(UnsafeRawPointer($0.baseAddress!), count: $0.count) }
        }
    }

    static func writeEscaped(_ bytes: UnsafeRawBufferPointer, to writer: inout ByteWriter) {
        writer.reserve(bytes.count + 2)
        writer.writeReserved(UInt8(ascii: "\""))
        writeEscapedBody(bytes, to: &writer)
        writer.write(UInt8(ascii: "\""))
    }

    /// The text between the quotes of `writeEscaped`.
    @inline(__always)
    static func writeEscapedBody(_ bytes: UnsafeRawBufferPointer, to writer: inout ByteWriter) {
        let count = bytes.count
        guard let base = bytes.baseAddress else { return }
        var runStart = 0
        while true {
            let stop = JSONParser.firstSpecialByte(base, from: runStart, count: count)
            if stop > runStart { writer.write(base + runStart, count: stop - runStart) }
            if stop == count { break }
            let byte = base.load(fromByteOffset: stop, as: UInt8.self)
            writer.reserve(6)
            writer.writeReserved(UInt8(ascii: "\\"))
            switch byte {
            case 0x22, 0x5C: writer.writeReserved(byte)
            case 0x08: writer.writeReserved(UInt8(ascii: "b"))
            case 0x09: writer.writeReserved(UInt8(ascii: "t"))
            case 0x0A: writer.writeReserved(UInt8(ascii: "n"))
            case 0x0C: writer.writeReserved(UInt8(ascii: "f"))
            case 0x0D: writer.writeReserved(UInt8(ascii: "r"))
            default:
                let hex: StaticString = "0123456789abcdef"
                writer.writeReserved(UInt8(ascii: "u"))
                writer.writeReserved(UInt8(ascii: "0"))
                writer.writeReserved(UInt8(ascii: "0"))
                writer.writeReserved(hex.utf8Start[Int(byte >> 4)])
                writer.writeReserved(hex.utf8Start[Int(byte & 0xF)])
            }
            runStart = stop + 1
        }
    }

    /// Writes members in insertion order while checking, from the written key bytes, that this is
    /// also JS order (no array-index key, no duplicate); if not, rewinds and writes them in JS order.
    static func writeObject(_ object: JSONObject, to writer: inout ByteWriter) {
        if case .text(let text) = object.storage {
            return text.withBytes { writer.write($0.baseAddress!, count: $0.count) }
        }
        let members = object.members
        let mark = writer.count
        writer.write(UInt8(ascii: "{"))
        var seen: UInt64 = 0  // a one-word Bloom filter over the written keys
        var inOrder = true
        for index in members.indices {
            if index > 0 { writer.write(UInt8(ascii: ",")) }
            let keyStart = writer.count
            writeKey(members[index], to: &writer)
            // The key's escaped text (injective, so equal texts mean equal keys), quotes excluded.
            let keyBytes = UnsafeBufferPointer(start: writer.base + keyStart + 1, count: writer.count - keyStart - 2)
            let first = keyBytes.first ?? 0
            if first &- UInt8(ascii: "0") < 10 && arrayIndex(keyBytes) != nil {
                inOrder = false
                break
            }
            let hash = UInt64(truncatingIfNeeded: keyBytes.count) &* 0x9E37_79B9 ^ UInt64(first) &* 0x85EB_CA6B
                ^ UInt64(keyBytes.last ?? 0) &* 0xC2B2_AE35
            let bit: UInt64 = 1 << (hash >> 7 & 63)
            if seen & bit != 0 {
                let member = members[index]
                if members[..<index].contains(where: { $0.hasSameKey(as: member) }) {
                    inOrder = false
                    break
                }
            }
            seen |= bit
            writer.write(UInt8(ascii: ":"))
            members[index].value.write(to: &writer)
        }
        if inOrder {
            writer.write(UInt8(ascii: "}"))
            return
        }
        writer.count = mark
        writer.write(UInt8(ascii: "{"))
        var first = true
        for (keyIndex, valueIndex) in javaScriptOrder(members) {
            if !first { writer.write(UInt8(ascii: ",")) }
            first = false
            writeKey(members[keyIndex], to: &writer)
            writer.write(UInt8(ascii: ":"))
            members[valueIndex].value.write(to: &writer)
        }
        writer.write(UInt8(ascii: "}"))
    }

    /// The member's key as a string literal (its escapes kept if it is an unpaired one).
    @inline(__always)
    static func writeKey(_ member: JSONObject.Member, to writer: inout ByteWriter) {
        if let unpaired = member.unpairedKey { return unpaired.write(to: &writer) }
        writeString(member.key, to: &writer)
    }

    /// (key member, value member) pairs in JS property order: one per distinct key, at its first
    /// position, holding its last value; array-index keys first, ascending.
    static func javaScriptOrder(_ members: [JSONObject.Member]) -> [(key: Int, value: Int)] {
        // Keyed by bytes: JS keys differ whenever their code units do, while Swift's String
        // equality would merge canonically equivalent spellings (é vs e + U+0301).
        var slotOfKey: [[UInt8]: Int] = [:]
        var slots: [(key: Int, value: Int, arrayIndex: UInt32?)] = []
        for (index, member) in members.enumerated() {
            let bytes = member.keyIdentity
            if let slot = slotOfKey[bytes] {
                slots[slot].value = index
            } else {
                slotOfKey[bytes] = slots.count
                var key = member.key
                slots.append((index, index, key.withUTF8 { arrayIndex($0) }))
            }
        }
        let indexed = slots.filter { $0.arrayIndex != nil }.sorted { $0.arrayIndex! < $1.arrayIndex! }
        let named = slots.filter { $0.arrayIndex == nil }
        return (indexed + named).map { ($0.key, $0.value) }
    }

    /// The value of `key` (UTF-8) if it is a JS array index: canonical decimal, 0 ... 2^32 - 2.
    static func arrayIndex(_ key: UnsafeBufferPointer<UInt8>) -> UInt32? {
        guard key.count >= 1 && key.count <= 10 else { return nil }
        if key.count > 1 && key[0] == UInt8(ascii: "0") { return nil }
        var value: UInt64 = 0
        for byte in key {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + UInt64(digit)
        }
        return value <= 4_294_967_294 ? UInt32(value) : nil
    }
}

/// Key equality as JavaScript sees it: same UTF-8 bytes (no Unicode canonical equivalence).
/// The byte counts first (constant time for native strings): most keys a lookup passes differ
/// in length, and walking two UTF-8 views costs about a hundred instructions even when the
/// first bytes differ (a bus envelope's eight lookups took 9,300 instructions).
/// Equal counts are compared as two buffers (the generic walk of two views took about 380).
@inline(__always)
func sameKey(_ a: String, _ b: String) -> Bool {
    let count = a.utf8.count
    guard count == b.utf8.count else { return false }
    let equal = a.utf8.withContiguousStorageIfAvailable { x in
        b.utf8.withContiguousStorageIfAvailable { y in count == 0 || memcmp(x.baseAddress!, y.baseAddress!, count) == 0 }
    }
    return (equal ?? nil) ?? a.utf8.elementsEqual(b.utf8)
}
