import SwitchboardCrypto
import TestSupport
import Testing

@Suite struct P256Tests {
    @Test func generatedKeysAreUncompressedAndDistinct() throws {
        let a = try P256KeyPair.generate()
        let b = try P256KeyPair.generate()
        #expect(a.publicKeyRaw.count == 65 && a.publicKeyRaw[0] == 0x04)
        #expect(a.publicKeyRaw != b.publicKeyRaw)
        #expect(try Base64.decode(a.publicKeyBase64) == a.publicKeyRaw)
    }

    @Test func bothSidesAgree() throws {
        let alice = try P256KeyPair.generate()
        let bob = try P256KeyPair.generate()
        let ab = try alice.sharedSecret(withPeerPublicKey: bob.publicKeyRaw)
        let ba = try bob.sharedSecret(withPeerPublicKey: alice.publicKeyRaw)
        #expect(ab.count == 32)
        #expect(ab == ba)
        let carol = try P256KeyPair.generate()
        #expect(try alice.sharedSecret(withPeerPublicKey: carol.publicKeyRaw) != ab)
    }

    @Test func scalarOneGivesTheGenerator() throws {
        let one = try P256KeyPair(privateKey: [UInt8](repeating: 0, count: 31) + [1])
        #expect(one.publicKeyRaw == p256Generator)
        // 1·Q = Q, so the shared secret is the peer's X coordinate.
        let peer = try P256KeyPair.generate()
        #expect(try one.sharedSecret(withPeerPublicKey: peer.publicKeyRaw) == Array(peer.publicKeyRaw[1...32]))
    }

    @Test func scalarNMinusOneGivesMinusG() throws {
        var scalar = p256Order
        scalar[31] -= 1
        let key = try P256KeyPair(privateKey: scalar)
        #expect(key.publicKeyRaw[0...32] == p256Generator[0...32])
        #expect(key.publicKeyRaw[33...] != p256Generator[33...])
    }

    @Test func rejectsScalarsOutOfRange() {
        var nPlusOne = p256Order
        nPlusOne[31] += 1
        for scalar in [[UInt8](repeating: 0, count: 32), p256Order, nPlusOne, [UInt8](repeating: 0xFF, count: 32),
                       [UInt8](repeating: 1, count: 31), [UInt8](repeating: 1, count: 33), []] {
            #expect(throws: CryptoError.invalidPrivateKey) { try P256KeyPair(privateKey: scalar) }
        }
    }

    @Test func seededGenerationReplaysAndRejectsOutOfRangeDraws() throws {
        var first = SeededRandom(seed: 99)
        var second = SeededRandom(seed: 99)
        var other = SeededRandom(seed: 100)
        let a = try P256KeyPair.generate(using: &first)
        #expect(try P256KeyPair.generate(using: &second).publicKeyRaw == a.publicKeyRaw)
        #expect(try P256KeyPair.generate(using: &other).publicKeyRaw != a.publicKeyRaw)

        // Zero and values >= n are redrawn, not reduced.
        var scripted = ScriptedRandom(chunks: [
            [UInt8](repeating: 0, count: 32), [UInt8](repeating: 0xFF, count: 32), p256Order,
            [UInt8](repeating: 0, count: 31) + [1],
        ])
        #expect(try P256KeyPair.generate(using: &scripted).publicKeyRaw == p256Generator)
    }

    @Test func rejectsMalformedPeerKeys() throws {
        let key = try P256KeyPair.generate()
        let good = try P256KeyPair.generate().publicKeyRaw
        let compressed = [0x02 | (good[64] & 1)] + Array(good[1...32])
        var offCurve = p256Generator
        offCurve[64] ^= 0x01
        let cases: [([UInt8], CryptoError)] = [
            ([], .invalidPublicKeyLength(0)),
            ([0x04], .invalidPublicKeyLength(1)),
            (Array(good.prefix(64)), .invalidPublicKeyLength(64)),
            (good + [0], .invalidPublicKeyLength(66)),
            (compressed, .unsupportedPointFormat(compressed[0])),
            ([0x03] + Array(good[1...]), .unsupportedPointFormat(0x03)),
            ([0x06] + Array(good[1...]), .unsupportedPointFormat(0x06)),
            ([0x00] + Array(good[1...]), .unsupportedPointFormat(0x00)),
            (offCurve, .publicKeyNotOnCurve),
            ([0x04] + [UInt8](repeating: 0, count: 64), .publicKeyNotOnCurve),
            ([0x04] + [UInt8](repeating: 0xFF, count: 64), .publicKeyNotOnCurve),
        ]
        for (raw, error) in cases {
            #expect(throws: error) { try key.sharedSecret(withPeerPublicKey: raw) }
        }
        // The error queue was drained: a valid exchange still works afterwards.
        #expect(try key.sharedSecret(withPeerPublicKey: good).count == 32)
    }

    @Test func descriptionRedactsPrivateKey() throws {
        let scalar = hex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
        let key = try P256KeyPair(privateKey: scalar)
        var dumped = ""
        dump(key, to: &dumped)
        for text in [String(describing: key), String(reflecting: key), "\(key)", dumped] {
            #expect(text.contains("redacted") || text.contains(key.publicKeyBase64))
            #expect(!text.lowercased().contains("c9afa9d8"))
            #expect(!text.contains("201, 175, 169"), "private scalar bytes leaked: \(text)")
            #expect(!text.contains(Base64.encode(scalar).prefix(12)))
        }
        #expect(String(describing: key) == "P256KeyPair(publicKey: \(key.publicKeyBase64), privateKey: <redacted>)")
    }
}
