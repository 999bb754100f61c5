import COpenSSL

/// HKDF (RFC 5869), extract-then-expand, over OpenSSL's `EVP_KDF` "HKDF".
public enum HKDF {
    /// HKDF-SHA256 of `secret` (non-empty) into `length` bytes (1...8160). An empty salt
    /// means the RFC's default, a string of 32 zero bytes.
    public static func sha256(secret: [UInt8], salt: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        precondition(!secret.isEmpty, "HKDF: empty input keying material")
        precondition(length > 0 && length <= 255 * SHA256.byteCount, "HKDF-SHA256: length must be 1...8160")
        guard let ctx = EVP_KDF_CTX_new(Algorithms.hkdf) else {
            fatalError("OpenSSL EVP_KDF_CTX_new failed: \(drainErrors())")
        }
        defer { EVP_KDF_CTX_free(ctx) }

        return secret.withUnsafeBytes { key in
            salt.withUnsafeBytes { salt in
                info.withUnsafeBytes { info in
                    var params: [OSSL_PARAM] = [
                        OSSL_PARAM_construct_utf8_string(cString("digest"), cString("SHA256"), 0),
                        OSSL_PARAM_construct_octet_string(
                            cString("key"), UnsafeMutableRawPointer(mutating: key.baseAddress), key.count),
                    ]
                    // Absent salt and info parameters are OpenSSL's "empty".
                    if salt.count > 0 {
                        params.append(OSSL_PARAM_construct_octet_string(
                            cString("salt"), UnsafeMutableRawPointer(mutating: salt.baseAddress), salt.count))
                    }
                    if info.count > 0 {
                        params.append(OSSL_PARAM_construct_octet_string(
                            cString("info"), UnsafeMutableRawPointer(mutating: info.baseAddress), info.count))
                    }
                    params.append(OSSL_PARAM_construct_end())
                    return [UInt8](unsafeUninitializedCapacity: length) { out, initialized in
                        guard EVP_KDF_derive(ctx, out.baseAddress, length, params) == 1 else {
                            fatalError("OpenSSL EVP_KDF_derive (HKDF) failed: \(drainErrors())")
                        }
                        initialized = length
                    }
                }
            }
        }
    }
}
