import SwitchboardCrypto
import TestSupport
import Testing

/// McGrew and Viega, "The Galois/Counter Mode of Operation", test cases 13-16 (256-bit key).
@Suite struct AESGCMTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let key, iv, plaintext, aad, ciphertext, tag: [UInt8]
        var testDescription: String { name }
    }

    static let key15 = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
    static let iv15 = hex("cafebabefacedbaddecaf888")
    static let plaintext15 = hex(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
            + "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255")
    static let ciphertext15 = hex(
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
            + "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad")

    static let vectors: [Vector] = [
        Vector(
            name: "13: empty", key: [UInt8](repeating: 0, count: 32), iv: [UInt8](repeating: 0, count: 12),
            plaintext: [], aad: [], ciphertext: [], tag: hex("530f8afbc74536b9a963b4f1c4cb738b")),
        Vector(
            name: "14: one zero block", key: [UInt8](repeating: 0, count: 32), iv: [UInt8](repeating: 0, count: 12),
            plaintext: [UInt8](repeating: 0, count: 16), aad: [],
            ciphertext: hex("cea7403d4d606b6e074ec5d3baf39d18"), tag: hex("d0d1c8a799996bf0265b98b5d48ab919")),
        Vector(
            name: "15: four blocks", key: key15, iv: iv15, plaintext: plaintext15, aad: [],
            ciphertext: ciphertext15, tag: hex("b094dac5d93471bdec1a502270e3cc6c")),
        Vector(
            name: "16: partial block and AAD", key: key15, iv: iv15, plaintext: Array(plaintext15.prefix(60)),
            aad: hex("feedfacedeadbeeffeedfacedeadbeefabaddad2"), ciphertext: Array(ciphertext15.prefix(60)),
            tag: hex("76fc6ece0f4e1768cddf8853bb2d551b")),
    ]

    @Test(arguments: vectors)
    func sealsAndOpensVector(_ v: Vector) throws {
        let gcm = try AESGCM(key: v.key)
        #expect(gcm.seal(v.plaintext, iv: v.iv, aad: v.aad) == v.ciphertext + v.tag)
        #expect(try gcm.open(v.ciphertext + v.tag, iv: v.iv, aad: v.aad) == v.plaintext)
    }

    @Test(arguments: vectors)
    func rejectsEveryTampering(_ v: Vector) throws {
        let gcm = try AESGCM(key: v.key)
        let sealed = v.ciphertext + v.tag
        for index in sealed.indices {
            var tampered = sealed
            tampered[index] ^= 0x01
            #expect(throws: CryptoError.authenticationFailed) { try gcm.open(tampered, iv: v.iv, aad: v.aad) }
        }
        var otherIV = v.iv
        otherIV[11] ^= 0x80
        #expect(throws: CryptoError.authenticationFailed) { try gcm.open(sealed, iv: otherIV, aad: v.aad) }
        #expect(throws: CryptoError.authenticationFailed) { try gcm.open(sealed, iv: v.iv, aad: v.aad + [0]) }
        var otherKey = v.key
        otherKey[0] ^= 0x01
        #expect(throws: CryptoError.authenticationFailed) {
            try AESGCM(key: otherKey).open(sealed, iv: v.iv, aad: v.aad)
        }
        // The instance still works after failures: its contexts are re-initialized per call.
        #expect(try gcm.open(sealed, iv: v.iv, aad: v.aad) == v.plaintext)
    }

    @Test(arguments: [0, 16, 24, 31, 33, 64])
    func rejectsKeyLength(_ length: Int) {
        #expect(throws: CryptoError.invalidKeyLength(length)) { try AESGCM(key: [UInt8](repeating: 7, count: length)) }
    }

    @Test func rejectsMalformedInputs() throws {
        let gcm = try AESGCM(key: Self.key15)
        #expect(throws: CryptoError.invalidIVLength(11)) { try gcm.open([UInt8](repeating: 0, count: 16), iv: [UInt8](repeating: 0, count: 11)) }
        #expect(throws: CryptoError.invalidIVLength(16)) { try gcm.open([UInt8](repeating: 0, count: 16), iv: [UInt8](repeating: 0, count: 16)) }
        #expect(throws: CryptoError.ciphertextTooShort(15)) { try gcm.open([UInt8](repeating: 0, count: 15), iv: Self.iv15) }
        #expect(throws: CryptoError.ciphertextTooShort(0)) { try gcm.open([], iv: Self.iv15) }
    }

    /// Interleaved seals and opens on one instance give the results of fresh instances.
    @Test func reusedContextsMatchFreshInstances() throws {
        var random = SeededRandom(seed: 7)
        let key = random.bytes(32)
        let reused = try AESGCM(key: key)
        for length in [0, 1, 15, 16, 17, 100, 4096, 100_003] {
            let plaintext = random.bytes(length)
            let iv = random.bytes(12)
            let sealed = reused.seal(plaintext, iv: iv)
            #expect(sealed == (try AESGCM(key: key).seal(plaintext, iv: iv)), "length \(length)")
            #expect(try reused.open(sealed, iv: iv) == plaintext)
            #expect(throws: CryptoError.authenticationFailed) { try reused.open(sealed, iv: random.bytes(12)) }
            #expect(try AESGCM(key: key).open(sealed, iv: iv) == plaintext)
        }
    }

    @Test func sealWithRandomIVDrawsFreshIVs() throws {
        let gcm = try AESGCM(key: Self.key15)
        let message = Array("hello".utf8)
        let first = gcm.sealWithRandomIV(message)
        let second = gcm.sealWithRandomIV(message)
        #expect(first.iv.count == 12 && second.iv.count == 12)
        #expect(first.iv != second.iv)
        #expect(first.ciphertextAndTag != second.ciphertextAndTag)
        #expect(try gcm.open(first.ciphertextAndTag, iv: first.iv) == message)

        var seeded = SeededRandom(seed: 1)
        let replayed = gcm.sealWithRandomIV(message, random: &seeded)
        var again = SeededRandom(seed: 1)
        #expect(replayed.iv == again.bytes(12))
        #expect(replayed.ciphertextAndTag == gcm.seal(message, iv: replayed.iv))
    }

    @Test func rawBufferAPIMatchesArrayAPI() throws {
        let v = Self.vectors[3]
        let gcm = try AESGCM(key: v.key)
        var sealed = [UInt8](repeating: 0, count: v.plaintext.count + 16)
        v.plaintext.withUnsafeBytes { pt in
            v.iv.withUnsafeBytes { iv in
                v.aad.withUnsafeBytes { aad in
                    sealed.withUnsafeMutableBytes { gcm.seal(pt, iv: iv, aad: aad, into: $0) }
                }
            }
        }
        #expect(sealed == v.ciphertext + v.tag)

        var opened = [UInt8](repeating: 0xAA, count: v.plaintext.count)
        let count = try sealed.withUnsafeBytes { input in
            try v.iv.withUnsafeBytes { iv in
                try v.aad.withUnsafeBytes { aad in
                    try opened.withUnsafeMutableBytes { try gcm.open(input, iv: iv, aad: aad, into: $0) }
                }
            }
        }
        #expect(count == v.plaintext.count)
        #expect(opened == v.plaintext)

        // On failure the output holds no plaintext.
        sealed[sealed.count - 1] ^= 1
        var wiped = [UInt8](repeating: 0xAA, count: v.plaintext.count)
        #expect(throws: CryptoError.authenticationFailed) {
            try sealed.withUnsafeBytes { input in
                try v.iv.withUnsafeBytes { iv in
                    try v.aad.withUnsafeBytes { aad in
                        try wiped.withUnsafeMutableBytes { try gcm.open(input, iv: iv, aad: aad, into: $0) }
                    }
                }
            }
        }
        #expect(wiped.allSatisfy { $0 == 0 })
    }

    @Test func descriptionRedactsKey() throws {
        let gcm = try AESGCM(key: Self.key15)
        var dumped = ""
        dump(gcm, to: &dumped)
        for text in [String(describing: gcm), String(reflecting: gcm), "\(gcm)", dumped] {
            #expect(text.contains("AESGCM"))
            #expect(!text.contains("254"), "key byte 0xfe leaked: \(text)")
            #expect(!text.lowercased().contains("feffe992"))
        }
        #expect(Mirror(reflecting: gcm).children.isEmpty)
    }
}
