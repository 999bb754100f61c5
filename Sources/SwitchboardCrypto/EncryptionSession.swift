/// The end-to-end encryption of PROTOCOL.md section 9, compatible with the browser
/// WebCrypto helper of the original: ECDH P-256, then
/// key = HKDF-SHA256(shared X coordinate, 32-byte salt, `hkdfInfo`, 32 bytes), then
/// AES-256-GCM with a random 12-byte IV per message and ciphertext || 16-byte tag.
///
/// The derived key exists only inside the session's cipher contexts; the intermediate
/// secret and key bytes are wiped as soon as the contexts are keyed. The same thread-safety
/// rule as `AESGCM` applies: one thread at a time. A session draws at most 2^32 random IVs
/// safely (NIST SP 800-38D); a connection sends far fewer messages.
public struct EncryptionSession: Sendable {
    /// HKDF info string: `"ignis-ecdh-p256-aes-256-gcm-v1"` in UTF-8.
    public static let hkdfInfo: [UInt8] = Array("ignis-ecdh-p256-aes-256-gcm-v1".utf8)
    public static let saltLength = 32

    private let cipher: AESGCM

    /// Derives the key and wipes `secret` (in place: `inout` guarantees the caller's buffer
    /// is the one overwritten, not a copy-on-write copy).
    private init(wiping secret: inout [UInt8], salt: [UInt8]) throws(CryptoError) {
        defer { cleanse(&secret) }
        var key = HKDF.sha256(secret: secret, salt: salt, info: Self.hkdfInfo, length: AESGCM.keyLength)
        defer { cleanse(&key) }
        cipher = try AESGCM(key: key)
    }

    /// Server side of the handshake: validates the client's public key, makes an ephemeral
    /// key pair and a salt from `random`, and derives the session key. The two base64
    /// strings are the `serverPublicKey` and `salt` fields of `connected`.
    /// - Throws: `invalidBase64` or a public-key error for a bad client key.
    public static func handshake(
        clientPublicKeyBase64: String, random: inout some RandomSource
    ) throws(CryptoError) -> (session: EncryptionSession, serverPublicKeyBase64: String, saltBase64: String) {
        let clientKey = try decodeField(clientPublicKeyBase64)
        let serverKeys = try P256KeyPair.generate(using: &random)
        var secret = try serverKeys.sharedSecret(withPeerPublicKey: clientKey)
        let salt = random.bytes(saltLength)
        let session = try EncryptionSession(wiping: &secret, salt: salt)
        return (session, serverKeys.publicKeyBase64, Base64.encode(salt))
    }

    /// `handshake(clientPublicKeyBase64:random:)` with OpenSSL's generator.
    public static func handshake(
        clientPublicKeyBase64: String
    ) throws(CryptoError) -> (session: EncryptionSession, serverPublicKeyBase64: String, saltBase64: String) {
        var random = SystemRandomSource()
        return try handshake(clientPublicKeyBase64: clientPublicKeyBase64, random: &random)
    }

    /// Client side, for tests and Swift clients: the session that `keyPair` (whose public
    /// key was sent as `publicKey`) shares with a server that answered with
    /// `serverPublicKeyBase64` and `saltBase64`.
    public static func client(
        keyPair: P256KeyPair, serverPublicKeyBase64: String, saltBase64: String
    ) throws(CryptoError) -> EncryptionSession {
        let serverKey = try decodeField(serverPublicKeyBase64)
        let salt = try decodeField(saltBase64)
        guard salt.count == saltLength else { throw .invalidSaltLength(salt.count) }
        var secret = try keyPair.sharedSecret(withPeerPublicKey: serverKey)
        return try EncryptionSession(wiping: &secret, salt: salt)
    }

    /// Encrypts the JSON `{"event","data"}` of an outbound message under a fresh IV from
    /// `random`; the results are the `iv` and `ct` fields of the `encrypted` envelope.
    public func encryptEnvelope(
        json: [UInt8], random: inout some RandomSource
    ) -> (ivBase64: String, ctBase64: String) {
        withUnsafeTemporaryAllocation(byteCount: AESGCM.ivLength, alignment: 1) { iv in
            random.fill(iv)
            let ivBase64 = Base64.encode(UnsafeRawBufferPointer(iv))
            let sealedCount = json.count + AESGCM.tagLength
            let ctBase64 = withUnsafeTemporaryAllocation(byteCount: sealedCount, alignment: 1) { sealed in
                json.withUnsafeBytes { plaintext in
                    cipher.seal(plaintext, iv: UnsafeRawBufferPointer(iv), aad: UnsafeRawBufferPointer(start: nil, count: 0),
                                into: sealed)
                }
                return Base64.encode(UnsafeRawBufferPointer(sealed))
            }
            return (ivBase64, ctBase64)
        }
    }

    /// `encryptEnvelope(json:random:)` with an IV from OpenSSL's generator (drawn in
    /// batches; see `AESGCM.sealWithRandomIV(_:aad:)`).
    public func encryptEnvelope(json: [UInt8]) -> (ivBase64: String, ctBase64: String) {
        var random = IVSource()
        return encryptEnvelope(json: json, random: &random)
    }

    /// Decrypts the `iv` and `ct` fields of an `encrypted` envelope.
    /// - Throws: `invalidBase64`, `invalidIVLength`, `ciphertextTooShort`, or
    ///   `authenticationFailed`.
    public func decrypt(ivBase64: String, ctBase64: String) throws(CryptoError) -> [UInt8] {
        let iv = try Self.decodeField(ivBase64)
        let sealed = try Self.decodeField(ctBase64)
        return try cipher.open(sealed, iv: iv)
    }

    private static func decodeField(_ base64: String) throws(CryptoError) -> [UInt8] {
        do {
            return try Base64.decode(base64)
        } catch {
            throw .invalidBase64(error)
        }
    }
}

extension EncryptionSession: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "EncryptionSession(key: <redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
