import Testing
@testable import SwitchboardJSON

/// PROTOCOL.md section 4, rules 1 (not JSON) and 2 (no usable `event`).
@Suite struct InboundEnvelopeTests {
    static func read(_ text: String) -> InboundEnvelope {
        Array(text.utf8).withUnsafeBytes { InboundEnvelope.read($0) }
    }

    static let table: [(String, InboundEnvelope)] = [
        // Rule 1: not valid JSON.
        ("", .invalidJSON),
        ("   ", .invalidJSON),
        ("{", .invalidJSON),
        ("hello", .invalidJSON),
        ("{event:'x'}", .invalidJSON),
        (#"{"event":"x",}"#, .invalidJSON),
        (#"{"event":"x"} {}"#, .invalidJSON),
        (#"{"event":"x"}x"#, .invalidJSON),
        (#"{"event":"x","data":[1,]}"#, .invalidJSON),
        (#"{"event":"x","other":[1,]}"#, .invalidJSON),  // skipped members are validated too
        (#"{"event":"x","other":"\q"}"#, .invalidJSON),
        (#"{"event":"x","other":01}"#, .invalidJSON),
        (#"{"event":"x","other":NaN}"#, .invalidJSON),
        ("{\"event\":\"x\",\"other\":\"a\u{1}b\"}", .invalidJSON),
        (#"{"event":"x","e\vent":1}"#, .invalidJSON),
        (#"{"event":"x"#, .invalidJSON),
        (#"[1,2"#, .invalidJSON),
        (#"nul"#, .invalidJSON),
        // Rule 2: valid JSON, no non-empty string `event`.
        ("null", .noEvent),
        ("5", .noEvent),
        ("\"event\"", .noEvent),
        ("true", .noEvent),
        ("[]", .noEvent),
        (#"[{"event":"x"}]"#, .noEvent),
        ("{}", .noEvent),
        (" { } ", .noEvent),
        (#"{"event":5}"#, .noEvent),
        (#"{"event":""}"#, .noEvent),
        (#"{"event":null}"#, .noEvent),
        (#"{"event":["x"]}"#, .noEvent),
        (#"{"event":{"name":"x"}}"#, .noEvent),
        (#"{"Event":"x"}"#, .noEvent),
        (#"{"data":{"event":"x"}}"#, .noEvent),
        (#"{"event":"x","event":5}"#, .noEvent),  // the last duplicate wins
        (#"{"event":"x","event":""}"#, .noEvent),
        // Messages.
        (#"{"event":"ping"}"#, .message(event: "ping", data: nil, id: nil)),
        (#" {"event" : "ping"} "#, .message(event: "ping", data: nil, id: nil)),
        (#"{"event":"chat","data":{"text":"hi"}}"#, .message(event: "chat", data: ["text": "hi"], id: nil)),
        (#"{"event":"chat","data":null}"#, .message(event: "chat", data: .null, id: nil)),
        (#"{"event":"chat","data":[1,2],"id":"r1"}"#, .message(event: "chat", data: [1, 2], id: "r1")),
        (#"{"id":7,"event":"chat"}"#, .message(event: "chat", data: nil, id: 7)),
        (#"{"event":"chat","id":null}"#, .message(event: "chat", data: nil, id: .null)),
        (#"{"event":"a\nb\u00e9"}"#, .message(event: "a\nbé", data: nil, id: nil)),
        (#"{"event":5,"event":"late"}"#, .message(event: "late", data: nil, id: nil)),
        (#"{"event":"x","data":1,"data":2}"#, .message(event: "x", data: 2, id: nil)),
        (#"{"\u0065vent":"escaped-key","d\u0061ta":true}"#, .message(event: "escaped-key", data: true, id: nil)),
        (#"{"eventx":"no","event":"yes","ev":"no"}"#, .message(event: "yes", data: nil, id: nil)),
        (#"{"extra":{"deep":[1,{"x":"y"}]},"event":"e","more":"\"quoted\""}"#, .message(event: "e", data: nil, id: nil)),
        (#"{"event":"authenticate","data":{"token":"t"},"id":{"n":1}}"#,
         .message(event: "authenticate", data: ["token": "t"], id: ["n": 1])),
        (#"{"event":"join","data":{"rooms":"not-a-list"}}"#, .message(event: "join", data: ["rooms": "not-a-list"], id: nil)),
    ]

    @Test(arguments: table)
    func classifies(text: String, expected: InboundEnvelope) {
        #expect(InboundEnvelopeTests.read(text) == expected)
        // The general parser agrees on validity.
        let parsed = try? JSONValue.parse(text)
        #expect((parsed == nil) == (expected == .invalidJSON))
    }

    @Test func collectionOverloadAgrees() {
        #expect(InboundEnvelope.read(Array(#"{"event":"x","data":1}"#.utf8)) == .message(event: "x", data: 1, id: nil))
        #expect(InboundEnvelope.read(Array("null".utf8).lazy.map { $0 }) == .noEvent)
        #expect(InboundEnvelope.read([UInt8]()) == .invalidJSON)
    }

    @Test func deepNestingIsInvalidNotACrash() {
        let deepData = #"{"event":"x","data":"# + String(repeating: "[", count: 100_000)
        #expect(InboundEnvelopeTests.read(deepData) == .invalidJSON)
        let deepOther = #"{"other":"# + String(repeating: "[", count: 100_000) + #","event":"x"}"#
        #expect(InboundEnvelopeTests.read(deepOther) == .invalidJSON)
        #expect(InboundEnvelopeTests.read(String(repeating: "[", count: 100_000)) == .invalidJSON)
        // The envelope object counts as one level: data may nest 511 more.
        let ok = #"{"event":"x","data":"# + String(repeating: "[", count: 511) + String(repeating: "]", count: 511) + "}"
        #expect(InboundEnvelopeTests.read(ok) != .invalidJSON)
        let tooDeep = #"{"event":"x","data":"# + String(repeating: "[", count: 512) + String(repeating: "]", count: 512) + "}"
        #expect(InboundEnvelopeTests.read(tooDeep) == .invalidJSON)
    }

    @Test func lowMaxDepth() {
        let text = Array(#"{"event":"x","data":[[1]]}"#.utf8)
        #expect(InboundEnvelope.read(text, maxDepth: 3) == .message(event: "x", data: [[1]], id: nil))
        #expect(InboundEnvelope.read(text, maxDepth: 2) == .invalidJSON)
    }
}

@Suite struct OutboundEnvelopeTests {
    static func text(_ event: String, _ data: JSONValue?) -> String {
        String(decoding: OutboundEnvelope.encode(event: event, data: data), as: UTF8.self)
    }

    @Test func encodesLikeJSONStringify() {
        #expect(OutboundEnvelopeTests.text("connected", ["clientId": "c1", "userId": "u1"])
            == #"{"event":"connected","data":{"clientId":"c1","userId":"u1"}}"#)
        #expect(OutboundEnvelopeTests.text("error", ["message": "Invalid message format"])
            == #"{"event":"error","data":{"message":"Invalid message format"}}"#)
        #expect(OutboundEnvelopeTests.text("x", nil) == #"{"event":"x"}"#)  // data undefined: omitted
        #expect(OutboundEnvelopeTests.text("x", .null) == #"{"event":"x","data":null}"#)
        #expect(OutboundEnvelopeTests.text("x", 0) == #"{"event":"x","data":0}"#)
        #expect(OutboundEnvelopeTests.text("x", "") == #"{"event":"x","data":""}"#)
        #expect(OutboundEnvelopeTests.text("a\"b\u{1}😀", [1.5, "/"]) == #"{"event":"a\"b\u0001😀","data":[1.5,"/"]}"#)
        #expect(OutboundEnvelopeTests.text("x", ["b": 1, "1": 2]) == #"{"event":"x","data":{"1":2,"b":1}}"#)
    }

    @Test func appendsToABuffer() {
        var out: [UInt8] = Array("[".utf8)
        OutboundEnvelope.encode(event: "a", data: nil, into: &out)
        out.append(UInt8(ascii: ","))
        OutboundEnvelope.encode(event: "b", data: true, into: &out)
        out.append(UInt8(ascii: "]"))
        #expect(String(decoding: out, as: UTF8.self) == #"[{"event":"a"},{"event":"b","data":true}]"#)
    }

    @Test func relaysParsedDataUnchanged() throws {
        let inbound = #"{"event":"chat","data":{"n":1.50,"s":"é\u0001","a":[{}]}}"#
        guard case .message(let event, let data, _) = InboundEnvelopeTests.read(inbound) else {
            Issue.record("not a message")
            return
        }
        #expect(String(decoding: OutboundEnvelope.encode(event: event, data: data), as: UTF8.self)
            == #"{"event":"chat","data":{"n":1.50,"s":"é\u0001","a":[{}]}}"#)
    }
}
