import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The validated text of one JSON object that is already canonical: byte for byte what
/// `JSONValue.serialize` writes for the value parsed from it. It is written out as it is and
/// parsed only when a member is first read (then once; the members are kept).
///
/// A message's `data` passed through a handler untouched (an echo, a broadcast, a room
/// message) is thus never built as a tree nor encoded again: its bytes are copied.
final class JSONText: Sendable {
    /// The object's text, `{` to `}`, validated and canonical.
    let bytes: ArraySlice<UInt8>
    private let parsed = Mutex<[JSONObject.Member]?>(nil)

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    var members: [JSONObject.Member] {
        parsed.withLock { parsed in
            if let parsed { return parsed }
            let members = bytes.withUnsafeBytes { bytes in
                // Validated (within the depth limit) when it was read: this parse cannot fail.
                var parser = JSONParser(bytes.baseAddress!, count: bytes.count, maxDepth: .max)
                return (try? parser.parseObject(depth: 0))?.members ?? []
            }
            parsed = members
            return members
        }
    }
}

/// The keys of the objects being scanned (enclosing ones first), as byte ranges of the text,
/// in caller-provided memory. Full means not canonical: no more keys can be compared.
struct KeySpans: ~Copyable {
    let base: UnsafeMutablePointer<Range<Int>>
    let capacity: Int
    var count = 0

    /// Runs `body` with room for `capacity` keys on the stack.
    static func with<R>(capacity: Int = 64, _ body: (inout KeySpans) throws(JSONParseError) -> R) throws(JSONParseError) -> R {
        let result = withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: capacity) { buffer in
            var spans = KeySpans(base: buffer.baseAddress!, capacity: capacity)
            return Result { () throws(JSONParseError) -> R in try body(&spans) }
        }
        return try result.get()
    }
}

extension JSONParser {
    /// Whether the text of the value at `pos` is canonical (see `skipCanonical(depth:keys:)`),
    /// after validating it.
    mutating func skipCanonical(depth: Int) throws(JSONParseError) -> Bool {
        try KeySpans.with { (keys: inout KeySpans) throws(JSONParseError) -> Bool in try skipCanonical(depth: depth, keys: &keys) }
    }

    /// Validates the value at `pos` exactly as `skipValue` does (same grammar, same depth limit)
    /// and tells whether its text is canonical: no whitespace, strings escaped as `writeEscaped`
    /// escapes them, valid UTF-8, no object with a duplicate key or an array-index key (those
    /// `writeObject` reorders). Numbers are written as their literal, so every number is canonical.
    mutating func skipCanonical(depth: Int, keys: inout KeySpans) throws(JSONParseError) -> Bool {
        guard pos < count else { throw JSONParseError(.unexpectedEnd, at: count) }
        switch byte(at: pos) {
        case UInt8(ascii: "\""):
            return try skipCanonicalString()
        case UInt8(ascii: "{"):
            try enterContainer(depth: depth)
            var canonical = skipNoWhitespace()
            if pos < count && byte(at: pos) == UInt8(ascii: "}") {
                pos += 1
                return canonical
            }
            let firstKey = keys.count
            defer { keys.count = firstKey }
            while true {
                canonical = skipNoWhitespace() && canonical
                guard pos < count, byte(at: pos) == UInt8(ascii: "\"") else { throw unexpected(at: pos) }
                let keyStart = pos + 1
                canonical = try skipCanonicalString() && canonical
                if canonical { canonical = noteKey(keyStart..<pos - 1, firstKey: firstKey, in: &keys) }
                canonical = skipNoWhitespace() && canonical
                guard pos < count, byte(at: pos) == UInt8(ascii: ":") else { throw unexpected(at: pos) }
                pos += 1
                canonical = skipNoWhitespace() && canonical
                canonical = try skipCanonicalElement(depth: depth + 1, keys: &keys) && canonical
                canonical = skipNoWhitespace() && canonical
                if try endOfMember(closer: UInt8(ascii: "}")) { return canonical }
            }
        case UInt8(ascii: "["):
            try enterContainer(depth: depth)
            var canonical = skipNoWhitespace()
            if pos < count && byte(at: pos) == UInt8(ascii: "]") {
                pos += 1
                return canonical
            }
            while true {
                canonical = skipNoWhitespace() && canonical
                canonical = try skipCanonicalElement(depth: depth + 1, keys: &keys) && canonical
                canonical = skipNoWhitespace() && canonical
                if try endOfMember(closer: UInt8(ascii: "]")) { return canonical }
            }
        default:
            try skipValue(depth: depth)  // a literal or a number: written as it is read
            return true
        }
    }

