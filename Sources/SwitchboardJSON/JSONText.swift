#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The validated text of one JSON object that is already canonical: byte for byte what
/// `JSONValue.serialize` writes for the value parsed from it. It is written out as it is, and
/// read where it lies: a member asked for by key is found by stepping over the text's members
/// and only its value is parsed; the whole member list is parsed each time it is asked for.
///
/// A message's `data` passed through a handler untouched (an echo, a broadcast, a room
/// message) is thus never built as a tree nor encoded again: its bytes are copied.
///
/// A value, not an object: the array already is the message's storage, and a box around it
/// (with a lock for the parse it cached) was one allocation and one free per message, about
/// 540 of an echo round trip's instructions with the copy it took (`scripts/callgrind echo
/// --depth 16`). What the box saved, a second parse of the members, only code that reads a
/// message's `data` member by member pays; a lookup by key (the kernel's `data.room`, a
/// handler's field) parses less than before, and iterating (`JSONObject.makeIterator`) parses once.
///
/// Held as the message's array and two 32-bit offsets (16 bytes, as a `String`), not as an
/// `ArraySlice` (32): a larger `JSONObject` made every `JSONValue` copy and destroy an outlined
/// call of about 160 instructions, and the echo round trip about 1,100 instructions longer.
struct JSONText: Sendable {
    private let start: UInt32
    private let end: UInt32
    private let storage: [UInt8]

    /// The largest text offset this can hold: a longer input is read without it.
    static let maxOffset = Int(UInt32.max)

    /// The text at `range` of `storage`, which ends at most at `maxOffset`.
    init(_ storage: [UInt8], _ range: Range<Int>) {
        precondition(range.upperBound <= JSONText.maxOffset, "text offsets are 32-bit")
        self.start = UInt32(truncatingIfNeeded: range.lowerBound)
        self.end = UInt32(truncatingIfNeeded: range.upperBound)
        self.storage = storage
    }

    /// The object's text, `{` to `}`, validated and canonical.
    var bytes: ArraySlice<UInt8> { storage[Int(start)..<Int(end)] }

    /// The text's byte count.
    var count: Int { Int(end &- start) }

    /// Runs `body` on the text's bytes, in place: no slice made, nothing retained.
    @inline(__always)
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(start: all.baseAddress! + Int(start), count: Int(end &- start)))
        }
    }

    var members: [JSONObject.Member] {
        withBytes { bytes in
            // Validated (within the depth limit) when it was read: this parse cannot fail.
            var parser = JSONParser(bytes.baseAddress!, count: bytes.count, maxDepth: .max)
            return (try? parser.parseObject(depth: 0))?.members ?? []
        }
    }

    /// The value of the member named `key`: `.some(nil)` when there is none, nil when a key
    /// written with an escape is met before it (then `members` decides). A canonical object has
    /// no duplicate keys, so the first match is the last, and the text has no whitespace.
    func member(_ key: String) -> JSONValue?? {
        var key = key
        return key.withUTF8 { wanted in
            withBytes { bytes -> JSONValue?? in
                var parser = JSONParser(bytes.baseAddress!, count: bytes.count, maxDepth: .max)
                parser.pos = 1
                guard parser.byte(at: 1) != UInt8(ascii: "}") else { return .some(nil) }
                do {
                    while true {
                        guard let name = try parser.scanPlainString(keep: false) else { return nil }
                        let matches = name.count == wanted.count
                            && (wanted.isEmpty || memcmp(name.baseAddress!, wanted.baseAddress!, wanted.count) == 0)
                        parser.pos += 1  // the colon
                        if matches { return .some(try parser.parseValue(depth: 1)) }
                        try parser.skipValue(depth: 1)
                        if try parser.endOfMember(closer: UInt8(ascii: "}")) { return .some(nil) }
                    }
                } catch {
                    return nil
                }
            }
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
    /// `writeObject` reorders). With `numbers: .exact` every number is canonical (it is written as
    /// its literal); with `.javascript`, one that JS writes as it is (`1.5`, not `1.50`).
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
                canonical = try skipCanonical(depth: depth + 1, keys: &keys) && canonical
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
                canonical = try skipCanonical(depth: depth + 1, keys: &keys) && canonical
                canonical = skipNoWhitespace() && canonical
                if try endOfMember(closer: UInt8(ascii: "]")) { return canonical }
            }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let start = pos
            pos = try JSONParser.scanNumber(base, count: count, from: pos)
            return numbers == .exact
                || JSONNumber.isJavaScriptText(UnsafeRawBufferPointer(start: base + start, count: pos - start))
        default:
            try skipValue(depth: depth)  // a literal: written as it is read
            return true
        }
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
            if JSONParser.sameBytes(base, keys.base[index].lowerBound, span.lowerBound, length) { return false }
        }
        keys.base[keys.count] = span
        keys.count += 1
        return true
    }

    /// Whether the `length` bytes at offsets `a` and `b` of `base` are the same (keys are short:
    /// compared in place, from the first byte).
    @inline(__always)
    static func sameBytes(_ base: UnsafeRawPointer, _ a: Int, _ b: Int, _ length: Int) -> Bool {
        for offset in 0..<length
        where base.load(fromByteOffset: a &+ offset, as: UInt8.self) != base.load(fromByteOffset: b &+ offset, as: UInt8.self) {
            return false
        }
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
                // Only control characters without a short escape and unpaired surrogates are
                // written as `\uxxxx`, lowercase.
                switch scalar {
                case 0x08, 0x09, 0x0A, 0x0C, 0x0D: canonical = false
                case 0..<0x20: if byte(at: pos - 1) &- UInt8(ascii: "A") < 6 { canonical = false }
                case 0xD800..<0xE000:
                    if !lowercaseHex(before: pos) { canonical = false }
                    // A high surrogate followed by a low one is a pair, written as its character.
                    if scalar < 0xDC00, pos + 6 <= count, byte(at: pos) == UInt8(ascii: "\\"),
                       byte(at: pos + 1) == UInt8(ascii: "u"), let low = peekHex4(at: pos + 2), low & 0xFC00 == 0xDC00 {
                        canonical = false
                    }
                default: canonical = false
                }
            default:
                throw JSONParseError(.invalidEscape, at: stop)
            }
        }
    }

    /// Whether the four hex digits that end at `end` have no uppercase letter.
    func lowercaseHex(before end: Int) -> Bool {
        for offset in end - 4..<end where byte(at: offset) &- UInt8(ascii: "A") < 6 { return false }
        return true
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
