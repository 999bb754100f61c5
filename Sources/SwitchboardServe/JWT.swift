import COpenSSL
import Switchboard
import SwitchboardCrypto

/// Why a JSON Web Token was refused. The cases are few and fixed (metrics label them).
public enum JWTError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    /// `alg` is not the one the verifier's key is for (`none` included).
    case algorithmNotAllowed(String)
    case badSignature
    case expired
    case notYetValid
    case missingExpiry
    case missingSubject
    case wrongIssuer
    case wrongAudience
    /// A key set has no key for the token's `kid` and `alg` (an unknown, rotated-out or missing kid).
    case unknownKey(String)

    public var description: String {
        switch self {
        case .malformed(let why): "malformed token: \(why)"
        case .algorithmNotAllowed(let alg): "algorithm '\(alg)' is not allowed"
        case .badSignature: "bad signature"
        case .expired: "token expired"
        case .notYetValid: "token not valid yet (nbf)"
        case .missingExpiry: "token has no exp"
        case .missingSubject: "token has no sub"
        case .wrongIssuer: "wrong issuer"
        case .wrongAudience: "wrong audience"
        case .unknownKey(let why): "no key for the token: \(why)"
        }
    }

    /// A short fixed name for metrics.
    public var label: String {
        switch self {
        case .malformed: "malformed"
        case .algorithmNotAllowed: "algorithm"
        case .badSignature: "signature"
        case .expired: "expired"
        case .notYetValid: "not_yet_valid"
        case .missingExpiry: "no_exp"
        case .missingSubject: "no_sub"
        case .wrongIssuer: "issuer"
        case .wrongAudience: "audience"
        case .unknownKey: "unknown_key"
        }
    }
}

/// A problem with the verifier's key material (a configuration error).
public struct JWTKeyError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The verified claims of a token.
public struct JWTClaims: Sendable, Equatable {
    /// `sub`: the user id.
    public var subject: String
    /// The whole payload object.
    public var payload: JSONValue
    /// `exp` in wall-clock milliseconds since 1970; nil when the token has none.
    public var expiresAt: Int64? = nil
}

/// Verifies compact JWS tokens (RFC 7519). With one key (an HS256 secret, or a PEM public key)
/// only the algorithm that key is for is accepted; with a key set (JWKS) the token's `kid`
/// picks the key and `alg` must suit it (RS256, PS256, ES256, EdDSA). `alg: none`, `crit` and
/// unknown algorithms are refused.
public struct JWTVerifier: Sendable {
    public enum Algorithm: String, Sendable, CaseIterable {
        case hs256 = "HS256", rs256 = "RS256", ps256 = "PS256", es256 = "ES256", eddsa = "EdDSA"
    }

    /// The one algorithm of a single-key verifier; nil for a key set, where each key has its own.
    public let algorithm: Algorithm?
    private let secret: [UInt8]
    private let publicKey: PublicKey?
    /// Keys by `kid`, replaced while the verifier is in use (JWKS rotation).
    private let keySet: JWKSStore?
    public var issuer: String?
    public var audience: String?
    public var clockSkewSeconds: Int64
    public var requireExp: Bool

    /// Longest token accepted (bounds the work an unauthenticated client can cause).
    public static let maxTokenLength = 8192

    public init(hs256Secret: [UInt8], issuer: String? = nil, audience: String? = nil,
                clockSkewSeconds: Int = 30, requireExp: Bool = true) {
        algorithm = .hs256
        secret = hs256Secret
        publicKey = nil
        keySet = nil
        self.issuer = issuer
        self.audience = audience
        self.clockSkewSeconds = Int64(clockSkewSeconds)
        self.requireExp = requireExp
    }

