// fuzz/json: JSONValue.parse, InboundEnvelope.read and the serializer on arbitrary bytes.
//
// Invariants:
// - `InboundEnvelope.read` says `.invalidJSON` exactly when `JSONValue.parse` throws, and otherwise
//   agrees with a lookup on the parsed value (last `event` member a non-empty string -> message);
//   its `data` (kept as text when canonical) serializes to the same bytes as the parsed `data`.
// - Round trip: `parse(serialize(v))` succeeds and equals `v` as JS would hold it (each key once,
//   at its first position with its last value, array-index keys first in ascending order), with
//   strings and keys compared byte for byte; serializing again gives the same bytes.
// - Every number's `javaScriptText` is a valid literal of the same `Double`.
//
// Unless FUZZ_STRICT_ROUNDTRIP=1 is set, a round-trip difference is tolerated when an object has
// two keys that differ in bytes but are canonically equivalent Unicode (see fuzz/README.md, "Findings").
#if canImport(Glibc)
import Glibc
#endif
import SwitchboardJSON

// The round trip is always strict: canonically equivalent keys stay distinct (fixed).
let strictRoundTrip = true

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let envelope = InboundEnvelope.read(input)
    let parsed: JSONValue?
    do {
        parsed = try JSONValue.parse(input)
    } catch {
        require(error.offset >= 0 && error.offset <= size, "error offset \(error.offset) outside 0...\(size)")
        parsed = nil
    }
    guard let value = parsed else {
        require(envelope == .invalidJSON, "parse failed but read gave \(envelope)")
        return 0
    }
    require(envelope == expectedEnvelope(value), "read gave \(envelope), parse implies \(expectedEnvelope(value))")
    // A `data` object the reader kept as its text is written as the parsed value would be.
    if case .message(_, let data?, _) = envelope, case .message(_, let parsedData?, _) = expectedEnvelope(value) {
        require(serializedBytes(data) == serializedBytes(parsedData),
                "data written as \(hex(serializedBytes(data))), parsed data as \(hex(serializedBytes(parsedData)))")
    }

    let text = serializedBytes(value)
    require(isWellFormedUTF8(text), "serialized text is not UTF-8: \(hex(text))")
    let again: JSONValue
    do {
        again = try JSONValue.parse(text)
    } catch {
        invariantFailed("serialized text does not parse (\(error)): \(hex(text))", file: #fileID, line: #line)
    }
    let expected = jsNormalized(value)
    let known = !strictRoundTrip && hasCanonicallyEquivalentKeys(value)
    require(known || identical(again, expected),
            "round trip changed the value: serialized \(hex(text)), reparsed \(again.serialized())")
    let twice = serializedBytes(again)
    require(known || twice == text, "serialization is not stable: \(hex(text)) then \(hex(twice))")
    require(value.serialized().utf8.elementsEqual(text), "serialized() and serialize(into:) differ")
    checkNumbers(value)
    return 0
}

/// Whether some object in `value` has two keys that Swift's `==` identifies but whose bytes differ.
func hasCanonicallyEquivalentKeys(_ value: JSONValue) -> Bool {
    switch value {
    case .array(let elements):
        return elements.contains(where: hasCanonicallyEquivalentKeys)
    case .object(let object):
        var byText: [String: [UInt8]] = [:]
        for member in object.members {
            let bytes = Array(member.key.utf8)
            if let seen = byText[member.key], seen != bytes { return true }
            byText[member.key] = bytes
        }
        return object.members.contains { hasCanonicallyEquivalentKeys($0.value) }
    default:
        return false
    }
}

func serializedBytes(_ value: JSONValue) -> [UInt8] {
    var out: [UInt8] = []
    value.serialize(into: &out)
    return out
}

/// What `InboundEnvelope.read` must say about a text that parses to `value`.
func expectedEnvelope(_ value: JSONValue) -> InboundEnvelope {
    guard case .object(let object) = value else { return .noEvent }
    var event: JSONValue?, data: JSONValue?, id: JSONValue?
    for member in object.members {
        switch Array(member.key.utf8) {
        case Array("event".utf8): event = member.value
        case Array("data".utf8): data = member.value
        case Array("id".utf8): id = member.value
        default: break
        }
    }
    guard case .string(let name)? = event, !name.isEmpty else { return .noEvent }
    return .message(event: name, data: data, id: id)
}

/// `javaScriptText`, `double` and `int` of every number in `value`.
func checkNumbers(_ value: JSONValue) {
    switch value {
    case .number(let number):
        require(JSONNumber(literal: number.literal) != nil, "parsed literal \(number.literal) is not valid")
        let js = number.javaScriptText
        if let double = number.double {
            require(JSONNumber(literal: js) != nil, "javaScriptText \(js) of \(number.literal) is not a literal")
            require(Double(js) == double, "javaScriptText \(js) is not the value of \(number.literal)")
            require(JSONNumber(double)?.literal == js, "JSONNumber(Double) disagrees with javaScriptText for \(number.literal)")
        } else {
            require(js == "null", "javaScriptText of out-of-range \(number.literal) is \(js)")
        }
        if let int = number.int, let double = number.double {
            require(Double(int) == double, "int \(int) of \(number.literal) is not its value")
        }
    case .array(let elements):
        for element in elements { checkNumbers(element) }
    case .object(let object):
        for member in object.members { checkNumbers(member.value) }
    default:
        break
    }
}
