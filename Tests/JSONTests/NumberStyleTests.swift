import Testing
@testable import SwitchboardJSON

/// `JSONNumberStyle`: numbers keep their text by default; `.javascript` writes them as
/// `JSON.stringify(JSON.parse(literal))` does. The oracle is `javaScriptNumberTable`, written by
/// node (scripts/js-number-table.mjs).
@Suite struct NumberStyleTests {
    static let table: [(literal: String, javaScript: String)] = javaScriptNumberTable.split(separator: "\n").map { line in
        let parts = line.split(separator: " ")
        return (String(parts[0]), String(parts[1]))
    }

    static func javaScript(_ literal: String) throws -> String {
        try JSONValue.parse(literal, numbers: .javascript).serialized()
    }

    @Test(arguments: [
        ("1e21", "1e+21"), ("-0", "0"), ("1.0", "1"), ("1E2", "100"), ("0.1e1", "1"),
        ("9007199254740993", "9007199254740992"), ("1e400", "null"), ("-1e400", "null"), ("1e-400", "0"),
        ("1e-7", "1e-7"), ("1.5e-7", "1.5e-7"), ("1e-6", "0.000001"), ("1e20", "100000000000000000000"),
        ("123e18", "123000000000000000000"), ("5e-324", "5e-324"), ("0.30000000000000004", "0.30000000000000004"),
        ("12345678901234567890", "12345678901234567000"), ("-12", "-12"), ("1.50", "1.5"),
    ])
    func handPicked(_ literal: String, _ expected: String) throws {
        #expect(try NumberStyleTests.javaScript(literal) == expected)
        #expect(try NumberStyleTests.javaScript("[\(literal)]") == "[\(expected)]")
        // The default keeps the literal.
        #expect(try JSONValue.parse(literal).serialized() == literal)
    }

    /// Every literal of the table, read with `.javascript`, is written as node writes it; read
    /// with the default, as it is; and `JSONNumber.javaScriptText` agrees.
    @Test func agreesWithJavaScript() throws {
        #expect(NumberStyleTests.table.count > 2000)
        for (literal, expected) in NumberStyleTests.table {
            #expect(try NumberStyleTests.javaScript(literal) == expected, "\(literal)")
            #expect(try JSONValue.parse(literal).serialized() == literal)
            #expect(JSONNumber(literal: literal)?.javaScriptText == expected, "\(literal)")
        }
    }

    /// The reader's canonical paths keep `data` as its text only if JS would write its numbers
    /// as they are; either way `data` comes out as node writes it.
    @Test func envelopeDataAgreesWithJavaScript() throws {
        for (literal, expected) in NumberStyleTests.table {
            for message in [#"{"event":"e","data":{"n":\#(literal)}}"#, #"{"event":"e","data":{"a":[1,{"n":\#(literal)}]},"id":1}"#] {
                guard case .message(_, let data?, _) = InboundEnvelope.read(Array(message.utf8), numbers: .javascript) else {
                    Issue.record("not a message: \(message)")
                    continue
                }
                #expect(data.serialized().contains(":\(expected)}"), "\(message) -> \(data.serialized())")
                guard case .message(_, let exact?, _) = InboundEnvelope.read(Array(message.utf8)) else { continue }
                #expect(exact.serialized().contains(":\(literal)}"), "\(message) -> \(exact.serialized())")
            }
        }
    }

    @Test(arguments: [
        (#"{"n":1}"#, true), (#"{"n":-12,"m":123456789012345}"#, true), (#"{"n":1.5}"#, true),
        (#"{"n":1e+21}"#, true), (#"{"n":1.0}"#, false), (#"{"n":-0}"#, false), (#"{"n":1e21}"#, false),
        (#"{"n":9007199254740993}"#, false), (#"{"n":9007199254740992}"#, true), (#"{"n":1e400}"#, false),
    ] as [(String, Bool)])
    func keptAsTextOnlyWhenJavaScriptWritesIt(_ dataText: String, _ asText: Bool) throws {
        let message = Array(#"{"event":"e","data":\#(dataText)}"#.utf8)
        guard case .message(_, let data?, _) = InboundEnvelope.read(message, numbers: .javascript),
              case .object(let object) = data else {
            Issue.record("no data object")
            return
        }
        if case .text = object.storage { #expect(asText) } else { #expect(!asText) }
        #expect(data == (try JSONValue.parse(dataText, numbers: .javascript)))
        // With the default, every number is written as it is: the text is kept.
        guard case .message(_, .object(let exact)?, _) = InboundEnvelope.read(message), case .text = exact.storage else {
            Issue.record("exact data not kept as text")
            return
        }
    }
}
