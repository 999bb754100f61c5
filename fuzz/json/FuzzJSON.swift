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
// - Unpaired surrogates: every string is written as a reference JS writer writes its UTF-16 code
//   units (an unpaired surrogate as a lowercase `\udxxx` escape), so the round trip above is exact.
// - `numbers: .javascript`: `parse` gives the exact parse with every number replaced by its
//   `javaScriptText` (`null` beyond the double range); `read` agrees with it (its canonical fast
//   paths keep no number JS would write differently); and that value round-trips unchanged.
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
    checkStrings(value)
    checkJavaScriptNumbers(input, exact: value)
    return 0
}

/// `numbers: .javascript` against the exact parse (see the header).
func checkJavaScriptNumbers(_ input: UnsafeRawBufferPointer, exact: JSONValue) {
    guard let js = try? JSONValue.parse(input, numbers: .javascript) else {
        invariantFailed("parse with .javascript fails where the exact parse succeeds", file: #fileID, line: #line)
    }
    let expected = javaScriptNumbers(exact)
    require(identical(js, expected), "parse .javascript gave \(js.serialized()), expected \(expected.serialized())")
    let envelope = InboundEnvelope.read(input, numbers: .javascript)
    require(envelope == expectedEnvelope(js), "read .javascript gave \(envelope), parse implies \(expectedEnvelope(js))")
    if case .message(_, let data?, _) = envelope, case .message(_, let parsedData?, _) = expectedEnvelope(js) {
        require(serializedBytes(data) == serializedBytes(parsedData),
                "data .javascript written as \(hex(serializedBytes(data))), parsed as \(hex(serializedBytes(parsedData)))")
    }
    let text = serializedBytes(js)
    guard let again = try? JSONValue.parse(text, numbers: .javascript) else {
        invariantFailed("serialized .javascript text does not parse: \(hex(text))", file: #fileID, line: #line)
    }
    require(serializedBytes(again) == text, ".javascript round trip changed \(hex(text)) to \(hex(serializedBytes(again)))")
}

/// `value` with every number as JS writes it after its own parse.
func javaScriptNumbers(_ value: JSONValue) -> JSONValue {
    switch value {
    case .number(let number):
        let text = number.javaScriptText
        return text == "null" ? .null : .number(JSONNumber(literal: text)!)
    case .array(let elements):
        return .array(elements.map(javaScriptNumbers))
    case .object(let object):
        return .object(JSONObject(members: object.members.map { member in
            var member = member
            member.value = javaScriptNumbers(member.value)
            return member
        }))
    default:
        return value
    }
}

/// Every string and key is written as `referenceString` writes its code units.
func checkStrings(_ value: JSONValue) {
    func check(_ written: [UInt8], _ units: [UInt16]) {
        let reference = referenceString(units)
        require(written == reference, "string written as \(hex(written)), JS writes \(hex(reference))")
    }
    switch value {
    case .string(let string):
        check(serializedBytes(value), Array(string.utf16))
    case .unpairedString(let string):
        check(serializedBytes(value), string.utf16)
        require(JSONUnpairedString(utf16: string.utf16) == string, "utf16 does not give the string back")
    case .array(let elements):
        for element in elements { checkStrings(element) }
    case .object(let object):
        for member in object.members {
            let key: JSONValue = member.unpairedKey.map { .unpairedString($0) } ?? .string(member.key)
            checkStrings(key)
            checkStrings(member.value)
        }
    default:
        break
    }
}

/// JSON.stringify of a JS string, written independently from the serializer: from UTF-16 code
/// units, short escapes, `\u00xx` for other controls, a lowercase escape for an unpaired
/// surrogate, everything else as UTF-8.
func referenceString(_ units: [UInt16]) -> [UInt8] {
    var out: [UInt8] = [0x22]
    func escape(_ unit: UInt16) {
        out += Array("\\u".utf8) + Array(String(unit, radix: 16).leftPadded(to: 4).utf8)
    }
    var index = 0
    while index < units.count {
        let unit = units[index]
        index += 1
        switch unit {
        case 0x22: out += [0x5C, 0x22]
        case 0x5C: out += [0x5C, 0x5C]
        case 0x08: out += [0x5C, UInt8(ascii: "b")]
        case 0x09: out += [0x5C, UInt8(ascii: "t")]
        case 0x0A: out += [0x5C, UInt8(ascii: "n")]
        case 0x0C: out += [0x5C, UInt8(ascii: "f")]
        case 0x0D: out += [0x5C, UInt8(ascii: "r")]
        case 0..<0x20: escape(unit)
        case 0xD800..<0xDC00 where index < units.count && units[index] & 0xFC00 == 0xDC00:
            let scalar = 0x10000 + (UInt32(unit - 0xD800) << 10) + UInt32(units[index] - 0xDC00)
            index += 1
            out += Array(String(Unicode.Scalar(scalar)!).utf8)
        case 0xD800..<0xE000: escape(unit)
        default: out += Array(String(Unicode.Scalar(unit)!).utf8)
        }
    }
    return out + [0x22]
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
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
    // An event name is read as a `String` (an unpaired surrogate in it as U+FFFD).
    guard let name = event?.stringValue, !name.isEmpty else { return .noEvent }
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