    /// A PEM public key (`BEGIN PUBLIC KEY`) or certificate: RSA of at least 2048 bits selects
    /// RS256, an EC P-256 key ES256.
    public init(publicKeyPEM pem: [UInt8], issuer: String? = nil, audience: String? = nil,
                clockSkewSeconds: Int = 30, requireExp: Bool = true) throws(JWTKeyError) {
        let key = try PublicKey(pem: pem)
        algorithm = key.algorithm
        secret = []
        publicKey = key
        keySet = nil
        self.issuer = issuer
        self.audience = audience
        self.clockSkewSeconds = Int64(clockSkewSeconds)
        self.requireExp = requireExp
    }

    /// Verifies with the keys a JWKS holds now: each token's `kid` chooses one (see `JWKSStore`).
    public init(keySet: JWKSStore, issuer: String? = nil, audience: String? = nil,
                clockSkewSeconds: Int = 30, requireExp: Bool = true) {
        algorithm = nil
        secret = []
        publicKey = nil
        self.keySet = keySet
        self.issuer = issuer
        self.audience = audience
        self.clockSkewSeconds = Int64(clockSkewSeconds)
        self.requireExp = requireExp
    }

    /// Checks signature, `alg`, `exp`/`nbf` (with the clock skew), `iss`, `aud` and `sub`.
    /// `now` is Unix time in seconds.
    public func verify(_ token: String, now: Int64) -> Result<JWTClaims, JWTError> {
        let bytes = Array(token.utf8)
        guard bytes.count <= Self.maxTokenLength else { return .failure(.malformed("longer than \(Self.maxTokenLength) bytes")) }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(.malformed("expected three dot-separated parts")) }
        guard let headerBytes = Base64.decodeURL(parts[0]), let payloadBytes = Base64.decodeURL(parts[1]),
              let signature = Base64.decodeURL(parts[2]) else { return .failure(.malformed("invalid base64url")) }
        guard case .object(let header)? = try? JSONValue.parse(headerBytes) else {
            return .failure(.malformed("the header is not a JSON object"))
        }
        guard case .string(let alg)? = header["alg"] else { return .failure(.malformed("the header has no alg")) }
        if header["crit"] != nil { return .failure(.malformed("crit header parameters are not supported")) }
        let signingInput = Array(bytes[0..<(parts[0].count + 1 + parts[1].count)])
        if let keySet {
            guard let algorithm = Algorithm(rawValue: alg), algorithm != .hs256 else { return .failure(.algorithmNotAllowed(alg)) }
            let kid: String?
            switch header["kid"] {
            case nil: kid = nil
            case .string(let value)?: kid = value
            default: return .failure(.malformed("kid is not a string"))
            }
            switch keySet.key(kid: kid, algorithm: algorithm) {
            case .failure(let error): return .failure(error)
            case .success(let key):
                guard key.verify(signature: signature, message: signingInput, algorithm: algorithm) else { return .failure(.badSignature) }
            }
        } else {
            guard alg == algorithm?.rawValue else { return .failure(.algorithmNotAllowed(alg)) }
            guard checkSignature(signature, over: signingInput) else { return .failure(.badSignature) }
        }

