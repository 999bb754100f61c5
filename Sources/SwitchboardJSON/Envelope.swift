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
    public static func read(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = JSONValue.defaultMaxDepth) -> InboundEnvelope {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .invalidJSON }
        var parser = JSONParser(base, count: bytes.count, maxDepth: maxDepth)
        do {
            return try parser.readEnvelope()
        } catch {
            return .invalidJSON
        }
    }

    /// Classifies one message given as UTF-8 bytes; see `read(_: UnsafeRawBufferPointer)`.
    public static func read(_ bytes: some Collection<UInt8>, maxDepth: Int = JSONValue.defaultMaxDepth) -> InboundEnvelope {
        if let envelope = bytes.withContiguousStorageIfAvailable({ read(UnsafeRawBufferPointer($0), maxDepth: maxDepth) }) {
            return envelope
        }
        return Array(bytes).withUnsafeBytes { read($0, maxDepth: maxDepth) }
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
        ByteWriter.with { writer in
            write(event: event, data: data, to: &writer)
            out.append(contentsOf: writer.bytes)
        }
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

    mutating func readEnvelope() throws(JSONParseError) -> InboundEnvelope {
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
                case .data: data = try parseValue(depth: 1)
                case .id: id = try parseValue(depth: 1)
                case .other: try skipValue(depth: 1)
                }
                if try endOfMember(closer: UInt8(ascii: "}")) { break }
            }
        }
        try finish()
        guard let event, !event.isEmpty else { return .noEvent }
        return .message(event: event, data: data, id: id)
    }

    /// Reads the key whose opening quote is at `pos` and tells which envelope field it names.
    mutating func readEnvelopeKey() throws(JSONParseError) -> EnvelopeField {
        let start = pos + 1
        let stop = JSONParser.firstSpecialByte(base, from: start, count: count)
        guard stop < count else { throw JSONParseError(.unexpectedEnd, at: count) }
        let special = byte(at: stop)
        if special == UInt8(ascii: "\"") {
            pos = stop + 1
            return JSONParser.envelopeField(UnsafeRawBufferPointer(start: base + start, count: stop - start))
        }
        if special < 0x20 { throw JSONParseError(.controlCharacterInString, at: stop) }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeRawBufferPointer(start: base + start, count: stop - start))
        pos = stop
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
