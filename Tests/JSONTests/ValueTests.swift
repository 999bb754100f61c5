import TestSupport
import Testing
@testable import SwitchboardJSON

@Suite struct NumberTests {
    @Test func validatesLiterals() {
        for valid in ["0", "-0", "1", "-1", "10", "1.5", "1.50", "1e5", "1E+5", "1e-5", "-0.0e0", "1e400", "123456789012345678901234567890"] {
            #expect(JSONNumber(literal: valid)?.literal == valid, "\(valid)")
        }
        for invalid in ["", "-", "+1", "01", "-01", "1.", ".1", "1e", "1e+", " 1", "1 ", "0x1", "NaN", "Infinity", "1,5", "١"] {
            #expect(JSONNumber(literal: invalid) == nil, "\(invalid)")
        }
    }

    @Test func doubleValue() {
        #expect(JSONNumber(literal: "1.50")?.double == 1.5)
        #expect(JSONNumber(literal: "-0")?.double?.sign == .minus)
        #expect(JSONNumber(literal: "1e-400")?.double == 0)
        #expect(JSONNumber(literal: "0.1")?.double == 0.1)
        #expect(JSONNumber(literal: "9007199254740993")?.double == 9007199254740992)
        #expect(JSONNumber(literal: "1e400")?.double == nil)  // beyond Double: JS would read Infinity
        #expect(JSONNumber(literal: "-1e400")?.double == nil)
    }

    @Test func intValue() {
        let cases: [(String, Int?)] = [
            ("0", 0), ("-0", 0), ("42", 42), ("-42", -42), ("1.0", 1), ("1e2", 100), ("1E2", 100), ("0.1e1", 1),
            ("-2.50e1", -25), ("1.5", nil), ("1e-1", nil), ("1e400", nil),
            ("9223372036854775807", Int.max), ("-9223372036854775808", Int.min),
            ("9223372036854775808", nil), ("-9223372036854775809", nil), ("9.3e18", nil),
        ]
        for (literal, expected) in cases {
            #expect(JSONNumber(literal: literal)?.int == expected, "\(literal)")
        }
        #expect(JSONNumber(7).int == 7)
        #expect(JSONNumber(7.0)?.int == 7)
    }

    @Test func equalityComparesLiterals() throws {
        #expect(JSONNumber(1) == JSONNumber(literal: "1"))
        #expect(JSONNumber(literal: "1.0") != JSONNumber(literal: "1"))
        #expect(try JSONValue.parse("1.50") == .number(JSONNumber(literal: "1.50")!))
        #expect(JSONValue(1.0) == JSONValue(1))  // a Double that is an integer prints without ".0"
        #expect(JSONValue(1.25) == 1.25)
    }
}

@Suite struct ObjectTests {
    @Test func lookupReturnsTheLastMember() {
        let object: JSONObject = ["a": 1, "b": 2, "a": 3]
        #expect(object["a"] == 3)
        #expect(object["b"] == 2)
        #expect(object["c"] == nil)
        #expect(object.keys == ["a", "b", "a"])
        #expect(object.count == 3)
        #expect(object.map(\.value) == [1, 2, 3])
    }

    @Test func assignmentKeepsPosition() {
        var object: JSONObject = ["a": 1, "b": 2, "a": 3]
        object["a"] = "x"
        #expect(object.members == [.init(key: "a", value: 1), .init(key: "b", value: 2), .init(key: "a", value: "x")])
        object["c"] = .null
        #expect(object.keys == ["a", "b", "a", "c"])
        #expect(object["c"] == .null)
        object["a"] = nil
        #expect(object.keys == ["b", "c"])
    }

    @Test func initialisers() {
        let pairs = JSONObject([(key: "z", value: 1), (key: "a", value: 2)])
        #expect(pairs.keys == ["z", "a"])
        let dictionary = JSONObject(["z": 1, "a": 2, "m": 3] as [String: JSONValue])
        #expect(dictionary.keys == ["a", "m", "z"])
        #expect(JSONObject().isEmpty)
    }

