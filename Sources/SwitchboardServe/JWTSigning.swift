import COpenSSL
import Switchboard
import SwitchboardCrypto

/// A PEM private key for minting RS256/ES256 tokens (`switchboard token mint --private-key`).
/// The server itself never holds one: it verifies with the public key only.
final class JWTPrivateKey: @unchecked Sendable {
    private let key: OpaquePointer
    let algorithm: JWTVerifier.Algorithm

    init(pem: [UInt8]) throws(JWTKeyError) {
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
        case NID_rsaEncryption where EVP_PKEY_get_bits(key) >= 2048: algorithm = .rs256
        case NID_X9_62_id_ecPublicKey where EVP_PKEY_get_bits(key) == 256: algorithm = .es256
        default:
            EVP_PKEY_free(key)
            throw JWTKeyError(message: "unsupported key; use RSA of at least 2048 bits (RS256) or EC P-256 (ES256)")
        }
        self.key = key
    }

    deinit { EVP_PKEY_free(key) }

    /// The JWS signature over `input`: PKCS #1 v1.5 for RSA, raw `r || s` (JOSE) for ECDSA.
    func sign(_ input: [UInt8]) -> [UInt8]? {
        guard let context = EVP_MD_CTX_new() else { return nil }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, EVP_sha256(), nil, key) == 1 else {
            ERR_clear_error()
            return nil
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
    /// A compact JWS signed with `key` (RS256 or ES256, as the key is).
    static func sign(payload: JSONValue, key: JWTPrivateKey) -> String? {
        let header = Base64.encodeURL(Array(#"{"alg":"\#(key.algorithm.rawValue)","typ":"JWT"}"#.utf8))
        let input = header + "." + Base64.encodeURL(Array(payload.serialized().utf8))
        return key.sign(Array(input.utf8)).map { input + "." + Base64.encodeURL($0) }
    }
}
