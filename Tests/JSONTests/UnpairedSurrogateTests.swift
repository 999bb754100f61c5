import Testing
@testable import SwitchboardJSON

/// An unpaired surrogate escape (`"\ud800"`) is a valid JS string that no Swift `String` holds.
/// It must come out as `JSON.stringify` writes it: the expected texts below are node's output.
@Suite struct UnpairedSurrogateTests {
    static func roundTrip(_ text: String) throws -> String {
        try JSONValue.parse(text).serialized()
    }

    @Test(arguments: [
        (#""\ud800""#, #""\ud800""#),
        (#""\udc00""#, #""\udc00""#),
        (#""\uD800""#, #""\ud800""#),  // JS writes lowercase hex
        (#""\uDBFF\uDFFF""#, "\"\u{10FFFF}\""),  // a pair is a character
        (#""\ud800\udc00""#, "\"\u{10000}\""),
        (#""a\ud800\u0041""#, #""a\ud800A""#),  // a high surrogate followed by another escape
        (#""\ud800x""#, #""\ud800x""#),
        (#""\ud800\ud800""#, #""\ud800\ud800""#),
        (#""\udc00\ud800""#, #""\udc00\ud800""#),  // low then high: no pair
        (#""\ud800\ud83d\ude00""#, "\"\\ud800\u{1F600}\""),
        (#""\"\ud800\n\u00e9\/""#, "\"\\\"\\ud800\\n\u{E9}/\""),
        (#"["\udfff",{"k":"\udbff"}]"#, #"["\udfff",{"k":"\udbff"}]"#),
    ])
    func valueRoundTrip(_ input: String, _ expected: String) throws {
        #expect(try UnpairedSurrogateTests.roundTrip(input) == expected)
        // What was written reads back to the same value.
        #expect(try JSONValue.parse(expected) == JSONValue.parse(input))
    }

    @Test func keysStayDistinct() throws {
        let input = #"{"\ud800":1,"\udc00":2,"\ufffd":3,"\ud800":4}"#
        #expect(try UnpairedSurrogateTests.roundTrip(input) == "{\"\\ud800\":4,\"\\udc00\":2,\"\u{FFFD}\":3}")
        let object = try #require(try JSONValue.parse(input).objectValue)
        #expect(object.count == 4)
        #expect(object["\u{FFFD}"] == 3, "a String key finds only the plain key")
        #expect(object.members[0].unpairedKey == JSONUnpairedString(utf16: [0xD800]))
        #expect(object.members[0].key == "\u{FFFD}")
        var renamed = object.members[0]
        renamed.key = "x"
        #expect(renamed.unpairedKey == nil)
        #expect(JSONValue.object(JSONObject(members: [renamed])).serialized() == #"{"x":1}"#)
    }

    @Test func equalityAndViews() throws {
        let lone = try JSONValue.parse(#""a\ud800""#)
        #expect(lone == (try JSONValue.parse(#""a\uD800""#)))
        #expect(lone.hashValue == (try JSONValue.parse(#""a\uD800""#)).hashValue)
        #expect(lone != .string("a\u{FFFD}"))
        #expect(lone != (try JSONValue.parse(#""a\udc00""#)))
        #expect(lone.stringValue == "a\u{FFFD}")
        guard case .unpairedString(let string) = lone else {
            Issue.record("not an unpairedString: \(lone)")
            return
        }
        #expect(string.utf16 == [0x61, 0xD800])
        #expect(string.lossy == "a\u{FFFD}")
        #expect(string.description == #""a\ud800""#)
        #expect(JSONUnpairedString(utf16: [0x61, 0xD800]) == string)
        #expect(JSONUnpairedString(utf16: Array("a😀".utf16)) == nil, "well-formed: a String holds it")
        // Only escapes make unpaired surrogates: raw surrogate bytes are invalid UTF-8, U+FFFD each.
        let raw = try JSONValue.parse([0x22, 0xED, 0xA0, 0x80, 0x5C, 0x6E, 0x22])
        #expect(raw == .string("\u{FFFD}\u{FFFD}\u{FFFD}\n"))
        let mixed = try JSONValue.parse([0x22, 0xED, 0xA0, 0x80, 0x5C, 0x75, 0x64, 0x38, 0x30, 0x30, 0x22])
        #expect(mixed.serialized() == "\"\u{FFFD}\u{FFFD}\u{FFFD}\\ud800\"")
    }

    @Test func envelopeEcho() {
        // The client's data object, with unpaired surrogates in a key and in values, is echoed as sent.
        let message = #"{"event":"echo","data":{"\udc00k":["\ud800",{"v":"x\udbff"}],"s":"\ud83d\ude00"}}"#
        guard case .message(let event, let data, _) = InboundEnvelope.read(Array(message.utf8)) else {
            Issue.record("not a message")
            return
        }
        let echoed = String(decoding: OutboundEnvelope.encode(event: event, data: data), as: UTF8.self)
        #expect(echoed == "{\"event\":\"echo\",\"data\":{\"\\udc00k\":[\"\\ud800\",{\"v\":\"x\\udbff\"}],\"s\":\"\u{1F600}\"}}")
        // Not canonical (whitespace): parsed, and still exact.
        let spaced = #"{"event":"echo", "data": {"q": "\ud800", "n": "\uDC00"}, "id": "\udfff"}"#
        guard case .message(_, let data2, let id) = InboundEnvelope.read(Array(spaced.utf8)) else {
            Issue.record("not a message")
            return
        }
        #expect(data2?.serialized() == #"{"q":"\ud800","n":"\udc00"}"#)
        #expect(id?.serialized() == #""\udfff""#)
    }

    /// Random strings of surrogate escapes and ordinary pieces, in keys and values: the reader's
    /// canonical fast paths (which keep `data` as its text) agree with a full parse, and writing
    /// is stable.
    @Test func randomSurrogateTexts() throws {
        let pieces = [#"\ud800"#, #"\udbff"#, #"\udc00"#, #"\udfff"#, #"\uD801"#, #"\uDC01"#, #"\ud83d"#, #"\ude00"#,
                      "a", "é", "😀", #"\n"#, #"\\"#, #"\""#, #"\u0041"#, #"\u001f"#, "\u{FFFD}"]
        var generator = SystemRandomNumberGenerator()
        func string() -> String {
            (0..<Int.random(in: 0...6, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
        }
        var keptAsText = 0
        for _ in 0..<3000 {
            var members: [String] = []
            for index in 0..<Int.random(in: 1...4, using: &generator) {
                members.append("\"\(string())_\(index)\":\"\(string())\"")  // no array index: order kept
            }
            let text = "{" + members.joined(separator: ",") + "}"
            if CanonicalTextTests.check(Array(text.utf8)) == true { keptAsText += 1 }
            let value = try JSONValue.parse(text)
            let written = value.serialized()
            #expect(try JSONValue.parse(written) == value, "\(text)")
            #expect(try JSONValue.parse(written).serialized() == written, "\(text)")
        }
        #expect(keptAsText > 100, "the fast path should keep canonical texts with unpaired escapes")
    }
}
