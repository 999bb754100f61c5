import SwitchboardCrypto
import TestSupport
import Testing

@Suite struct EncryptionSessionTests {
    let json = Array(#"{"event":"chat","data":{"text":"h\u00e9llo ✓"}}"#.utf8)

    /// Client key pair, server handshake, client session: the PROTOCOL.md 9 flow.
    func pair() throws -> (server: EncryptionSession, client: EncryptionSession, serverKey: String, salt: String) {
        let clientKeys = try P256KeyPair.generate()
        let hello = try EncryptionSession.handshake(clientPublicKeyBase64: clientKeys.publicKeyBase64)
        let client = try EncryptionSession.client(
            keyPair: clientKeys, serverPublicKeyBase64: hello.serverPublicKeyBase64, saltBase64: hello.saltBase64)
        return (hello.session, client, hello.serverPublicKeyBase64, hello.saltBase64)
    }

    @Test func handshakeAnswersKeyAndSaltOfProtocolSizes() throws {
        let (_, _, serverKey, salt) = try pair()
        let key = try Base64.decode(serverKey)
        #expect(key.count == 65 && key[0] == 0x04)
        #expect(try Base64.decode(salt).count == 32)
    }

    @Test func serverAndClientDecryptEachOther() throws {
        let (server, client, _, _) = try pair()
        let outbound = server.encryptEnvelope(json: json)
        #expect(try Base64.decode(outbound.ivBase64).count == 12)
        #expect(try Base64.decode(outbound.ctBase64).count == json.count + 16)
        #expect(try client.decrypt(ivBase64: outbound.ivBase64, ctBase64: outbound.ctBase64) == json)

        let inbound = client.encryptEnvelope(json: Array("{}".utf8))
        #expect(try server.decrypt(ivBase64: inbound.ivBase64, ctBase64: inbound.ctBase64) == Array("{}".utf8))

        let empty = server.encryptEnvelope(json: [])
        #expect(try client.decrypt(ivBase64: empty.ivBase64, ctBase64: empty.ctBase64) == [])
    }

    @Test func everyEnvelopeHasAFreshIV() throws {
        let (server, _, _, _) = try pair()
        let first = server.encryptEnvelope(json: json)
        let second = server.encryptEnvelope(json: json)
        #expect(first.ivBase64 != second.ivBase64)
        #expect(first.ctBase64 != second.ctBase64)
    }

    /// The session key is HKDF-SHA256(ECDH X, salt, "ignis-ecdh-p256-aes-256-gcm-v1", 32).
    @Test func keyDerivationMatchesThePrimitives() throws {
        let clientKeys = try P256KeyPair.generate()
        let hello = try EncryptionSession.handshake(clientPublicKeyBase64: clientKeys.publicKeyBase64)
        let secret = try clientKeys.sharedSecret(withPeerPublicKey: Base64.decode(hello.serverPublicKeyBase64))
        let key = HKDF.sha256(
            secret: secret, salt: try Base64.decode(hello.saltBase64),
            info: Array("ignis-ecdh-p256-aes-256-gcm-v1".utf8), length: 32)
        #expect(EncryptionSession.hkdfInfo == Array("ignis-ecdh-p256-aes-256-gcm-v1".utf8))
        let sealed = hello.session.encryptEnvelope(json: json)
        let opened = try AESGCM(key: key).open(
            Base64.decode(sealed.ctBase64), iv: Base64.decode(sealed.ivBase64))
        #expect(opened == json)
    }

    @Test func seededHandshakeReplays() throws {
        let clientKeys = try P256KeyPair.generate()
        var a = SeededRandom(seed: 2024)
        var b = SeededRandom(seed: 2024)
        var c = SeededRandom(seed: 2025)
        let first = try EncryptionSession.handshake(clientPublicKeyBase64: clientKeys.publicKeyBase64, random: &a)
        let second = try EncryptionSession.handshake(clientPublicKeyBase64: clientKeys.publicKeyBase64, random: &b)
        let other = try EncryptionSession.handshake(clientPublicKeyBase64: clientKeys.publicKeyBase64, random: &c)
        #expect(first.serverPublicKeyBase64 == second.serverPublicKeyBase64)
        #expect(first.saltBase64 == second.saltBase64)
        #expect(first.serverPublicKeyBase64 != other.serverPublicKeyBase64)
        #expect(first.saltBase64 != other.saltBase64)
        let x = first.session.encryptEnvelope(json: json, random: &a)
        let y = second.session.encryptEnvelope(json: json, random: &b)
        #expect(x.ivBase64 == y.ivBase64 && x.ctBase64 == y.ctBase64)
    }

    @Test func rejectsTamperingAndForeignSessions() throws {
        let (server, client, _, _) = try pair()
        let (_, stranger, _, _) = try pair()
        let sealed = server.encryptEnvelope(json: json)
        var bytes = try Base64.decode(sealed.ctBase64)
        bytes[3] ^= 0x20
        #expect(throws: CryptoError.authenticationFailed) {
            try client.decrypt(ivBase64: sealed.ivBase64, ctBase64: Base64.encode(bytes))
        }
        #expect(throws: CryptoError.authenticationFailed) {
            try stranger.decrypt(ivBase64: sealed.ivBase64, ctBase64: sealed.ctBase64)
        }
        let otherIV = server.encryptEnvelope(json: json).ivBase64
        #expect(throws: CryptoError.authenticationFailed) {
            try client.decrypt(ivBase64: otherIV, ctBase64: sealed.ctBase64)
        }
    }

    @Test func rejectsMalformedEnvelopes() throws {
        let (server, _, _, _) = try pair()
        let sealed = server.encryptEnvelope(json: json)
        #expect(throws: CryptoError.invalidIVLength(16)) {
            try server.decrypt(ivBase64: Base64.encode([UInt8](repeating: 0, count: 16)), ctBase64: sealed.ctBase64)
        }
        #expect(throws: CryptoError.ciphertextTooShort(10)) {
            try server.decrypt(ivBase64: sealed.ivBase64, ctBase64: Base64.encode([UInt8](repeating: 0, count: 10)))
        }
        #expect(throws: CryptoError.invalidBase64(.invalidCharacter(offset: 0))) {
            try server.decrypt(ivBase64: "*AAAAAAAAAAAAAAA", ctBase64: sealed.ctBase64)
        }
        #expect(throws: CryptoError.invalidBase64(.invalidLength(3))) {
            try server.decrypt(ivBase64: sealed.ivBase64, ctBase64: "abc")
        }
    }

    @Test func handshakeRejectsBadClientKeys() throws {
        let good = try P256KeyPair.generate().publicKeyRaw
        var offCurve = good
        offCurve[64] ^= 1
        let compressed = [0x02 | (good[64] & 1)] + Array(good[1...32])
        let cases: [(String, CryptoError)] = [
            ("not base64!", .invalidBase64(.invalidLength(11))),
            ("", .invalidPublicKeyLength(0)),
            (Base64.encode(compressed), .unsupportedPointFormat(compressed[0])),
            (Base64.encode(Array(good.prefix(64))), .invalidPublicKeyLength(64)),
            (Base64.encode(offCurve), .publicKeyNotOnCurve),
        ]
        for (text, error) in cases {
            #expect(throws: error) { try EncryptionSession.handshake(clientPublicKeyBase64: text) }
        }
    }

    @Test func clientRejectsBadSalt() throws {
        let clientKeys = try P256KeyPair.generate()
        let hello = try EncryptionSession.handshake(clientPublicKeyBase64: clientKeys.publicKeyBase64)
        #expect(throws: CryptoError.invalidSaltLength(16)) {
            try EncryptionSession.client(
                keyPair: clientKeys, serverPublicKeyBase64: hello.serverPublicKeyBase64,
                saltBase64: Base64.encode([UInt8](repeating: 1, count: 16)))
        }
    }

    @Test func descriptionRedactsKey() throws {
        let (server, _, _, _) = try pair()
        var dumped = ""
        dump(server, to: &dumped)
        #expect(String(describing: server) == "EncryptionSession(key: <redacted>)")
        #expect(String(reflecting: server) == "EncryptionSession(key: <redacted>)")
        #expect(!dumped.contains("0x"), "pointer or key material in dump: \(dumped)")
        #expect(Mirror(reflecting: server).children.isEmpty)
    }
}

@Suite struct IVUniquenessTests {
    /// Default-source IVs come from a batched reserve; 5000 draws cross many refills.
    @Test func defaultIVsNeverRepeat() throws {
        let clientKeys = try P256KeyPair.generate()
        let session = try EncryptionSession.handshake(clientPublicKeyBase64: clientKeys.publicKeyBase64).session
        var seen = Set<String>()
        for _ in 0..<5000 {
            let iv = session.encryptEnvelope(json: [1]).ivBase64
            #expect(try Base64.decode(iv).count == 12)
            seen.insert(iv)
        }
        let gcm = try AESGCM(key: [UInt8](repeating: 9, count: 32))
        for _ in 0..<5000 { seen.insert(Base64.encode(gcm.sealWithRandomIV([]).iv)) }
        #expect(seen.count == 10_000)
    }
}
