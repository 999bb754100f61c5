import Testing
@testable import SwitchboardJSON

/// Expected texts are what `JSON.stringify` writes, written out by hand.
@Suite struct SerializerTests {
    static let strings: [(String, String)] = [
        ("", #""""#),
        ("plain", #""plain""#),
        ("\"", #""\"""#),
        ("\\", #""\\""#),
        ("/", #""/""#),
        ("</script>", #""</script>""#),
        ("\u{8}\u{9}\u{A}\u{C}\u{D}", #""\b\t\n\f\r""#),
        ("\u{0}", #""\u0000""#),
        ("\u{1}", #""\u0001""#),
        ("\u{B}", #""\u000b""#),
        ("\u{E}", #""\u000e""#),
        ("\u{1A}", #""\u001a""#),
        ("\u{1F}", #""\u001f""#),
        (" ", #"" ""#),
        ("\u{7F}", "\"\u{7F}\""),
        ("é中", #""é中""#),
        ("😀", #""😀""#),
        ("\u{2028}\u{2029}", "\"\u{2028}\u{2029}\""),
        ("\u{FFFD}", #""�""#),
        ("a\"b\\c\nd", #""a\"b\\c\nd""#),
        ("0123456789abcdef\u{1}0123456789abcdef\"", #""0123456789abcdef\u00010123456789abcdef\"""#),
    ]

    @Test(arguments: strings)
    func escapesStringsLikeJSONStringify(string: String, expected: String) {
        #expect(JSONValue.string(string).serialized() == expected)
        var out: [UInt8] = Array("x".utf8)
        JSONValue.serializeString(string, into: &out)
        #expect(out == Array(("x" + expected).utf8))
    }

    @Test func escapesEveryControlCharacter() {
        let named: [UInt32: String] = [8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"]
        let hex = Array("0123456789abcdef")
        for code in UInt32(0)..<0x20 {
            let escape = named[code] ?? "\\u00\(hex[Int(code >> 4)])\(hex[Int(code & 15)])"
            let string = String(Unicode.Scalar(code)!)
            #expect(JSONValue.string(string).serialized() == "\"\(escape)\"", "U+\(code)")
        }
    }

    @Test func serializesCompactly() {
        let value: JSONValue = ["a": [1, "two", .null, true, false, [:], []], "b": ["c": 1.5]]
        #expect(value.serialized() == #"{"a":[1,"two",null,true,false,{},[]],"b":{"c":1.5}}"#)
        #expect(value.description == value.serialized())
        var out: [UInt8] = Array("prefix:".utf8)
        value.serialize(into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "prefix:" + value.serialized())
    }

    @Test func numbersKeepTheirLiteralText() throws {
        let text = "[1.50,-0,1e400,1E5,0.1e1,-0.0,123456789012345678901234567890,1e-400]"
        #expect(try JSONValue.parse(text).serialized() == text)
        #expect(try JSONValue.parse(" [ 1.50 , -0 ] ").serialized() == "[1.50,-0]")
    }

    @Test func integerLiteralsAreExactAtTheEdges() throws {
        // Canonical integers within Int are stored as values; everything else keeps its text.
        let text = "[0,-1,7,9223372036854775807,-9223372036854775808,9223372036854775808,"
            + "-9223372036854775809,9999999999999999999,10000000000000000000,1000000000000000000,-0,1.0,1e2]"
        #expect(try JSONValue.parse(text).serialized() == text)
        #expect(JSONNumber(literal: "42") == JSONNumber(42))
        #expect(JSONNumber(literal: "42")?.hashValue == JSONNumber(42).hashValue)
        #expect(JSONNumber(literal: "-0") != JSONNumber(0))
        #expect(JSONNumber(literal: "42.0") != JSONNumber(42))
        #expect(JSONNumber(Int.min).literal == "-9223372036854775808")
        #expect(JSONNumber(UInt64.max).literal == "18446744073709551615")
        #expect(JSONNumber(literal: "-9223372036854775808")?.int == Int.min)
        #expect(JSONNumber(literal: "9223372036854775808")?.int == nil)
    }

    static let doubles: [(Double, String)] = [
        (0, "0"), (-0.0, "0"), (1, "1"), (-1, "-1"), (100, "100"), (1.5, "1.5"), (-1.5, "-1.5"),
        (0.1, "0.1"), (0.3, "0.3"), (1.0 / 3, "0.3333333333333333"), (123.456, "123.456"),
        (1e16, "10000000000000000"), (1e20, "100000000000000000000"),
        (123456789012345683968, "123456789012345680000"), (1e21, "1e+21"), (1.5e21, "1.5e+21"),
        (1e300, "1e+300"), (1.7976931348623157e308, "1.7976931348623157e+308"),
        (0x1p53, "9007199254740992"), (0x1p54, "18014398509481984"),
        (0.000001, "0.000001"), (0.000001234, "0.000001234"), (0.0000012, "0.0000012"),
        (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (-2.5e-8, "-2.5e-8"), (Double.leastNonzeroMagnitude, "5e-324"),
        (2.2250738585072014e-308, "2.2250738585072014e-308"),
    ]

    @Test(arguments: doubles)
    func formatsDoublesLikeJavaScript(value: Double, expected: String) {
        #expect(JSONValue(value).serialized() == expected)
        #expect(JSONNumber(value)?.literal == expected)
    }

    @Test func nonFiniteDoublesBecomeNull() {
        #expect(JSONNumber(Double.nan) == nil)
        #expect(JSONNumber(Double.infinity) == nil)
        #expect(JSONValue(-Double.infinity) == .null)
        #expect(JSONValue(Double.nan).serialized() == "null")
    }

    @Test func integersAreExact() {
        #expect(JSONValue(Int.max).serialized() == "9223372036854775807")
        #expect(JSONValue(Int.min).serialized() == "-9223372036854775808")
        #expect(JSONNumber(UInt64.max).literal == "18446744073709551615")
        #expect(JSONNumber(-42 as Int8).literal == "-42")
    }

    @Test func objectsUseJavaScriptPropertyOrder() throws {
        // Duplicates: one entry at the first position, holding the last value.
        #expect(try JSONValue.parse(#"{"a":1,"b":2,"a":3}"#).serialized() == #"{"a":3,"b":2}"#)
        #expect(try JSONValue.parse(#"{"1":1,"b":2,"1":3}"#).serialized() == #"{"1":3,"b":2}"#)
        // Array-index keys first, ascending; "01" and 2^32-1 are ordinary names.
        let mixed = #"{"b":1,"4294967295":2,"4294967294":3,"01":4,"1":5,"0":6,"10":7,"2":8}"#
        #expect(try JSONValue.parse(mixed).serialized()
            == #"{"0":6,"1":5,"2":8,"10":7,"4294967294":3,"b":1,"4294967295":2,"01":4}"#)
        // Already in order: unchanged.
        let plain = #"{"event":"x","data":{"z":1,"y":[{"b":1,"a":2}]},"id":"7"}"#
        #expect(try JSONValue.parse(plain).serialized() == plain)
        // Keys that collide in the duplicate filter but differ.
        let similar = #"{"ab":1,"aab":2,"acb":3,"adb":4,"ba":5,"bba":6}"#
        #expect(try JSONValue.parse(similar).serialized() == similar)
    }

    @Test func duplicateDetectionWithManyKeys() throws {
        var object = JSONObject()
        for index in 0..<200 { object.append(key: "key\(index)", value: .number(JSONNumber(index))) }
        let members = (0..<200).map { #""key\#($0)":\#($0)"# }
        #expect(JSONValue.object(object).serialized() == "{" + members.joined(separator: ",") + "}")
        object.append(key: "key7", value: "last")
        var replaced = members
        replaced[7] = #""key7":"last""#
        #expect(JSONValue.object(object).serialized() == "{" + replaced.joined(separator: ",") + "}")
    }

    @Test func javaScriptTextOfLiterals() throws {
        let cases: [(String, String)] = [
            ("1.50", "1.5"), ("-0", "0"), ("-0.0", "0"), ("1E5", "100000"), ("0.1e1", "1"), ("1e400", "null"),
            ("-1e400", "null"), ("1e-400", "0"), ("1e21", "1e+21"), ("12345678901234567890", "12345678901234567000"),
        ]
        for (literal, expected) in cases {
            #expect(JSONNumber(literal: literal)?.javaScriptText == expected, "\(literal)")
        }
    }
}

/// Found by fuzzing (fuzz/json/regressions): keys that Swift's String equality merges
/// (canonically equivalent spellings) are distinct keys in JavaScript.
@Suite struct CanonicallyEquivalentKeyTests {
    @Test func equivalentSpellingsStayDistinctKeys() throws {
        // {"é":1,"é":2,"0":3} with é precomposed, then e + U+0301: JS keeps both.
        let text = "{\"\u{E9}\":1,\"e\u{301}\":2,\"0\":3}"
        let value = try JSONValue.parse(text)
        #expect(value.serialized() == "{\"0\":3,\"\u{E9}\":1,\"e\u{301}\":2}")
        #expect(value["e\u{301}"] == 2)
        #expect(value["\u{E9}"] == 1)
    }
}
