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
}

/// Verifies compact JWS tokens (RFC 7519) signed with HS256, RS256 or ES256. Only the one
/// algorithm the key is for is accepted; `alg: none`, `crit` and unknown algorithms are refused.
public struct JWTVerifier: Sendable {
    public enum Algorithm: String, Sendable {
        case hs256 = "HS256", rs256 = "RS256", es256 = "ES256"
    }

    public let algorithm: Algorithm
    private let secret: [UInt8]
    private let publicKey: PublicKey?
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
        guard alg == algorithm.rawValue else { return .failure(.algorithmNotAllowed(alg)) }
        if header["crit"] != nil { return .failure(.malformed("crit header parameters are not supported")) }

        let signingInput = Array(bytes[0..<(parts[0].count + 1 + parts[1].count)])
        guard checkSignature(signature, over: signingInput) else { return .failure(.badSignature) }

        guard case .object(let payload)? = try? JSONValue.parse(payloadBytes) else {
            return .failure(.malformed("the payload is not a JSON object"))
        }
        switch numericDate(payload["exp"]) {
        case .absent: if requireExp { return .failure(.missingExpiry) }
        case .invalid: return .failure(.malformed("exp is not a number"))
        case .value(let exp): if Double(now) >= exp + Double(clockSkewSeconds) { return .failure(.expired) }
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
        return .success(JWTClaims(subject: subject, payload: .object(payload)))
    }

    private enum NumericDate { case absent, invalid, value(Double) }

    private func numericDate(_ value: JSONValue?) -> NumericDate {
        guard let value else { return .absent }
        guard case .number(let number) = value, let seconds = number.double, seconds.isFinite else { return .invalid }
        return .value(seconds)
    }

    private func checkSignature(_ signature: [UInt8], over input: [UInt8]) -> Bool {
        switch algorithm {
        case .hs256:
            guard signature.count == 32 else { return false }
            return constantTimeEquals(HMACSHA256.mac(key: secret, message: input), signature)
        case .rs256:
            return publicKey?.verify(signature: signature, message: input) ?? false
        case .es256:
            guard signature.count == 64 else { return false }
            return publicKey?.verify(signature: derECDSASignature(raw: signature), message: input) ?? false
        }
    }
}

/// Compact JWS signing with HS256: development tokens and tests.
public enum JWTSigner {
    public static func hs256(payload: JSONValue, secret: [UInt8]) -> String {
        let header = Base64.encodeURL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
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

/// An RSA or P-256 public key held by OpenSSL.
final class PublicKey: @unchecked Sendable {
    private let key: OpaquePointer
    let algorithm: JWTVerifier.Algorithm

    init(pem: [UInt8]) throws(JWTKeyError) {
        guard let key = Self.read(pem) else {
            throw JWTKeyError(message: "not a PEM public key or certificate (expected -----BEGIN PUBLIC KEY-----)")
        }
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
        default:
            EVP_PKEY_free(key)
            throw JWTKeyError(message: "unsupported key type; use an RSA (RS256) or EC P-256 (ES256) public key")
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

    /// SHA-256 digest signature check (PKCS #1 v1.5 for RSA, DER ECDSA for EC).
    func verify(signature: [UInt8], message: [UInt8]) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, EVP_sha256(), nil, key) == 1 else {
            ERR_clear_error()
            return false
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
