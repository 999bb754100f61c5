import COpenSSL
import Switchboard
import SwitchboardCrypto

/// A PEM private key for minting RS256/PS256/ES256/EdDSA tokens (`switchboard token mint
/// --private-key`, and tests). The server itself never holds one: it verifies with public keys.
final class JWTPrivateKey: @unchecked Sendable {
    private let key: OpaquePointer
    let algorithm: JWTVerifier.Algorithm

    /// `algorithm` picks PS256 rather than RS256 for an RSA key; other keys have one algorithm.
    init(pem: [UInt8], algorithm requested: JWTVerifier.Algorithm? = nil) throws(JWTKeyError) {
        let read = pem.withUnsafeBytes { raw -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key = read else {
            ERR_clear_error()
            throw JWTKeyError(message: "not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)")
        }
        switch EVP_PKEY_get_base_id(key) {
        case NID_rsaEncryption where EVP_PKEY_get_bits(key) >= 2048: algorithm = requested == .ps256 ? .ps256 : .rs256
        case NID_X9_62_id_ecPublicKey where EVP_PKEY_get_bits(key) == 256: algorithm = .es256
        case NID_ED25519: algorithm = .eddsa
        default:
            EVP_PKEY_free(key)
            throw JWTKeyError(message: "unsupported key; use RSA of at least 2048 bits (RS256, PS256), EC P-256 (ES256) or Ed25519 (EdDSA)")
        }
        if let requested, requested != algorithm {
            EVP_PKEY_free(key)
            throw JWTKeyError(message: "the key cannot sign \(requested.rawValue)")
        }
        self.key = key
    }

    deinit { EVP_PKEY_free(key) }

    /// The JWS signature over `input`: PKCS #1 v1.5 or PSS for RSA, raw `r || s` (JOSE) for
    /// ECDSA, Ed25519 over the input itself.
    func sign(_ input: [UInt8]) -> [UInt8]? {
        guard let context = EVP_MD_CTX_new() else { return nil }
        defer { EVP_MD_CTX_free(context) }
        var keyContext: OpaquePointer?
        guard EVP_DigestSignInit(context, &keyContext, algorithm == .eddsa ? nil : EVP_sha256(), nil, key) == 1 else {
            ERR_clear_error()
            return nil
        }
        if algorithm == .ps256 {
            guard EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) == 1,
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, RSA_PSS_SALTLEN_DIGEST) == 1 else {
                ERR_clear_error()
                return nil
            }
        }
        var length = 0
        guard input.withUnsafeBufferPointer({ EVP_DigestSign(context, nil, &length, $0.baseAddress, $0.count) }) == 1 else {
            ERR_clear_error()
            return nil
        }
        var signature = [UInt8](repeating: 0, count: length)
        let ok = signature.withUnsafeMutableBufferPointer { out in
            input.withUnsafeBufferPointer { EVP_DigestSign(context, out.baseAddress, &length, $0.baseAddress, $0.count) }
        }
        guard ok == 1 else {
            ERR_clear_error()
            return nil
        }
        signature.removeSubrange(length...)
        return algorithm == .es256 ? rawECDSASignature(der: signature) : signature
    }
}

/// The DER `SEQUENCE { INTEGER r, INTEGER s }` OpenSSL writes as JOSE's 64-byte `r || s`.
func rawECDSASignature(der: [UInt8]) -> [UInt8]? {
    var index = 0
    func take() -> UInt8? {
        guard index < der.count else { return nil }
        defer { index += 1 }
        return der[index]
    }
    func integer() -> [UInt8]? {
        guard take() == 0x02, let count = take(), index + Int(count) <= der.count else { return nil }
        var bytes = Array(der[index..<(index + Int(count))])
        index += Int(count)
        while bytes.count > 32, bytes.first == 0 { bytes.removeFirst() }
        guard bytes.count <= 32 else { return nil }
        return [UInt8](repeating: 0, count: 32 - bytes.count) + bytes
    }
    guard take() == 0x30, take() != nil, let r = integer(), let s = integer() else { return nil }
    return r + s
}

extension JWTSigner {
    /// A compact JWS signed with `key` (with the algorithm the key is for), and `kid` in the
    /// header when given (for a verifier with a JWK set).
    static func sign(payload: JSONValue, key: JWTPrivateKey, kid: String? = nil) -> String? {
        var members: [(String, JSONValue)] = [("alg", .string(key.algorithm.rawValue)), ("typ", "JWT")]
        if let kid { members.append(("kid", .string(kid))) }
        let header = Base64.encodeURL(Array(JSONValue.object(JSONObject(members)).serialized().utf8))
        let input = header + "." + Base64.encodeURL(Array(payload.serialized().utf8))
        return key.sign(Array(input.utf8)).map { input + "." + Base64.encodeURL($0) }
    }
}