    @Test func equalityIsOrdered() {
        let ab: JSONObject = ["a": 1, "b": 2]
        let ba: JSONObject = ["b": 2, "a": 1]
        #expect(ab != ba)
        #expect(ab == JSONObject([(key: "a", value: 1), (key: "b", value: 2)]))
    }
}

@Suite struct AccessorTests {
    @Test func accessors() throws {
        let value = try JSONValue.parse(#"{"s":"x","n":2,"b":true,"a":[1,"y"],"o":{"k":null}}"#)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["n"]?.numberValue?.int == 2)
        #expect(value["b"]?.boolValue == true)
        #expect(value["a"]?.arrayValue == [1, "y"])
        #expect(value["a"]?[1] == "y")
        #expect(value["a"]?[2] == nil)
        #expect(value["a"]?[-1] == nil)
        #expect(value["o"]?.objectValue?["k"] == .null)
        #expect(value["o"]?["k"]?.isNull == true)
        #expect(value["missing"] == nil)
        #expect(value["s"]?["k"] == nil)
        #expect(value["s"]?.numberValue == nil)
        #expect(value["n"]?.stringValue == nil)
        #expect(value.arrayValue == nil)
        #expect(JSONValue.null.objectValue == nil)
        #expect(JSONValue(true) == .bool(true))
        #expect(JSONValue("s") == .string("s"))
        #expect(JSONValue(3) == .number(JSONNumber(3)))
    }
}

@Suite struct RoundTripTests {
    /// A fixed seed keeps the run reproducible.
    typealias Generator = SeededRandom

    static func randomString(_ rng: inout Generator) -> String {
        let pieces: [String] = ["a", "Z", " ", "\"", "\\", "/", "\n", "\u{0}", "\u{1F}", "\u{7F}", "é", "中", "😀", "\u{2028}", "event", "\u{FFFD}"]
        var string = ""
        for _ in 0..<rng.below(12) { string += pieces[rng.below(pieces.count)] }
        return string
    }

    static func randomValue(_ rng: inout Generator, depth: Int) -> JSONValue {
        switch rng.below(depth > 4 ? 5 : 7) {
        case 0: return .null
        case 1: return .bool(rng.below(2) == 0)
        case 2: return .number(JSONNumber(Int(truncatingIfNeeded: rng.next()) >> rng.below(64)))
        case 3: return JSONValue(Double(bitPattern: rng.next()))  // NaN/infinity give .null
        case 4: return .string(randomString(&rng))
        case 5: return .array((0..<rng.below(5)).map { _ in randomValue(&rng, depth: depth + 1) })
        default:
            // Distinct, non-index keys: then JS order is insertion order and the text round-trips.
            var object = JSONObject()
            for index in 0..<rng.below(5) {
                object.append(key: "k\(index)" + randomString(&rng), value: randomValue(&rng, depth: depth + 1))
            }
            return .object(object)
        }
    }

    @Test func randomValuesRoundTrip() throws {
        var rng = Generator(seed: 0x5EED)
        for _ in 0..<2000 {
            let value = RoundTripTests.randomValue(&rng, depth: 0)
            let text = value.serialized()
            let parsed = try JSONValue.parse(text)
            #expect(parsed == value, "\(text)")
            #expect(parsed.serialized() == text)
        }
    }

    @Test func parsedTextRoundTripsExactlyWhenCompact() throws {
        let texts = [
            #"{"event":"chat","data":{"text":"hi \"you\"\n","n":[1,-2.50,3e-7]},"id":"a1"}"#,
            #"[null,true,false,"",{},[],{"":""}]"#,
            #""\u0000\u001f\\\"😀""#,
        ]
        for text in texts {
            #expect(try JSONValue.parse(text).serialized() == text)
        }
    }
}