        guard case .object(let payload)? = try? JSONValue.parse(payloadBytes) else {
            return .failure(.malformed("the payload is not a JSON object"))
        }
        var expiresAt: Int64?
        switch numericDate(payload["exp"]) {
        case .absent: if requireExp { return .failure(.missingExpiry) }
        case .invalid: return .failure(.malformed("exp is not a number"))
        case .value(let exp):
            if Double(now) >= exp + Double(clockSkewSeconds) { return .failure(.expired) }
            // Far-off dates stay far off without overflowing (year 292 million is never).
            expiresAt = exp * 1000 < 9.0e15 ? Int64((exp * 1000).rounded(.down)) : nil
        }
        switch numericDate(payload["nbf"]) {
        case .absent: break
        case .invalid: return .failure(.malformed("nbf is not a number"))
        case .value(let nbf): if Double(now + clockSkewSeconds) < nbf { return .failure(.notYetValid) }
        }
        if let issuer {
            guard case .string(let iss)? = payload["iss"], iss == issuer else { return .failure(.wrongIssuer) }
        }
        if let audience {
            switch payload["aud"] {
            case .string(let aud)? where aud == audience: break
            case .array(let items)? where items.contains(.string(audience)): break
            default: return .failure(.wrongAudience)
            }
        }
        guard case .string(let subject)? = payload["sub"], !subject.isEmpty else { return .failure(.missingSubject) }
        return .success(JWTClaims(subject: subject, payload: .object(payload), expiresAt: expiresAt))
    }

    private enum NumericDate { case absent, invalid, value(Double) }

    private func numericDate(_ value: JSONValue?) -> NumericDate {
        guard let value else { return .absent }
        guard case .number(let number) = value, let seconds = number.double, seconds.isFinite else { return .invalid }
        return .value(seconds)
    }

    private func checkSignature(_ signature: [UInt8], over input: [UInt8]) -> Bool {
        switch algorithm {
        case .hs256?:
            guard signature.count == 32 else { return false }
            return constantTimeEquals(HMACSHA256.mac(key: secret, message: input), signature)
        case let algorithm?:
            return publicKey?.verify(signature: signature, message: input, algorithm: algorithm) ?? false
        case nil:
            return false
        }
    }
}

/// Compact JWS signing with HS256: development tokens and tests.
public enum JWTSigner {
    public static func hs256(payload: JSONValue, secret: [UInt8], kid: String? = nil) -> String {
        let headerJSON = kid.map { JSONValue.object(JSONObject([("alg", "HS256"), ("typ", "JWT"), ("kid", .string($0))])).serialized() }
            ?? #"{"alg":"HS256","typ":"JWT"}"#
        let header = Base64.encodeURL(Array(headerJSON.utf8))
        let body = Base64.encodeURL(Array(payload.serialized().utf8))
        let input = header + "." + body
        return input + "." + Base64.encodeURL(HMACSHA256.mac(key: secret, message: Array(input.utf8)))
    }
}

/// HMAC-SHA256 through OpenSSL's EVP_MAC.
public enum HMACSHA256 {
    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length = 0
        let result = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBufferPointer { messageBytes in
                out.withUnsafeMutableBufferPointer { outBytes in
                    EVP_Q_mac(nil, "HMAC", nil, "SHA256", nil, keyBytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1),
                              keyBytes.count, messageBytes.baseAddress, messageBytes.count,
                              outBytes.baseAddress, 32, &length)
                }
            }
        }
        precondition(result != nil && length == 32, "HMAC-SHA256 failed in OpenSSL")
        return out
    }
}

/// An RSA, P-256 or Ed25519 public key held by OpenSSL.
final class PublicKey: @unchecked Sendable {
    private let key: OpaquePointer
    /// The algorithm a PEM key file stands for (RSA: RS256); a JWK may name another (PS256).
    let algorithm: JWTVerifier.Algorithm

    convenience init(pem: [UInt8]) throws(JWTKeyError) {
        guard let key = Self.read(pem) else {
            throw JWTKeyError(message: "not a PEM public key or certificate (expected -----BEGIN PUBLIC KEY-----)")
        }
        try self.init(taking: key)
    }

