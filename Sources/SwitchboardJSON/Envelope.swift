#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How an inbound WebSocket message reads (PROTOCOL.md section 4, rules 1 and 2).
public enum InboundEnvelope: Hashable, Sendable {
    /// Not one valid JSON text (rule 1: reply `error` "Invalid message format").
    case invalidJSON
    /// Valid JSON, but not an object whose `event` is a non-empty string (rule 2: drop).
    case noEvent
    /// `data` and `id` are `nil` when absent (`.null` when written as `null`).
    case message(event: String, data: JSONValue?, id: JSONValue?)

    /// Classifies one message. The whole text is validated, but only `event`, `data` and `id`
    /// are built; other members are checked and skipped. Duplicate keys: the last one wins, also
    /// when keys are written with escapes (`"\u0065vent"` is `event`).
    ///
    /// A `data` object written canonically (as `JSONValue.serialize` would write it) is kept as
    /// its text, copied out of `bytes`, and parsed only where a member is read. `numbers` is how
    /// `data` and `id` keep their numbers (see `JSONNumberStyle`).
    public static func read(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = JSONValue.defaultMaxDepth,
                            numbers: JSONNumberStyle = .exact) -> InboundEnvelope {
        read(bytes, maxDepth: maxDepth, numbers: numbers) { JSONText(Array(UnsafeRawBufferPointer(rebasing: bytes[$0])), 0..<$0.count) }
    }

    /// Classifies one message; a canonical `data` object shares the array's storage (no copy).
    public static func read(_ bytes: [UInt8], maxDepth: Int = JSONValue.defaultMaxDepth,
                            numbers: JSONNumberStyle = .exact) -> InboundEnvelope {
        bytes.withUnsafeBytes { buffer in read(buffer, maxDepth: maxDepth, numbers: numbers) { JSONText(bytes, $0) } }
    }

    /// Classifies one message given as UTF-8 bytes; see `read(_: UnsafeRawBufferPointer)`.
    public static func read(_ bytes: some Collection<UInt8>, maxDepth: Int = JSONValue.defaultMaxDepth,
                            numbers: JSONNumberStyle = .exact) -> InboundEnvelope {
        if let envelope = bytes.withContiguousStorageIfAvailable({
            read(UnsafeRawBufferPointer($0), maxDepth: maxDepth, numbers: numbers)
        }) {
            return envelope
        }
        return read(Array(bytes), maxDepth: maxDepth, numbers: numbers)
    }

    private static func read(_ bytes: UnsafeRawBufferPointer, maxDepth: Int, numbers: JSONNumberStyle,
                             text: (Range<Int>) -> JSONText) -> InboundEnvelope {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .invalidJSON }
        var parser = JSONParser(base, count: bytes.count, maxDepth: maxDepth, numbers: numbers)
        if let envelope = parser.readStringifiedEnvelope(text: text) { return envelope }
        do {
            return try parser.readEnvelope(text: text)
        } catch {
            return .invalidJSON
        }
    }
}

/// Server-to-client messages.
public enum OutboundEnvelope {
    /// `{"event":...,"data":...}` exactly as `JSON.stringify({event, data})`: `data: nil` (JS
    /// `undefined`) leaves the field out, `.null` writes `"data":null`.
    public static func encode(event: String, data: JSONValue?) -> [UInt8] {
        ByteWriter.with { writer in
            write(event: event, data: data, to: &writer)
            return Array(writer.bytes)
        }
    }

    /// Appends the envelope to `out`; see `encode(event:data:)`.
    public static func encode(event: String, data: JSONValue?, into out: inout [UInt8]) {
        if appendPassThrough(event: event, data: data, to: &out) { return }
        ByteWriter.with { writer in
            write(event: event, data: data, to: &writer)
            out.append(contentsOf: writer.bytes)
        }
    }

