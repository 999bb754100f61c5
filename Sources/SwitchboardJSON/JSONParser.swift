extension JSONValue {
    /// Nesting limit of arrays and objects used when none is given.
    public static let defaultMaxDepth = 512

    /// Parses one JSON text as `JSON.parse` does (RFC 8259; whitespace around the value allowed).
    ///
    /// Differences from `JSON.parse`, all deliberate: nesting deeper than `maxDepth` is an error
    /// (JS has no fixed limit); invalid UTF-8 inside strings is replaced by U+FFFD, as decoding the
    /// bytes to a JS string would. A string with an unpaired surrogate escape (`"\ud800"`) is a
    /// `.unpairedString` (a key: `Member.unpairedKey`). Numbers keep their literal text, or with
    /// `numbers: .javascript` become what JS would write after its own parse (see `JSONNumberStyle`).
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth, numbers: JSONNumberStyle = .exact
    ) throws(JSONParseError) -> JSONValue {
        guard let base = bytes.baseAddress, bytes.count > 0 else { throw JSONParseError(.unexpectedEnd, at: 0) }
        var parser = JSONParser(base, count: bytes.count, maxDepth: maxDepth, numbers: numbers)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        try parser.finish()
        return value
    }

    /// Parses UTF-8 bytes (`[UInt8]`, `ArraySlice<UInt8>`...); see `parse(_: UnsafeRawBufferPointer)`.
    public static func parse(
        _ bytes: some Collection<UInt8>, maxDepth: Int = defaultMaxDepth, numbers: JSONNumberStyle = .exact
    ) throws(JSONParseError) -> JSONValue {
        let result = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONParseError) -> JSONValue in
                try parse(UnsafeRawBufferPointer(buffer), maxDepth: maxDepth, numbers: numbers)
            }
        }
        if let result { return try result.get() }
        return try parse(Array(bytes), maxDepth: maxDepth, numbers: numbers)
    }

    /// Parses the UTF-8 form of `text`; see `parse(_: UnsafeRawBufferPointer)`.
    public static func parse(
        _ text: some StringProtocol, maxDepth: Int = defaultMaxDepth, numbers: JSONNumberStyle = .exact
    ) throws(JSONParseError) -> JSONValue {
        var string = String(text)
        let result = string.withUTF8 { buffer in
            Result { () throws(JSONParseError) -> JSONValue in
                try parse(UnsafeRawBufferPointer(buffer), maxDepth: maxDepth, numbers: numbers)
            }
        }
        return try result.get()
    }
}

/// Recursive-descent parser over borrowed bytes. Strings without escapes are built straight from
/// their byte range; escaped strings are decoded into a reused scratch buffer.
struct JSONParser {
    let base: UnsafeRawPointer
    let count: Int
    let maxDepth: Int
    let numbers: JSONNumberStyle
    var pos = 0
    var scratch: [UInt8] = []

    init(_ base: UnsafeRawPointer, count: Int, maxDepth: Int, numbers: JSONNumberStyle = .exact) {
        self.base = base
        self.count = count
        self.maxDepth = maxDepth
        self.numbers = numbers
    }

    @inline(__always)
    func byte(at offset: Int) -> UInt8 { base.load(fromByteOffset: offset, as: UInt8.self) }

    @inline(__always)
    mutating func skipWhitespace() {
        while pos < count {
            switch byte(at: pos) {
            case 0x20, 0x0A, 0x0D, 0x09: pos += 1
            default: return
            }
        }
    }

    /// The error for the byte at `offset`, or for the end of input.
    func unexpected(at offset: Int) -> JSONParseError {
        offset < count ? JSONParseError(.unexpectedByte(byte(at: offset)), at: offset) : JSONParseError(.unexpectedEnd, at: count)
    }

    mutating func finish() throws(JSONParseError) {
        skipWhitespace()
        if pos != count { throw JSONParseError(.trailingData, at: pos) }
    }

    // MARK: Values

