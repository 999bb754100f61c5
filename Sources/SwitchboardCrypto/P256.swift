import COpenSSL

/// A P-256 key pair for ECDH, held in an OpenSSL `EVP_PKEY` that is freed (and its private
/// scalar wiped) when the last copy goes away. The private key is never exported or
/// printed: `description`, `debugDescription` and `Mirror` show only the public key.
public struct P256KeyPair: Sendable {
    /// Length of an uncompressed point: 0x04 || X || Y.
    public static let publicKeyLength = 65
    /// Length of a private scalar and of the ECDH shared secret (the X coordinate).
    public static let scalarLength = 32

    private let key: PKey
    /// The public key as an uncompressed point (65 bytes), WebCrypto's `raw` format.
    public let publicKeyRaw: [UInt8]

    /// `publicKeyRaw` in base64, as sent on the wire.
    public var publicKeyBase64: String { Base64.encode(publicKeyRaw) }

    private init(key: PKey) throws(CryptoError) {
        var raw = [UInt8](repeating: 0, count: Self.publicKeyLength)
        var length = 0
        guard EVP_PKEY_get_octet_string_param(key.pointer, cString("pub"), &raw, raw.count, &length) == 1,
              length == Self.publicKeyLength, raw[0] == 0x04
        else { throw openSSLError("EVP_PKEY_get_octet_string_param(pub)") }
        self.key = key
        self.publicKeyRaw = raw
    }

    /// A fresh key pair from OpenSSL's key generator.
    public static func generate() throws(CryptoError) -> P256KeyPair {
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else {
            throw openSSLError("EVP_PKEY_CTX_new_from_name(EC)")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        var pkey: OpaquePointer?
        guard EVP_PKEY_keygen_init(ctx) == 1,
              EVP_PKEY_CTX_set_group_name(ctx, "P-256") == 1,
              EVP_PKEY_generate(ctx, &pkey) == 1, let pkey
        else { throw openSSLError("EVP_PKEY_generate(P-256)") }
        return try P256KeyPair(key: PKey(pkey))
    }

    /// A key pair whose private scalar is drawn from `random` (rejection sampling in
    /// [1, n-1]), so that a seeded source reproduces it.
    public static func generate(using random: inout some RandomSource) throws(CryptoError) -> P256KeyPair {
        var scalar = [UInt8](repeating: 0, count: scalarLength)
        defer { cleanse(&scalar) }
        repeat {
            scalar.withUnsafeMutableBytes { random.fill($0) }
        } while !isValidScalar(scalar)
        return try P256KeyPair(privateKey: scalar)
    }

    /// The key pair of a big-endian private scalar in [1, n-1]. For tests and key
    /// agreement with known keys; the caller should wipe `privateKey` afterwards.
    /// - Throws: `CryptoError.invalidPrivateKey` when the scalar is out of range.
    public init(privateKey: [UInt8]) throws(CryptoError) {
        guard isValidScalar(privateKey) else { throw .invalidPrivateKey }
        var publicKey = try publicPoint(of: privateKey)
        // OSSL_PARAM integers are native-endian. A fresh buffer, so the wipe reaches it.
        let littleEndian = UInt16(1).littleEndian == 1
        var native = [UInt8](repeating: 0, count: Self.scalarLength)
        for i in 0..<Self.scalarLength { native[i] = privateKey[littleEndian ? Self.scalarLength - 1 - i : i] }
        defer { cleanse(&native) }

        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else {
            throw openSSLError("EVP_PKEY_CTX_new_from_name(EC)")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        var pkey: OpaquePointer?
        let ok = publicKey.withUnsafeMutableBytes { pub in
            native.withUnsafeMutableBytes { priv in
                var params = [
                    OSSL_PARAM_construct_utf8_string(cString("group"), cString("P-256"), 0),
                    OSSL_PARAM_construct_octet_string(cString("pub"), pub.baseAddress, pub.count),
                    OSSL_PARAM_construct_BN(
                        cString("priv"), priv.baseAddress!.assumingMemoryBound(to: UInt8.self), priv.count),
                    OSSL_PARAM_construct_end(),
                ]
                return EVP_PKEY_fromdata_init(ctx) == 1
                    && EVP_PKEY_fromdata(ctx, &pkey, selectKeyPair, &params) == 1
            }
        }
        guard ok, let pkey else { throw openSSLError("EVP_PKEY_fromdata(P-256 key pair)") }
        try self.init(key: PKey(pkey))
    }

    /// ECDH with the peer's uncompressed public key; returns the 32-byte X coordinate of
    /// the shared point (WebCrypto `deriveBits(..., 256)`). The peer key must be 65 bytes,
    /// start with 0x04, and be a point on P-256 (cofactor 1, so this is full validation).
    public func sharedSecret(withPeerPublicKey raw: [UInt8]) throws(CryptoError) -> [UInt8] {
        let peer = try importPublicKey(raw)
        guard let ctx = EVP_PKEY_CTX_new_from_pkey(nil, key.pointer, nil) else {
            throw openSSLError("EVP_PKEY_CTX_new_from_pkey")
        }
        defer { EVP_PKEY_CTX_free(ctx) }
        // The peer was checked by importPublicKey; 0 skips OpenSSL's second, full check.
        guard EVP_PKEY_derive_init(ctx) == 1, EVP_PKEY_derive_set_peer_ex(ctx, peer.pointer, 0) == 1 else {
            throw openSSLError("EVP_PKEY_derive_set_peer_ex")
        }
        var length = Self.scalarLength
        var secret = [UInt8](repeating: 0, count: Self.scalarLength)
        guard EVP_PKEY_derive(ctx, &secret, &length) == 1, length == Self.scalarLength else {
            cleanse(&secret)
            throw openSSLError("EVP_PKEY_derive")
        }
        return secret
    }
}

extension P256KeyPair: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "P256KeyPair(publicKey: \(publicKeyBase64), privateKey: <redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: ["publicKeyBase64": publicKeyBase64], displayStyle: .struct)
    }
}