    /// The usual reply or relay: an event name with nothing to escape, and `data` absent or an
    /// object still held as the client's text: copied, with no escaping scan of `data` and no
    /// writer; false (nothing written) for anything else. An echo round trip: 7,886 -> 7,658
    /// instructions (`scripts/callgrind echo`).
    @inline(__always)
    static func appendPassThrough(event: String, data: JSONValue?, to out: inout [UInt8]) -> Bool {
        let text: JSONText?
        switch data {
        case nil:
            text = nil
        case .object(let object)?:
            guard case .text(let held) = object.storage else { return false }
            text = held
        default:
            return false
        }
        let done: Bool? = event.utf8.withContiguousStorageIfAvailable { name in
            guard let base = name.baseAddress, !name.isEmpty,
                  JSONParser.firstSpecialByte(UnsafeRawPointer(base), from: 0, count: name.count) == name.count
            else { return false }
            let head: StaticString = #"{"event":""#
            let middle: StaticString = #"","data":"#
            let textCount = text?.count ?? 0
            let total = head.utf8CodeUnitCount + name.count + middle.utf8CodeUnitCount + textCount + 2
            // Assembled in one scratch buffer, then one append: each append to an array checks
            // uniqueness and capacity again (four of them cost more than the writer).
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: total) { scratch in
                var at = scratch.baseAddress!
                func put(_ source: UnsafeRawPointer, _ count: Int) {
                    UnsafeMutableRawPointer(at).copyMemory(from: source, byteCount: count)
                    at += count
                }
                put(head.utf8Start, head.utf8CodeUnitCount)
                put(base, name.count)
                if let text {
                    put(middle.utf8Start, middle.utf8CodeUnitCount)
                    text.withBytes { put($0.baseAddress!, textCount) }
                } else {
                    at.pointee = UInt8(ascii: "\"")
                    at += 1
                }
                at.pointee = UInt8(ascii: "}")
                at += 1
                out.append(contentsOf: UnsafeBufferPointer(start: scratch.baseAddress!, count: at - scratch.baseAddress!))
            }
            return true
        }
        return done ?? false
    }

    static func write(event: String, data: JSONValue?, to writer: inout ByteWriter) {
        writer.write("{\"event\":")
        JSONValue.writeString(event, to: &writer)
        if let data {
            writer.write(",\"data\":")
            data.write(to: &writer)
        }
        writer.write(UInt8(ascii: "}"))
    }
}

extension JSONParser {
    enum EnvelopeField { case event, data, id, other }

    /// `text` holds a canonical `data` object as its text, by its range in the input.
    mutating func readEnvelope(text: (Range<Int>) -> JSONText) throws(JSONParseError) -> InboundEnvelope {
        skipWhitespace()
        guard pos < count else { throw JSONParseError(.unexpectedEnd, at: count) }
        guard byte(at: pos) == UInt8(ascii: "{") else {
            try skipValue(depth: 0)
            try finish()
            return .noEvent
        }
        try enterContainer(depth: 0)
        var event: String?
        var data: JSONValue?
        var canonicalData: Range<Int>?  // data, if it is an object held as its text
        var id: JSONValue?
        skipWhitespace()
        if pos < count && byte(at: pos) == UInt8(ascii: "}") {
            pos += 1
        } else {
            while true {
                skipWhitespace()
                guard pos < count, byte(at: pos) == UInt8(ascii: "\"") else { throw unexpected(at: pos) }
                let field = try readEnvelopeKey()
                try expectColon()
                switch field {
                case .event:
                    if pos < count && byte(at: pos) == UInt8(ascii: "\"") {
                        event = try parseString()
                    } else {
                        event = nil
                        try skipValue(depth: 1)
                    }
                case .data:
                    canonicalData = count <= JSONText.maxOffset ? try readCanonicalObject() : nil
                    if canonicalData == nil { data = try parseValue(depth: 1) }
                case .id: id = try parseValue(depth: 1)
                case .other: try skipValue(depth: 1)
                }
                if try endOfMember(closer: UInt8(ascii: "}")) { break }
            }
        }
        try finish()
        guard let event, !event.isEmpty else { return .noEvent }
        if let canonicalData { data = .object(JSONObject(text: text(canonicalData))) }
        return .message(event: event, data: data, id: id)
    }