    /// Parses the value at `pos` (not whitespace); `depth` is the number of enclosing containers.
    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard pos < count else { throw JSONParseError(.unexpectedEnd, at: count) }
        switch byte(at: pos) {
        case UInt8(ascii: "\""): return try parseStringValue()
        case UInt8(ascii: "{"): return .object(try parseObject(depth: depth))
        case UInt8(ascii: "["): return .array(try parseArray(depth: depth))
        case UInt8(ascii: "t"):
            try expectWord("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectWord("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectWord("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let start = pos
            pos = try JSONParser.scanNumber(base, count: count, from: pos)
            let literal = UnsafeRawBufferPointer(start: base + start, count: pos - start)
            if numbers == .javascript { return JSONNumber.javaScriptValue(literal) }
            return .number(JSONNumber(uncheckedLiteral: literal))
        default:
            throw unexpected(at: pos)
        }
    }

    /// Validates the value at `pos` without building it.
    mutating func skipValue(depth: Int) throws(JSONParseError) {
        guard pos < count else { throw JSONParseError(.unexpectedEnd, at: count) }
        switch byte(at: pos) {
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "{"):
            try enterContainer(depth: depth)
            skipWhitespace()
            if pos < count && byte(at: pos) == UInt8(ascii: "}") {
                pos += 1
                return
            }
            while true {
                skipWhitespace()
                guard pos < count, byte(at: pos) == UInt8(ascii: "\"") else { throw unexpected(at: pos) }
                try skipString()
                try expectColon()
                try skipValue(depth: depth + 1)
                if try endOfMember(closer: UInt8(ascii: "}")) { return }
            }
        case UInt8(ascii: "["):
            try enterContainer(depth: depth)
            skipWhitespace()
            if pos < count && byte(at: pos) == UInt8(ascii: "]") {
                pos += 1
                return
            }
            while true {
                skipWhitespace()
                try skipValue(depth: depth + 1)
                if try endOfMember(closer: UInt8(ascii: "]")) { return }
            }
        case UInt8(ascii: "t"): try expectWord("true")
        case UInt8(ascii: "f"): try expectWord("false")
        case UInt8(ascii: "n"): try expectWord("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            pos = try JSONParser.scanNumber(base, count: count, from: pos)
        default:
            throw unexpected(at: pos)
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> [JSONValue] {
        try enterContainer(depth: depth)
        var elements: [JSONValue] = []
        skipWhitespace()
        if pos < count && byte(at: pos) == UInt8(ascii: "]") {
            pos += 1
            return elements
        }
        elements.reserveCapacity(4)
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth + 1))
            if try endOfMember(closer: UInt8(ascii: "]")) { return elements }
        }
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONObject {
        try enterContainer(depth: depth)
        var members: [JSONObject.Member] = []
        skipWhitespace()
        if pos < count && byte(at: pos) == UInt8(ascii: "}") {
            pos += 1
            return JSONObject(members: members)
        }
        members.reserveCapacity(4)
        while true {
            skipWhitespace()
            guard pos < count, byte(at: pos) == UInt8(ascii: "\"") else { throw unexpected(at: pos) }
            let key = try parseStringValue()
            try expectColon()
            let value = try parseValue(depth: depth + 1)
            if case .unpairedString(let unpaired) = key {
                members.append(JSONObject.Member(key: unpaired, value: value))
            } else {
                members.append(JSONObject.Member(key: key.stringValue ?? "", value: value))
            }
            if try endOfMember(closer: UInt8(ascii: "}")) { return JSONObject(members: members) }
        }
    }

    /// Checks the depth limit and steps over the opening bracket at `pos`.
    @inline(__always)
    mutating func enterContainer(depth: Int) throws(JSONParseError) {
        if depth >= maxDepth { throw JSONParseError(.depthLimitExceeded, at: pos) }
        pos += 1
    }

    /// After a key: whitespace, `:`, whitespace.
    @inline(__always)
    mutating func expectColon() throws(JSONParseError) {
        skipWhitespace()
        guard pos < count, byte(at: pos) == UInt8(ascii: ":") else { throw unexpected(at: pos) }
        pos += 1
        skipWhitespace()
    }

    /// After a member: whitespace, then `,` (returns false) or `closer` (returns true).
    @inline(__always)
    mutating func endOfMember(closer: UInt8) throws(JSONParseError) -> Bool {
        skipWhitespace()
        guard pos < count else { throw JSONParseError(.unexpectedEnd, at: count) }
        let next = byte(at: pos)
        pos += 1
        if next == UInt8(ascii: ",") { return false }
        if next == closer { return true }
        throw JSONParseError(.unexpectedByte(next), at: pos - 1)
    }

    mutating func expectWord(_ word: StaticString) throws(JSONParseError) {
        let letters = word.utf8Start
        for index in 0..<word.utf8CodeUnitCount {
            guard pos < count else { throw JSONParseError(.unexpectedEnd, at: count) }
            guard byte(at: pos) == letters[index] else { throw unexpected(at: pos) }
            pos += 1
        }
    }

    // MARK: Numbers

    /// The end offset of the number starting at `start`:
    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    static func scanNumber(_ base: UnsafeRawPointer, count: Int, from start: Int) throws(JSONParseError) -> Int {
        @inline(__always) func isDigit(_ offset: Int) -> Bool {
            offset < count && base.load(fromByteOffset: offset, as: UInt8.self) &- UInt8(ascii: "0") < 10
        }
        @inline(__always) func at(_ offset: Int) -> UInt8? {
            offset < count ? base.load(fromByteOffset: offset, as: UInt8.self) : nil
        }
        func bad(_ offset: Int) -> JSONParseError {
            offset < count ? JSONParseError(.invalidNumber, at: offset) : JSONParseError(.unexpectedEnd, at: count)
        }

        var i = start
        if at(i) == UInt8(ascii: "-") { i += 1 }
        if at(i) == UInt8(ascii: "0") {
            i += 1
            if isDigit(i) { throw JSONParseError(.invalidNumber, at: i) }  // leading zero
        } else if isDigit(i) {
            while isDigit(i) { i += 1 }
        } else {
            throw bad(i)
        }
        if at(i) == UInt8(ascii: ".") {
            i += 1
            guard isDigit(i) else { throw bad(i) }
            while isDigit(i) { i += 1 }
        }
        if let letter = at(i), letter | 0x20 == UInt8(ascii: "e") {
            i += 1
            if at(i) == UInt8(ascii: "+") || at(i) == UInt8(ascii: "-") { i += 1 }
            guard isDigit(i) else { throw bad(i) }
            while isDigit(i) { i += 1 }
        }
        return i
    }

    // MARK: Strings

    /// Parses the string whose opening quote is at `pos`: a `.string`, or an `.unpairedString`
    /// if it has an unpaired surrogate escape (then decoded again, exactly).
    mutating func parseStringValue() throws(JSONParseError) -> JSONValue {
        let start = pos + 1
        if let plain = try scanPlainString(keep: true) {
            return .string(String(decoding: plain, as: UTF8.self))
        }
        if try decodeRest(store: true) {
            pos = start
            scratch.removeAll(keepingCapacity: true)
            try decodeRest(store: true, exact: true)
            return .unpairedString(JSONUnpairedString(wtf8: scratch))
        }
        return .string(String(decoding: scratch, as: UTF8.self))
    }

    /// Parses the string whose opening quote is at `pos` as a `String`, an unpaired surrogate
    /// as U+FFFD (names the gateway routes by, such as an event's, are `String`s).
    mutating func parseString() throws(JSONParseError) -> String {
        try parseStringValue().stringValue ?? ""
    }

    /// Validates the string whose opening quote is at `pos`.
    mutating func skipString() throws(JSONParseError) {
        if try scanPlainString(keep: false) == nil { try decodeRest(store: false) }
    }

    /// The fast path of every string reader: scans the string whose opening quote is at `pos` to
    /// its first quote, backslash or control byte. When that is the closing quote, the bytes
    /// before it (in the input, no copy) with `pos` past it; when it is a backslash, nil with
    /// `pos` at it and, if `keep`, `scratch` holding the bytes before it, for `decodeRest`.
    @inline(__always)
    mutating func scanPlainString(keep: Bool) throws(JSONParseError) -> UnsafeRawBufferPointer? {
        let start = pos + 1
        let stop = JSONParser.firstSpecialByte(base, from: start, count: count)
        guard stop < count else { throw JSONParseError(.unexpectedEnd, at: count) }
        let special = byte(at: stop)
        let plain = UnsafeRawBufferPointer(start: base + start, count: stop - start)
        if special == UInt8(ascii: "\"") {
            pos = stop + 1
            return plain
        }
        if special < 0x20 { throw JSONParseError(.controlCharacterInString, at: stop) }
        if keep {
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: plain)
        }
        pos = stop
        return nil
    }