    /// A member or element: strings and plain integers (the common values) without a call.
    @inline(__always)
    mutating func skipCanonicalElement(depth: Int, keys: inout KeySpans) throws(JSONParseError) -> Bool {
        guard pos < count else { throw JSONParseError(.unexpectedEnd, at: count) }
        let first = byte(at: pos)
        if first == UInt8(ascii: "\"") { return try skipCanonicalString() }
        if first &- UInt8(ascii: "1") < 9 {
            // `[1-9][0-9]*` not followed by a fraction or an exponent; anything else takes the long way.
            var end = pos + 1
            while end < count, byte(at: end) &- UInt8(ascii: "0") < 10 { end += 1 }
            if end == count || (byte(at: end) != UInt8(ascii: ".") && byte(at: end) | 0x20 != UInt8(ascii: "e")) {
                pos = end
                return true
            }
        }
        return try skipCanonical(depth: depth, keys: &keys)
    }

    /// Skips whitespace; true if there was none.
    @inline(__always)
    mutating func skipNoWhitespace() -> Bool {
        let start = pos
        skipWhitespace()
        return pos == start
    }

    /// Records a key (its text between the quotes) of the object whose keys start at `firstKey`;
    /// false if it is an array index (JS moves those first), a duplicate, or there is no room.
    mutating func noteKey(_ span: Range<Int>, firstKey: Int, in keys: inout KeySpans) -> Bool {
        let length = span.count
        let key = base + span.lowerBound
        if length > 0 {
            let first = key.load(as: UInt8.self)
            if first &- UInt8(ascii: "0") < 10,
               JSONValue.arrayIndex(UnsafeBufferPointer(start: key.assumingMemoryBound(to: UInt8.self), count: length)) != nil {
                return false
            }
        }
        guard keys.count < keys.capacity else { return false }
        for index in firstKey..<keys.count where keys.base[index].count == length {
            let other = base + keys.base[index].lowerBound
            // Keys are short: compare in place, the first byte first.
            var same = true
            for offset in 0..<length where other.load(fromByteOffset: offset, as: UInt8.self) != key.load(fromByteOffset: offset, as: UInt8.self) {
                same = false
                break
            }
            if same { return false }
        }
        keys.base[keys.count] = span
        keys.count += 1
        return true
    }

    /// Validates the string whose opening quote is at `pos` as `skipString` does; true if it is
    /// written as `writeEscaped` would write its decoded value.
    mutating func skipCanonicalString() throws(JSONParseError) -> Bool {
        var canonical = true
        pos += 1
        while true {
            let stop = JSONParser.firstSpecialByte(base, from: pos, count: count, orNonASCII: true)
            guard stop < count else { throw JSONParseError(.unexpectedEnd, at: count) }
            let special = byte(at: stop)
            if special == UInt8(ascii: "\"") {
                pos = stop + 1
                return canonical
            }
            if special >= 0x80 {
                // A multi-byte sequence: valid UTF-8 is kept as it is, anything else becomes U+FFFD.
                let length = JSONParser.utf8SequenceLength(base + stop, available: count - stop)
                if length == 0 {
                    canonical = false
                    pos = stop + 1
                } else {
                    pos = stop + length
                }
                continue
            }
            if special < 0x20 { throw JSONParseError(.controlCharacterInString, at: stop) }
            pos = stop + 1  // after the backslash
            guard pos < count else { throw JSONParseError(.unexpectedEnd, at: count) }
            let escape = byte(at: pos)
            pos += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                 UInt8(ascii: "r"), UInt8(ascii: "t"):
                break
            case UInt8(ascii: "/"):
                canonical = false
            case UInt8(ascii: "u"):
                let scalar = try readHex4()
                // Only control characters without a short escape are written as `\u00xx`, lowercase.
                switch scalar {
                case 0x08, 0x09, 0x0A, 0x0C, 0x0D: canonical = false
                case 0..<0x20: if byte(at: pos - 1) &- UInt8(ascii: "A") < 6 { canonical = false }
                default: canonical = false
                }
            default:
                throw JSONParseError(.invalidEscape, at: stop)
            }
        }
    }

    /// The length of the well-formed UTF-8 sequence (RFC 3629: no overlong form, no surrogate,
    /// nothing past U+10FFFF) whose lead byte (0x80 or above) is at `start`; 0 if there is none.
    static func utf8SequenceLength(_ start: UnsafeRawPointer, available: Int) -> Int {
        @inline(__always) func at(_ offset: Int) -> UInt8 { start.load(fromByteOffset: offset, as: UInt8.self) }
        let lead = at(0)
        let length: Int
        switch lead {
        case 0xC2...0xDF:
            length = 2
        case 0xE0...0xEF:
            guard available > 1 else { return 0 }
            let second = at(1)
            if lead == 0xE0 && second < 0xA0 { return 0 }  // overlong
            if lead == 0xED && second >= 0xA0 { return 0 }  // a surrogate
            length = 3
        case 0xF0...0xF4:
            guard available > 1 else { return 0 }
            let second = at(1)
            if lead == 0xF0 && second < 0x90 { return 0 }  // overlong
            if lead == 0xF4 && second >= 0x90 { return 0 }  // past U+10FFFF
            length = 4
        default:
            return 0
        }
        guard available >= length else { return 0 }
        for offset in 1..<length where at(offset) & 0xC0 != 0x80 { return 0 }
        return length
    }
}
