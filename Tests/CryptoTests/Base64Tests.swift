import Foundation
import SwitchboardCrypto
import TestSupport
import Testing

@Suite struct Base64Tests {
    @Test(arguments: [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ])
    func rfc4648Vectors(_ vector: (plain: String, encoded: String)) throws {
        let bytes = Array(vector.plain.utf8)
        #expect(Base64.encode(bytes) == vector.encoded)
        #expect(try Base64.decode(vector.encoded) == bytes)
        #expect(try Base64.decode(Array(vector.encoded.utf8)) == bytes)
    }

    @Test func everyByteValueRoundTrips() throws {
        let all = (0...255).map(UInt8.init)
        let encoded = Base64.encode(all)
        #expect(encoded == Data(all).base64EncodedString())
        #expect(try Base64.decode(encoded) == all)
    }

    @Test func roundTripsEveryLengthAndMatchesFoundation() throws {
        var random = SeededRandom(seed: 42)
        for length in 0...300 {
            let bytes = random.bytes(length)
            let encoded = Base64.encode(bytes)
            #expect(encoded.utf8.count == Base64.encodedCount(length))
            #expect(encoded == Data(bytes).base64EncodedString(), "length \(length)")
            #expect(try Base64.decode(encoded) == bytes, "length \(length)")
        }
    }

    @Test func encodesIntoCallerBuffer() {
        let input: [UInt8] = [0xFB, 0xFF, 0xBF, 0x00]
        var out = [UInt8](repeating: UInt8(ascii: "#"), count: 12)
        let written = input.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { Base64.encode(src, into: $0) }
        }
        #expect(written == 8)
        #expect(String(decoding: out, as: UTF8.self) == "+/+/AA==####")
    }

    @Test(arguments: [
        ("Z", Base64.DecodingError.invalidLength(1)),
        ("Zg=", .invalidLength(3)),
        ("Zm9v\n", .invalidLength(5)),
        ("Zm9vY", .invalidLength(5)),
        ("Zm 9", .invalidCharacter(offset: 2)),
        ("Zm9-", .invalidCharacter(offset: 3)),
        ("Zm9_", .invalidCharacter(offset: 3)),
        ("Zm9v\tm9v", .invalidCharacter(offset: 4)),
        ("Z\u{e9}g", .invalidCharacter(offset: 1)),
        ("Zg=a", .invalidPadding),
        ("Z===", .invalidPadding),
        ("====", .invalidPadding),
        ("=Zm9", .invalidPadding),
        ("Zg==Zm9v", .invalidPadding),
        ("Zh==", .nonZeroPaddingBits),
        ("Zm9=", .nonZeroPaddingBits),
    ])
    func strictDecodingRejects(_ invalid: (text: String, error: Base64.DecodingError)) {
        #expect(throws: invalid.error) { try Base64.decode(invalid.text) }
        #expect(throws: invalid.error) { try Base64.decode(Array(invalid.text.utf8)) }
    }

    @Test func decodesNonNativeStrings() throws {
        // A bridged or substring-backed String still decodes through the contiguous copy.
        let text = "xxZm9vYmFyxx".dropFirst(2).dropLast(2)
        #expect(try Base64.decode(String(text)) == Array("foobar".utf8))
    }
}

@Suite struct Base64URLTests {
    @Test func translatesTheTwoLettersAndDropsPadding() {
        #expect(Base64.encodeURL([0xFB, 0xFF, 0xBF]) == "-_-_")
        #expect(Base64.encodeURL(Array("f".utf8)) == "Zg")
        #expect(Base64.encodeURL(Array("fo".utf8)) == "Zm8")
        #expect(Base64.decodeURL(Array("-_-_".utf8)) == [0xFB, 0xFF, 0xBF])
        #expect(Base64.decodeURL(Array("Zm8".utf8)) == Array("fo".utf8))
        #expect(Base64.decodeURL([UInt8]()) == [])
    }

    @Test(arguments: ["+/+/", "Zg==", "Zm8=", "Z", "Zm9vY", "Zh", "Zm 9"])
    func rejects(_ text: String) {
        #expect(Base64.decodeURL(Array(text.utf8)) == nil)
    }
}
