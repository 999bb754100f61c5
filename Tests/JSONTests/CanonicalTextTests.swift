import Synchronization
import TestSupport
import Testing
@testable import SwitchboardJSON

/// A canonical `data` object is kept as its text (`JSONText`) and written as it is. That is only
/// right if the text is exactly what parsing and serializing it would give: these tests compare
/// the envelope reader against a plain parse for hand-picked and for random texts.
@Suite struct CanonicalTextTests {
    /// The envelope's `data` as the reader gives it, and whether it is held as text.
    static func readData(_ dataText: [UInt8]) -> (data: JSONValue?, asText: Bool)? {
        let envelope = Array(#"{"event":"e","data":"#.utf8) + dataText + Array("}".utf8)
        guard case .message(_, let data, _) = InboundEnvelope.read(envelope) else { return nil }
        if case .object(let object)? = data, case .text = object.storage { return (data, true) }
        return (data, false)
    }

    /// The reference: a full parse of the same text, serialized.
    static func check(_ dataText: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Bool? {
        let reference = try? JSONValue.parse(dataText)
        guard let (data, asText) = readData(dataText) else {
            #expect(reference == nil, "the reader rejects \(String(decoding: dataText, as: UTF8.self))", sourceLocation: sourceLocation)
            return nil
        }
        guard let reference else {
            Issue.record("the reader accepts invalid \(String(decoding: dataText, as: UTF8.self))", sourceLocation: sourceLocation)
            return nil
        }
        var written: [UInt8] = []
        data?.serialize(into: &written)
        var expected: [UInt8] = []
        reference.serialize(into: &expected)
        #expect(written == expected, "\(String(decoding: dataText, as: UTF8.self))", sourceLocation: sourceLocation)
        #expect(data == reference, sourceLocation: sourceLocation)
        // A text is read by key where it lies (`JSONText.member`): the same values as the parse.
        if case .object(let object) = reference {
            for member in object.members where member.unpairedKey == nil {
                #expect(data?[member.key] == object[member.key], "\(member.key)", sourceLocation: sourceLocation)
            }
            #expect(data?["absent"] == object["absent"], sourceLocation: sourceLocation)
        }
        if asText {
            #expect(dataText == expected, "kept as text, but not canonical: \(String(decoding: dataText, as: UTF8.self))",
                    sourceLocation: sourceLocation)
        }
        return asText
    }

    @Test(arguments: [
        (#"{}"#, true),
        (#"{"s":1,"t":1733318400123456789,"p":"xxxx"}"#, true),
        (#"{"a":{"b":[1,-0,1.50,2e-7,true,false,null,"",{}]},"c":[]}"#, true),
        (#"{"q":"say \"hi\"\\ \n\t\r\b\f \u0000\u001f\u007f"}"#, false),  // \u007f: DEL is written raw
        (#"{"q":"say \"hi\"\\ \n\t\r\b\f \u0000\u001f"}"#, true),
        (#"{"q":"\u001F"}"#, false),  // uppercase hex
        (#"{"q":"\u000a"}"#, false),  // \n has a short form
        (#"{"q":"a\/b"}"#, false),
        (#"{"q":"\u00e9"}"#, false),
        (#"{"q":"é 中 😀 \#u{2028}"}"#, true),
        (#"{"q":"\ud83d\ude00"}"#, false),
        (#"{"q":"\ud800"}"#, true),  // an unpaired surrogate: JS writes the escape, lowercase
        (#"{"q":"\uD800"}"#, false),
        (#"{"q":"\udc00\ud800 \ud800x"}"#, true),
        (#"{"\udbff":"\udfff"}"#, true),
        (#"{"q":"\ud800\udc00"}"#, false),  // a pair: JS writes the character
        (#"{"\ud800":1,"\ud800":2}"#, false),
        (#"{"\ud800":1,"\udc00":2,"\ufffd":3}"#, false),  // \ufffd is written raw
        (#"{"\ud800":1,"\udc00":2,"\#u{FFFD}":3}"#, true),
        (#"{ "a":1}"#, false),
        (#"{"a" :1}"#, false),
        (#"{"a": 1}"#, false),
        (#"{"a":1 }"#, false),
        (#"{"a":[1, 2]}"#, false),
        (#"{"a":[ ]}"#, false),
        (#"{"a":1,"a":2}"#, false),  // a duplicate: JS keeps one member
        (#"{"a":1,"b":{"a":2}}"#, true),  // the same key in another object is no duplicate
        (#"{"b":{"x":1},"x":2}"#, true),
        (#"{"b":1,"0":2}"#, false),  // an array index: JS writes it first
        (#"{"b":1,"01":2,"4294967295":3,"-1":4}"#, true),  // not array indices
        (#"{"\u0061":1,"a":2}"#, false),
    ] as [(String, Bool)])
    func handPicked(_ text: String, canonical: Bool) {
        #expect(CanonicalTextTests.check(Array(text.utf8)) == canonical, "\(text)")
    }

    @Test func invalidUTF8IsParsedAndRepaired() {
        // A binary frame is read as JSON too: invalid UTF-8 becomes U+FFFD, so it is not canonical.
        for bad: [UInt8] in [[0xFF], [0xC0, 0xAF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
                             [0xC3], [0x80], [0xE4, 0xB8]] {
            let text = Array(#"{"q":"ab"#.utf8) + bad + Array(#"cd"}"#.utf8)
            #expect(CanonicalTextTests.check(text) == false, "\(bad)")
        }
        #expect(CanonicalTextTests.check(Array(#"{"q":"ab"#.utf8) + [0xF0, 0x9F, 0x98, 0x80] + Array(#""}"#.utf8)) == true)
    }

    @Test func tooManyKeysToCompareAreParsed() {
        let keys = (0..<100).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        #expect(CanonicalTextTests.check(Array("{\(keys)}".utf8)) == false)
        let fewer = (0..<20).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        #expect(CanonicalTextTests.check(Array("{\(fewer)}".utf8)) == true)
    }

    @Test func theDepthLimitHoldsForText() {
        let deep = String(repeating: #"{"a":"#, count: 600) + "1" + String(repeating: "}", count: 600)
        #expect(CanonicalTextTests.readData(Array(deep.utf8)) == nil)
        // Keys along the path are remembered (64 at most): deeper texts are parsed, as valid as ever.
        let shallow = String(repeating: #"{"a":"#, count: 50) + "1" + String(repeating: "}", count: 50)
        #expect(CanonicalTextTests.check(Array(shallow.utf8)) == true)
        let deeper = String(repeating: #"{"a":"#, count: 100) + "1" + String(repeating: "}", count: 100)
        #expect(CanonicalTextTests.check(Array(deeper.utf8)) == false)
    }

    /// Random texts of random values, written with random spellings: whitespace, every kind of
    /// escape, duplicate and array-index keys, non-ASCII and invalid UTF-8.
    @Test func randomSpellingsReadAsAParse() {
        var rng = RoundTripTests.Generator(seed: 0xC0FFEE)
        var asText = 0
        var parsed = 0
        for _ in 0..<20_000 {
            var text: [UInt8] = []
            CanonicalTextTests.writeObject(&rng, depth: 0, into: &text)
            switch CanonicalTextTests.check(text) {
            case true?: asText += 1
            case false?: parsed += 1
            case nil: break
            }
        }
        // Both paths are exercised, or this test would pass on a reader that never keeps text.
        #expect(asText > 2_000)
        #expect(parsed > 2_000)
    }

    /// The fast scan answers only when it is sure: then the exact scan agrees on validity,
    /// canonicity and the end; and it does answer for the ordinary canonical texts.
    @Test func theFastScanAgreesWithTheExactOne() {
        var rng = RoundTripTests.Generator(seed: 0xFA57)
        var answered = 0
        for round in 0..<20_000 {
            var text: [UInt8] = []
            CanonicalTextTests.writeObject(&rng, depth: 0, into: &text)
            if round % 3 == 0 { text.removeLast(rng.below(min(4, text.count)) + 1) }  // cut short
            if round % 5 == 0 { text += Array(",]".utf8) }  // trailing bytes after the object
            text.withUnsafeBytes { bytes in
                let depthLimit = round % 7 == 0 ? 3 : JSONValue.defaultMaxDepth
                guard let end = CanonicalScan.object(bytes.baseAddress!, from: 0, count: bytes.count, depthLimit: depthLimit) else { return }
                answered += 1
                var parser = JSONParser(bytes.baseAddress!, count: bytes.count, maxDepth: depthLimit + 1)
                let canonical = try? parser.skipCanonical(depth: 1)
                #expect(canonical == true && parser.pos == end, "\(String(decoding: text, as: UTF8.self))")
            }
        }
        #expect(answered > 3_000)
        let wsload = Array(#"{"s":12,"t":1733318400123456789,"p":"xxxx","q":[1,-0.5e+3,true,null,{"a":"\n\""}]}"#.utf8)
        let end = wsload.withUnsafeBytes { CanonicalScan.object($0.baseAddress!, from: 0, count: $0.count, depthLimit: 512) }
        #expect(end == wsload.count)
    }

    /// `{"event":..,"data":{..}}` as `JSON.stringify` writes it has a fast path: where it answers,
    /// the general reader gives the same envelope; it answers for the plain shapes.
    @Test func theStringifiedEnvelopeFastPathAgreesWithTheGeneralReader() {
        func both(_ bytes: [UInt8]) -> (fast: InboundEnvelope?, general: InboundEnvelope) {
            bytes.withUnsafeBytes { buffer in
                let text: (Range<Int>) -> JSONText = { JSONText(bytes, $0) }
                var fast = JSONParser(buffer.baseAddress!, count: buffer.count, maxDepth: JSONValue.defaultMaxDepth)
                var general = JSONParser(buffer.baseAddress!, count: buffer.count, maxDepth: JSONValue.defaultMaxDepth)
                return (fast.readStringifiedEnvelope(text: text), (try? general.readEnvelope(text: text)) ?? .invalidJSON)
            }
        }
        let plain = [#"{"event":"x"}"#, #"{"event":"echo","data":{"s":1,"p":"xx"}}"#, #"{"event":"a b-c","data":{}}"#]
        for text in plain {
            let (fast, general) = both(Array(text.utf8))
            #expect(fast != nil, "\(text)")
            #expect(fast == nil || fast == general, "\(text)")
        }
        let others = [#"{"event":""}"#, #"{"event":"","data":{}}"#, #"{"event":"x","data":{},"data":1}"#,
                      #"{"event":"x","data":{}} "#, #"{"event":"x","data":{"a":1}"#, #"{"event":"x","data":[1]}"#,
                      #"{"event":"x\n","data":{}}"#, #"{"event":"é","data":{}}"#, #"{"event":"x","data":{"a":01}}"#,
                      #"{"event":"x","data":{"a":1},"id":2}"#, #"{"event":"x""#, #"{"event":"x"}}"#]
        for text in others {
            let (fast, general) = both(Array(text.utf8))
            #expect(fast == nil || fast == general, "\(text)")
        }
        var rng = RoundTripTests.Generator(seed: 0xE7E7)
        var answered = 0
        for round in 0..<10_000 {
            var data: [UInt8] = []
            CanonicalTextTests.writeObject(&rng, depth: 0, into: &data)
            var text = Array(#"{"event":"e","data":"#.utf8) + data + Array("}".utf8)
            if round % 4 == 0 { text.removeLast(rng.below(3) + 1) }
            let (fast, general) = both(text)
            if let fast {
                answered += 1
                #expect(fast == general, "\(String(decoding: text, as: UTF8.self))")
            }
        }
        #expect(answered > 1_000)
    }

    /// A reply of a text-held `data` takes the pass-through copy: the same bytes as the writer,
    /// for random objects and event names (escapes, non-ASCII, no data), appended after what
    /// the array already holds.
    @Test func thePassThroughReplyIsTheWritersBytes() {
        var rng = RoundTripTests.Generator(seed: 0x5EED)
        let names = ["echo", "a b-c", "é😀", "quote\"d", "back\\slash", "tab\t", "x"]
        var passedThrough = 0
        for round in 0..<5_000 {
            var text: [UInt8] = []
            CanonicalTextTests.writeObject(&rng, depth: 0, into: &text)
            guard let (data, asText) = CanonicalTextTests.readData(text) else { continue }
            let event = names[round % names.count]
            let value: JSONValue? = round % 11 == 0 ? nil : data
            var appended = Array("prefix".utf8)
            if asText || value == nil, OutboundEnvelope.appendPassThrough(event: event, data: value, to: &appended) {
                passedThrough += 1
            } else {
                OutboundEnvelope.encode(event: event, data: value, into: &appended)
            }
            var writer: [UInt8] = []
            ByteWriter.with { w in
                OutboundEnvelope.write(event: event, data: value, to: &w)
                writer.append(contentsOf: w.bytes)
            }
            #expect(appended == Array("prefix".utf8) + writer, "\(event) \(String(decoding: text, as: UTF8.self))")
        }
        #expect(passedThrough > 1_000)
    }

    @Test func mutatingATextObjectChangesOnlyTheCopy() throws {
        guard case .object(let original)? = CanonicalTextTests.readData(Array(#"{"a":1,"b":"x"}"#.utf8))?.data else {
            Issue.record("not an object")
            return
        }
        var copy = original
        copy["a"] = "changed"
        copy.append(key: "c", value: true)
        #expect(JSONValue.object(copy).serialized() == #"{"a":"changed","b":"x","c":true}"#)
        #expect(JSONValue.object(original).serialized() == #"{"a":1,"b":"x"}"#)
        #expect(original["b"] == "x")
        #expect(original.keys == ["a", "b"])
        #expect(original.map(\.key) == ["a", "b"])
        #expect(Set([JSONValue.object(original), try JSONValue.parse(#"{"a":1,"b":"x"}"#)]).count == 1)
    }

    /// A text-backed object is an immutable value: read from many tasks at once, each gets the member.
    @Test func membersReadFromManyTasksAgree() async {
        guard case .object(let object)? = CanonicalTextTests.readData(Array(#"{"n":[1,2,3],"s":"t"}"#.utf8))?.data else {
            Issue.record("not an object")
            return
        }
        let results = await withTaskGroup(of: JSONValue?.self) { group in
            for _ in 0..<16 { group.addTask { object["n"] } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0 == [1, 2, 3] })
    }

    // MARK: - Random spellings

    static func pick<T>(_ rng: inout RoundTripTests.Generator, _ options: [T]) -> T { options[rng.below(options.count)] }

    static func space(_ rng: inout RoundTripTests.Generator, into out: inout [UInt8]) {
        if rng.below(40) == 0 { out += pick(&rng, [" ", "\n", "\t", "\r", "  "]).utf8 }
    }

    static func writeString(_ rng: inout RoundTripTests.Generator, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for _ in 0..<rng.below(6) {
            let spellings: [[UInt8]] = [
                Array("a".utf8), Array("x".utf8), Array("0".utf8), Array("é".utf8), Array("😀".utf8), Array("\u{2028}".utf8),
                Array(#"\""#.utf8), Array(#"\\"#.utf8), Array(#"\n"#.utf8), Array(#"\t"#.utf8), Array(#"\b"#.utf8),
                Array(#"\u0000"#.utf8), Array(#"\u001f"#.utf8), Array(#"\u001F"#.utf8), Array(#"\u000a"#.utf8),
                Array(#"\u0041"#.utf8), Array(#"\/"#.utf8), Array("/".utf8), Array(#"\ud83d\ude00"#.utf8),
                Array(#"\udc00"#.utf8), [0xFF], [0xC3], [0xED, 0xA0, 0x80],
            ]
            // Mostly plain letters, so that many strings stay canonical.
            out += rng.below(3) == 0 ? pick(&rng, spellings) : Array("k".utf8)
        }
        out.append(UInt8(ascii: "\""))
    }

    static func writeValue(_ rng: inout RoundTripTests.Generator, depth: Int, into out: inout [UInt8]) {
        switch rng.below(depth > 3 ? 4 : 6) {
        case 0: out += pick(&rng, ["null", "true", "false"]).utf8
        case 1: out += pick(&rng, ["0", "-0", "7", "-12", "1.50", "2e-7", "1E+2", "123456789012345678901234567890"]).utf8
        case 2, 3: writeString(&rng, into: &out)
        case 4:
            out.append(UInt8(ascii: "["))
            for index in 0..<rng.below(4) {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                space(&rng, into: &out)
                writeValue(&rng, depth: depth + 1, into: &out)
                space(&rng, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        default: writeObject(&rng, depth: depth + 1, into: &out)
        }
    }

    static func writeObject(_ rng: inout RoundTripTests.Generator, depth: Int, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for index in 0..<rng.below(5) {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            space(&rng, into: &out)
            switch rng.below(12) {
            case 0: out += pick(&rng, [#""0""#, #""17""#, #""01""#, #""-1""#]).utf8  // array index or look-alike
            case 1: out += pick(&rng, [#""a""#, #""\u0061""#]).utf8  // duplicates, spelled two ways
            case 2: writeString(&rng, into: &out)
            default: out += "\"k\(index)\"".utf8
            }
            space(&rng, into: &out)
            out.append(UInt8(ascii: ":"))
            space(&rng, into: &out)
            writeValue(&rng, depth: depth, into: &out)
            space(&rng, into: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}