    /// The range of the member value at `pos` if it is an object written canonically (`pos`
    /// then after it); nil, `pos` unchanged, for any other value: the fast scan, then the exact.
    mutating func readCanonicalObject() throws(JSONParseError) -> Range<Int>? {
        let start = pos
        guard pos < count, byte(at: pos) == UInt8(ascii: "{") else { return nil }
        if let end = CanonicalScan.object(base, from: pos, count: count, depthLimit: maxDepth, numbers: numbers) {
            pos = end
            return start..<end
        }
        if try skipCanonical(depth: 1) { return start..<pos }
        pos = start
        return nil
    }

    /// The fast path for `JSON.stringify({event, data})` with a plain event name and a canonical
    /// `data` object (or none): `{"event":"name","data":{...}}`, nothing around it. Anything else
    /// (nil) is read by the general path.
    mutating func readStringifiedEnvelope(text: (Range<Int>) -> JSONText) -> InboundEnvelope? {
        let prefix: StaticString = #"{"event":""#
        let separator: StaticString = #","data":"#
        @inline(__always) func matches(_ literal: StaticString, at offset: Int) -> Bool {
            let length = literal.utf8CodeUnitCount
            return offset + length <= count && memcmp(base + offset, literal.utf8Start, length) == 0
        }
        guard count <= JSONText.maxOffset, matches(prefix, at: 0) else { return nil }
        let nameStart = prefix.utf8CodeUnitCount
        var nameEnd = nameStart
        while nameEnd < count {
            let byte = byte(at: nameEnd)
            if byte == UInt8(ascii: "\"") { break }
            guard byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") else { return nil }
            nameEnd += 1
        }
        guard nameEnd < count, nameEnd > nameStart else { return nil }
        // Printable ASCII, checked above: built in place, where `String(decoding:as:)` validated
        // it again (144 instructions for "echo", 112 so: a name of up to 15 bytes is not validated).
        let name = UnsafeRawBufferPointer(start: base + nameStart, count: nameEnd - nameStart)
        let event = String(unsafeUninitializedCapacity: name.count) { buffer in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: name)
            return name.count
        }
        let afterName = nameEnd + 1
        if afterName + 1 == count, byte(at: afterName) == UInt8(ascii: "}") {
            return .message(event: event, data: nil, id: nil)
        }
        let dataStart = afterName + separator.utf8CodeUnitCount
        guard matches(separator, at: afterName), dataStart < count, byte(at: dataStart) == UInt8(ascii: "{"),
              let dataEnd = CanonicalScan.object(base, from: dataStart, count: count, depthLimit: maxDepth, numbers: numbers),
              dataEnd + 1 == count, byte(at: dataEnd) == UInt8(ascii: "}")
        else { return nil }
        return .message(event: event, data: .object(JSONObject(text: text(dataStart..<dataEnd))), id: nil)
    }

    /// Reads the key whose opening quote is at `pos` and tells which envelope field it names.
    mutating func readEnvelopeKey() throws(JSONParseError) -> EnvelopeField {
        if let plain = try scanPlainString(keep: true) { return JSONParser.envelopeField(plain) }
        try decodeRest(store: true)
        return scratch.withUnsafeBytes { JSONParser.envelopeField($0) }
    }

    static func envelopeField(_ key: UnsafeRawBufferPointer) -> EnvelopeField {
        @inline(__always) func word(_ offset: Int) -> UInt32 { key.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
        switch key.count {
        case 5 where word(0) == JSONParser.ascii4("even") && key[4] == UInt8(ascii: "t"): return .event
        case 4 where word(0) == JSONParser.ascii4("data"): return .data
        case 2 where key[0] == UInt8(ascii: "i") && key[1] == UInt8(ascii: "d"): return .id
        default: return .other
        }
    }

    /// Four ASCII letters as a native-endian word, as `loadUnaligned` reads them.
    static func ascii4(_ text: StaticString) -> UInt32 {
        UnsafeRawPointer(text.utf8Start).loadUnaligned(as: UInt32.self)
    }
}