    /// Slow path from inside a string (at `pos`) through its closing quote: validates escapes
    /// and, if `store`, appends the decoded UTF-8 to `scratch`; true if the string has an
    /// unpaired surrogate escape. That becomes U+FFFD, unless `exact`: then `scratch` gets WTF-8
    /// (see `JSONUnpairedString`), the surrogate in its three-byte form and the raw bytes with
    /// invalid UTF-8 already replaced, so that no raw byte can pass for a surrogate.
    @discardableResult
    mutating func decodeRest(store: Bool, exact: Bool = false) throws(JSONParseError) -> Bool {
        var unpaired = false
        while true {
            let stop = JSONParser.firstSpecialByte(base, from: pos, count: count)
            guard stop < count else { throw JSONParseError(.unexpectedEnd, at: count) }
            if store && stop > pos {
                let run = UnsafeRawBufferPointer(start: base + pos, count: stop - pos)
                if exact {
                    scratch.append(contentsOf: String(decoding: run, as: UTF8.self).utf8)
                } else {
                    scratch.append(contentsOf: run)
                }
            }
            let special = byte(at: stop)
            if special == UInt8(ascii: "\"") {
                pos = stop + 1
                return unpaired
            }
            if special < 0x20 { throw JSONParseError(.controlCharacterInString, at: stop) }
            // A backslash.
            pos = stop + 1
            guard pos < count else { throw JSONParseError(.unexpectedEnd, at: count) }
            let escape = byte(at: pos)
            pos += 1
            let decoded: UInt8
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded = escape
            case UInt8(ascii: "b"): decoded = 0x08
            case UInt8(ascii: "f"): decoded = 0x0C
            case UInt8(ascii: "n"): decoded = 0x0A
            case UInt8(ascii: "r"): decoded = 0x0D
            case UInt8(ascii: "t"): decoded = 0x09
            case UInt8(ascii: "u"):
                var scalar = try readHex4()
                if scalar & 0xFC00 == 0xD800 {
                    // A high surrogate: pair it with a following `\uDC00`-`\uDFFF`, else it is unpaired.
                    if pos + 6 <= count, byte(at: pos) == UInt8(ascii: "\\"), byte(at: pos + 1) == UInt8(ascii: "u"),
                        let low = peekHex4(at: pos + 2), low & 0xFC00 == 0xDC00
                    {
                        pos += 6
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        unpaired = true
                        if !exact { scalar = 0xFFFD }
                    }
                } else if scalar & 0xFC00 == 0xDC00 {
                    unpaired = true  // a lone low surrogate
                    if !exact { scalar = 0xFFFD }
                }
                if store { appendUTF8(scalar) }
                continue
            default:
                throw JSONParseError(.invalidEscape, at: stop)
            }
            if store { scratch.append(decoded) }
        }
    }

    /// Reads the four hex digits at `pos`.
    mutating func readHex4() throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard pos < count else { throw JSONParseError(.unexpectedEnd, at: count) }
            guard let digit = JSONParser.hexValue(byte(at: pos)) else {
                throw JSONParseError(.invalidUnicodeEscape, at: pos)
            }
            value = value << 4 | digit
            pos += 1
        }
        return value
    }

    func peekHex4(at offset: Int) -> UInt32? {
        var value: UInt32 = 0
        for index in offset..<offset + 4 {
            guard let digit = JSONParser.hexValue(byte(at: index)) else { return nil }
            value = value << 4 | digit
        }
        return value
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte &- UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte &- UInt8(ascii: "a") &+ 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte &- UInt8(ascii: "A") &+ 10)
        default: return nil
        }
    }

    /// A decoded escape's scalar as UTF-8 (the parser only passes valid scalars here).
    mutating func appendUTF8(_ scalar: UInt32) {
        JSONUnpairedString.appendWTF8(scalar, to: &scratch)
    }

    /// The offset of the first `"`, `\` or byte below 0x20 (or, if `orNonASCII`, 0x80 or above)
    /// at or after `start` (or `count`), eight bytes at a time.
    @inline(__always)
    static func firstSpecialByte(_ base: UnsafeRawPointer, from start: Int, count: Int, orNonASCII: Bool = false) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highBits: UInt64 = 0x8080_8080_8080_8080
        var i = start
        while i &+ 8 <= count {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let quotes = word ^ (ones &* 0x22)
            let backslashes = word ^ (ones &* 0x5C)
            // A byte is flagged if it is zero after the XOR, or below 0x20; the lowest flag is exact.
            let zeroQuote = (quotes &- ones) & ~quotes
            let zeroBackslash = (backslashes &- ones) & ~backslashes
            let control = (word &- (ones &* 0x20)) & ~word
            let flags = (zeroQuote | zeroBackslash | control | (orNonASCII ? word : 0)) & highBits
            if flags != 0 { return i &+ flags.trailingZeroBitCount >> 3 }
            i &+= 8
        }
        while i < count {
            let byte = base.load(fromByteOffset: i, as: UInt8.self)
            if byte == 0x22 || byte == 0x5C || byte < 0x20 || (orNonASCII && byte >= 0x80) { return i }
            i &+= 1
        }
        return i
    }
}