    /// A DER SubjectPublicKeyInfo (what a JWK's members are turned into).
    convenience init(der: [UInt8]) throws(JWTKeyError) {
        let read = der.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            var cursor = buffer.baseAddress
            return d2i_PUBKEY(nil, &cursor, buffer.count)
        }
        guard let key = read else {
            ERR_clear_error()
            throw JWTKeyError(message: "OpenSSL does not read the key")
        }
        try self.init(taking: key)
    }

    /// Takes ownership of `key` (freed here if it is refused).
    private init(taking key: OpaquePointer) throws(JWTKeyError) {
        switch EVP_PKEY_get_base_id(key) {
        case NID_rsaEncryption:
            let bits = EVP_PKEY_get_bits(key)
            guard bits >= 2048 else {
                EVP_PKEY_free(key)
                throw JWTKeyError(message: "RSA key of \(bits) bits; RS256 needs at least 2048")
            }
            algorithm = .rs256
        case NID_X9_62_id_ecPublicKey:
            var name = [CChar](repeating: 0, count: 64)
            var length = 0
            let curve = EVP_PKEY_get_group_name(key, &name, name.count, &length) == 1
                ? String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self) : "unknown"
            guard curve == "prime256v1" || curve == "P-256" else {
                EVP_PKEY_free(key)
                throw JWTKeyError(message: "EC key on curve \(curve); ES256 needs P-256 (prime256v1)")
            }
            algorithm = .es256
        case NID_ED25519:
            algorithm = .eddsa
        default:
            EVP_PKEY_free(key)
            throw JWTKeyError(message: "unsupported key type; use an RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA) public key")
        }
        self.key = key
    }

    deinit { EVP_PKEY_free(key) }

    private static func read(_ pem: [UInt8]) -> OpaquePointer? {
        pem.withUnsafeBytes { raw -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            if let key = PEM_read_bio_PUBKEY(bio, nil, nil, nil) { return key }
            ERR_clear_error()
            _ = BIO_ctrl(bio, BIO_CTRL_RESET, 0, nil)
            guard let certificate = PEM_read_bio_X509(bio, nil, nil, nil) else {
                ERR_clear_error()
                return nil
            }
            defer { X509_free(certificate) }
            return X509_get_pubkey(certificate)
        }
    }

    /// Whether this key can check `algorithm`: RS256 and PS256 need RSA, ES256 P-256, EdDSA Ed25519.
    func suits(_ algorithm: JWTVerifier.Algorithm) -> Bool {
        switch algorithm {
        case .rs256, .ps256: self.algorithm == .rs256
        case .es256: self.algorithm == .es256
        case .eddsa: self.algorithm == .eddsa
        case .hs256: false
        }
    }

    /// The JWS signature check of `algorithm` (RFC 7518 3.3-3.5, RFC 8037): SHA-256 with
    /// PKCS #1 v1.5 or PSS (salt as long as the digest) for RSA, raw `r || s` ECDSA for P-256,
    /// Ed25519 over the message itself. False for an algorithm the key does not suit.
    func verify(signature: [UInt8], message: [UInt8], algorithm: JWTVerifier.Algorithm) -> Bool {
        guard suits(algorithm) else { return false }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        var signature = signature
        var keyContext: OpaquePointer?
        switch algorithm {
        case .eddsa:
            guard EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1 else {
                ERR_clear_error()
                return false
            }
        default:
            if algorithm == .es256 {
                guard signature.count == 64 else { return false }
                signature = derECDSASignature(raw: signature)
            }
            guard EVP_DigestVerifyInit(context, &keyContext, EVP_sha256(), nil, key) == 1 else {
                ERR_clear_error()
                return false
            }
            if algorithm == .ps256 {
                guard EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) == 1,
                      EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, RSA_PSS_SALTLEN_DIGEST) == 1 else {
                    ERR_clear_error()
                    return false
                }
            }
        }
        let ok = signature.withUnsafeBufferPointer { sig in
            message.withUnsafeBufferPointer { msg in
                EVP_DigestVerify(context, sig.baseAddress, sig.count, msg.baseAddress, msg.count)
            }
        }
        if ok != 1 { ERR_clear_error() }
        return ok == 1
    }
}

/// JOSE's raw `r || s` (32 + 32 bytes) as the DER `SEQUENCE { INTEGER r, INTEGER s }` OpenSSL reads.
func derECDSASignature(raw: [UInt8]) -> [UInt8] {
    func integer(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var value = Array(bytes.drop { $0 == 0 })
        if value.isEmpty { value = [0] }
        if value[0] & 0x80 != 0 { value.insert(0, at: 0) }
        return [0x02, UInt8(value.count)] + value
    }
    let body = integer(raw[0..<32]) + integer(raw[32..<64])
    return [0x30, UInt8(body.count)] + body
}