/// Owns one `EVP_PKEY`. OpenSSL allows concurrent read-only use of a key.
private final class PKey: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }
}

/// Parses and validates a peer's uncompressed P-256 point.
private func importPublicKey(_ raw: [UInt8]) throws(CryptoError) -> PKey {
    if let format = raw.first, format != 0x04 { throw .unsupportedPointFormat(format) }
    guard raw.count == P256KeyPair.publicKeyLength else { throw .invalidPublicKeyLength(raw.count) }
    guard let ctx = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else {
        throw openSSLError("EVP_PKEY_CTX_new_from_name(EC)")
    }
    defer { EVP_PKEY_CTX_free(ctx) }
    guard EVP_PKEY_fromdata_init(ctx) == 1 else { throw openSSLError("EVP_PKEY_fromdata_init") }
    var raw = raw
    var pkey: OpaquePointer?
    let imported = raw.withUnsafeMutableBytes { pub in
        var params = [
            OSSL_PARAM_construct_utf8_string(cString("group"), cString("P-256"), 0),
            OSSL_PARAM_construct_octet_string(cString("pub"), pub.baseAddress, pub.count),
            OSSL_PARAM_construct_end(),
        ]
        return EVP_PKEY_fromdata(ctx, &pkey, selectPublicKey, &params) == 1
    }
    // Decoding the point already rejects coordinates >= p and points off the curve.
    guard imported, let pkey else {
        drainErrors()
        throw .publicKeyNotOnCurve
    }
    let key = PKey(pkey)
    // Redundant with the decoding above today; keeps the guarantee explicit and independent
    // of how a provider imports points. Cheap: no scalar multiplication.
    guard let check = EVP_PKEY_CTX_new_from_pkey(nil, pkey, nil) else {
        throw openSSLError("EVP_PKEY_CTX_new_from_pkey")
    }
    defer { EVP_PKEY_CTX_free(check) }
    guard EVP_PKEY_public_check_quick(check) == 1 else {
        drainErrors()
        throw .publicKeyNotOnCurve
    }
    return key
}

/// The order n of the P-256 base point, big-endian.
private let p256Order: [UInt8] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
]

/// Whether a big-endian scalar lies in [1, n-1].
private func isValidScalar(_ scalar: [UInt8]) -> Bool {
    guard scalar.count == P256KeyPair.scalarLength, scalar.contains(where: { $0 != 0 }) else { return false }
    for (s, n) in zip(scalar, p256Order) where s != n { return s < n }
    return false  // equal to n
}

/// The curve, built once; `EC_POINT_mul` only reads it, so threads may share it.
nonisolated(unsafe) private let p256Group: OpaquePointer? = EC_GROUP_new_by_curve_name_ex(nil, nil, NID_X9_62_prime256v1)

/// The uncompressed public point d·G (a constant-time ladder in OpenSSL).
private func publicPoint(of scalar: [UInt8]) throws(CryptoError) -> [UInt8] {
    guard let group = p256Group else { throw openSSLError("EC_GROUP_new_by_curve_name_ex(P-256)") }
    guard let d = scalar.withUnsafeBytes({ BN_bin2bn($0.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32($0.count), nil) })
    else { throw openSSLError("BN_bin2bn") }
    defer { BN_clear_free(d) }
    BN_set_flags(d, BN_FLG_CONSTTIME)
    guard let point = EC_POINT_new(group) else { throw openSSLError("EC_POINT_new") }
    defer { EC_POINT_free(point) }
    var raw = [UInt8](repeating: 0, count: P256KeyPair.publicKeyLength)
    guard EC_POINT_mul(group, point, d, nil, nil, nil) == 1,
          EC_POINT_point2oct(group, point, POINT_CONVERSION_UNCOMPRESSED, &raw, raw.count, nil) == raw.count
    else { throw openSSLError("EC_POINT_mul") }
    return raw
}
