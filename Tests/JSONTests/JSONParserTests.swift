import Testing
@testable import SwitchboardJSON

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONValue.parse(#" {"a": [null, true, false, 0, -1.5e3, "x"], "b": {}, "c": []} "#)
        let expected: JSONValue = [
            "a": [.null, true, false, 0, .number(JSONNumber(literal: "-1.5e3")!), "x"],
            "b": .object([:]),
            "c": [],
        ]
        #expect(value == expected)
    }

    static let topLevel: [(String, JSONValue)] = [
        ("null", .null), ("true", true), ("false", false), ("0", 0), ("\"\"", ""),
        (" \t\r\n 7 \t\r\n", 7), ("[]", []), ("{}", .object([:])), ("[[[]]]", [[[]]]),
    ]

    @Test(arguments: topLevel)
    func parsesTopLevelValues(text: String, expected: JSONValue) throws {
        #expect(try JSONValue.parse(text) == expected)
    }

    @Test func acceptsEveryInputForm() throws {
        let bytes = Array(#"{"k":[1,2]}"#.utf8)
        let expected: JSONValue = ["k": [1, 2]]
        #expect(try JSONValue.parse(bytes) == expected)
        #expect(try JSONValue.parse(bytes[...]) == expected)
        #expect(try bytes.withUnsafeBytes { try JSONValue.parse($0) } == expected)
        #expect(try JSONValue.parse(#"{"k":[1,2]}"#[...]) == expected)
        #expect(try JSONValue.parse(bytes.lazy.map { $0 }) == expected)  // not contiguous
    }

    static let strings: [(String, String)] = [
        (#""plain""#, "plain"),
        (#""a\"b\\c\/d""#, "a\"b\\c/d"),
        (#""\b\f\n\r\t""#, "\u{8}\u{C}\n\r\t"),
        (#""\u0041\u00e9\u00E9\u4e2d""#, "Aéé中"),
        (#""\ud83d\ude00""#, "😀"),
        (#""\uD83D\uDE00""#, "😀"),
        (#""😀 é 中""#, "😀 é 中"),
        (#""before\u0000after""#, "before\u{0}after"),
        (#""\u007f""#, "\u{7F}"),
        (#""long run of plain text before the escape \n and after it""#,
         "long run of plain text before the escape \n and after it"),
    ]

    @Test(arguments: strings)
    func decodesStrings(text: String, expected: String) throws {
        #expect(try JSONValue.parse(text) == .string(expected))
    }

    /// A lone surrogate (accepted by JSON.parse) cannot live in a Swift String: an
    /// `unpairedString`, whose `String` view has U+FFFD in its place.
    static let unpairedStrings: [(String, String, [UInt16])] = [
        (#""\ud800""#, "\u{FFFD}", [0xD800]),
        (#""\udc00""#, "\u{FFFD}", [0xDC00]),
        (#""\ud800x""#, "\u{FFFD}x", [0xD800, 0x78]),
        (#""\udc00\ud800""#, "\u{FFFD}\u{FFFD}", [0xDC00, 0xD800]),
        (#""\ud800\ud800\udc00""#, "\u{FFFD}\u{10000}", [0xD800, 0xD800, 0xDC00]),
        (#""\ud800\n""#, "\u{FFFD}\n", [0xD800, 0x0A]),
        (#""\ud800\u0041""#, "\u{FFFD}A", [0xD800, 0x41]),
    ]

    @Test(arguments: unpairedStrings)
    func decodesUnpairedSurrogates(text: String, lossy: String, utf16: [UInt16]) throws {
        let value = try JSONValue.parse(text)
        #expect(value == .unpairedString(try #require(JSONUnpairedString(utf16: utf16))))
        #expect(value.stringValue == lossy)
    }

    @Test func replacesInvalidUTF8InsideStrings() throws {
        let bytes: [UInt8] = [0x22, 0x61, 0xFF, 0x62, 0xE2, 0x82, 0x22]  // "a<FF>b<E2 82>"
        #expect(try JSONValue.parse(bytes) == .string("a\u{FFFD}b\u{FFFD}"))
    }

    @Test func findsQuotesAtEveryPositionOfTheWordScan() throws {
        for length in 0..<40 {
            let body = String(repeating: "a", count: length)
            #expect(try JSONValue.parse("\"\(body)\"") == .string(body))
            #expect(try JSONValue.parse("[\"\(body)\\n\(body)\"]") == [.string(body + "\n" + body)])
            let withControl = Array("\"\(body)\u{1}\(body)\"".utf8)
            #expect(throws: JSONParseError(.controlCharacterInString, at: 1 + length)) {
                try JSONValue.parse(withControl)
            }
        }
    }

    @Test func keepsDuplicateKeysInOrder() throws {
        let value = try JSONValue.parse(#"{"a":1,"b":2,"a":3}"#)
        #expect(value.objectValue?.keys == ["a", "b", "a"])
        #expect(value["a"] == 3)
    }

    /// (input, reason, offset)
    static let invalid: [(String, JSONParseError.Reason, Int)] = [
        ("", .unexpectedEnd, 0),
        ("   ", .unexpectedEnd, 3),
        ("[1,2,]", .unexpectedByte(UInt8(ascii: "]")), 5),
        (#"{"a":1,}"#, .unexpectedByte(UInt8(ascii: "}")), 7),
        ("[,1]", .unexpectedByte(UInt8(ascii: ",")), 1),
        ("[1 2]", .unexpectedByte(UInt8(ascii: "2")), 3),
        (#"{"a" 1}"#, .unexpectedByte(UInt8(ascii: "1")), 5),
        (#"{"a":}"#, .unexpectedByte(UInt8(ascii: "}")), 5),
        (#"{a:1}"#, .unexpectedByte(UInt8(ascii: "a")), 1),
        (#"{1:1}"#, .unexpectedByte(UInt8(ascii: "1")), 1),
        ("'a'", .unexpectedByte(UInt8(ascii: "'")), 0),
        (#"{'a':1}"#, .unexpectedByte(UInt8(ascii: "'")), 1),
        ("NaN", .unexpectedByte(UInt8(ascii: "N")), 0),
        ("Infinity", .unexpectedByte(UInt8(ascii: "I")), 0),
        ("-Infinity", .invalidNumber, 1),
        ("undefined", .unexpectedByte(UInt8(ascii: "u")), 0),
        ("01", .invalidNumber, 1),
        ("-01", .invalidNumber, 2),
        ("00", .invalidNumber, 1),
        ("+1", .unexpectedByte(UInt8(ascii: "+")), 0),
        (".5", .unexpectedByte(UInt8(ascii: ".")), 0),
        ("1.", .unexpectedEnd, 2),
        ("1.e5", .invalidNumber, 2),
        ("1e", .unexpectedEnd, 2),
        ("1e+", .unexpectedEnd, 3),
        ("1ex", .invalidNumber, 2),
        ("-", .unexpectedEnd, 1),
        ("- 1", .invalidNumber, 1),
        ("0x10", .trailingData, 1),
        ("1 2", .trailingData, 2),
        ("{} x", .trailingData, 3),
        ("nul", .unexpectedEnd, 3),
        ("nulL", .unexpectedByte(UInt8(ascii: "L")), 3),
        ("True", .unexpectedByte(UInt8(ascii: "T")), 0),
        ("truex", .trailingData, 4),
        (#""abc"#, .unexpectedEnd, 4),
        (#"["abc"#, .unexpectedEnd, 5),
        (#""abc\"#, .unexpectedEnd, 5),
        (#"{"a":1"#, .unexpectedEnd, 6),
        ("[1", .unexpectedEnd, 2),
        ("[", .unexpectedEnd, 1),
        ("{", .unexpectedEnd, 1),
        ("\"a\tb\"", .controlCharacterInString, 2),
        ("\"a\nb\"", .controlCharacterInString, 2),
        ("\"\u{0}\"", .controlCharacterInString, 1),
        (#""\x41""#, .invalidEscape, 1),
        (#""\a""#, .invalidEscape, 1),
        (#""\'""#, .invalidEscape, 1),
        (#""ok\U0041""#, .invalidEscape, 3),
        (#""\u12""#, .invalidUnicodeEscape, 5),
        (#""\u12"#, .unexpectedEnd, 5),
        (#""\uZZZZ""#, .invalidUnicodeEscape, 3),
        (#""\ud800\u12""#, .invalidUnicodeEscape, 11),
        ("// c\n1", .unexpectedByte(UInt8(ascii: "/")), 0),
        ("1 /* c */", .trailingData, 2),
        ("\u{FEFF}{}", .unexpectedByte(0xEF), 0),
        ("\u{A0}1", .unexpectedByte(0xC2), 0),
        ("\u{C}1", .unexpectedByte(0x0C), 0),
    ]

    @Test(arguments: invalid)
    func rejectsInvalidJSON(text: String, reason: JSONParseError.Reason, offset: Int) {
        #expect(throws: JSONParseError(reason, at: offset)) { try JSONValue.parse(text) }
    }

    @Test func depthLimitIsAnErrorNotACrash() throws {
        func nested(_ depth: Int) -> String {
            String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        }
        #expect(try JSONValue.parse(nested(512)).arrayValue != nil)
        #expect(throws: JSONParseError(.depthLimitExceeded, at: 512)) { try JSONValue.parse(nested(513)) }
        #expect(throws: JSONParseError(.depthLimitExceeded, at: 512)) {
            try JSONValue.parse(String(repeating: "[", count: 1_000_000))
        }
        let objects = String(repeating: #"{"a":"#, count: 600) + "1" + String(repeating: "}", count: 600)
        #expect(throws: JSONParseError(.depthLimitExceeded, at: 512 * 5)) { try JSONValue.parse(objects) }
        #expect(throws: JSONParseError(.depthLimitExceeded, at: 3)) { try JSONValue.parse(nested(4), maxDepth: 3) }
        #expect(try JSONValue.parse(nested(3), maxDepth: 3) == [[[]]])
    }

    @Test func errorDescriptionNamesTheOffset() {
        #expect(JSONParseError(.unexpectedByte(UInt8(ascii: "}")), at: 7).description == "JSON: unexpected character '}' at byte 7")
        #expect(JSONParseError(.unexpectedByte(0xEF), at: 0).description == "JSON: unexpected byte 0xef at byte 0")
        #expect(JSONParseError(.depthLimitExceeded, at: 512).description == "JSON: nesting too deep at byte 512")
    }
}
