import SwitchboardCrypto
import TestSupport
import Testing

/// RFC 5869 appendix A, test cases 1-3 (SHA-256).
@Suite struct HKDFTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let ikm, salt, info: [UInt8]
        let length: Int
        let okm: [UInt8]
        var testDescription: String { name }
    }

    static let vectors: [Vector] = [
        Vector(
            name: "A.1 basic", ikm: [UInt8](repeating: 0x0B, count: 22), salt: Array(0x00...0x0C),
            info: Array(0xF0...0xF9), length: 42,
            okm: hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")),
        Vector(
            name: "A.2 long inputs", ikm: Array(0x00...0x4F), salt: Array(0x60...0xAF),
            info: Array(0xB0...0xFF), length: 82,
            okm: hex(
                "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
                    + "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
                    + "cc30c58179ec3e87c14c01d5c1f3434f1d87")),
        Vector(
            name: "A.3 empty salt and info", ikm: [UInt8](repeating: 0x0B, count: 22), salt: [], info: [],
            length: 42,
            okm: hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")),
    ]

    @Test(arguments: vectors)
    func rfc5869(_ v: Vector) {
        #expect(HKDF.sha256(secret: v.ikm, salt: v.salt, info: v.info, length: v.length) == v.okm)
    }

    @Test func outputIsAPrefixOfLongerOutput() {
        let v = Self.vectors[0]
        let short = HKDF.sha256(secret: v.ikm, salt: v.salt, info: v.info, length: 10)
        #expect(short == Array(v.okm.prefix(10)))
        #expect(HKDF.sha256(secret: v.ikm, salt: v.salt, info: [1], length: 10) != short)
    }
}
