import COpenSSL

/// Algorithms fetched once from the default provider. An explicit fetch avoids the
/// per-call implicit fetch (a name lookup under a lock) of `EVP_sha256()` and friends.
/// Fetched algorithm objects are immutable and safe to share between threads, hence
/// `nonisolated(unsafe)`.
enum Algorithms {
    nonisolated(unsafe) static let sha256: OpaquePointer = fetchDigest("SHA256")
    nonisolated(unsafe) static let aes256GCM: OpaquePointer = {
        guard let cipher = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) else {
            fatalError("OpenSSL: AES-256-GCM is not available (\(drainErrors()))")
        }
        return cipher
    }()
    nonisolated(unsafe) static let hkdf: OpaquePointer = {
        guard let kdf = EVP_KDF_fetch(nil, "HKDF", nil) else {
            fatalError("OpenSSL: HKDF is not available (\(drainErrors()))")
        }
        return kdf
    }()

    private static func fetchDigest(_ name: String) -> OpaquePointer {
        guard let md = EVP_MD_fetch(nil, name, nil) else {
            fatalError("OpenSSL: digest \(name) is not available (\(drainErrors()))")
        }
        return md
    }
}

/// `EVP_PKEY_fromdata` selections (evp.h macros that Swift does not import).
let selectPublicKey = Int32(OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS | OSSL_KEYMGMT_SELECT_OTHER_PARAMETERS
    | OSSL_KEYMGMT_SELECT_PUBLIC_KEY)
let selectKeyPair = selectPublicKey | Int32(OSSL_KEYMGMT_SELECT_PRIVATE_KEY)

/// OSSL_PARAM keys and constant values must outlive the parameter array, so they come
/// from static strings, never from temporary bridged Swift strings.
@inline(__always)
func cString(_ s: StaticString) -> UnsafeMutablePointer<CChar> {
    UnsafeMutableRawPointer(mutating: s.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// Empties this thread's OpenSSL error queue and returns the first reason. Every failure
/// path calls it: a stale entry would confuse a later `SSL_get_error` on the same thread.
@discardableResult
func drainErrors() -> String {
    let code = ERR_get_error()
    ERR_clear_error()
    guard code != 0 else { return "no reason given" }
    if let reason = ERR_reason_error_string(code) { return String(cString: reason) }
    return "error 0x\(String(code, radix: 16))"
}

/// The error for a failed OpenSSL call, with the queue drained.
func openSSLError(_ call: StaticString) -> CryptoError {
    .openSSL("\(call): \(drainErrors())")
}

/// Overwrites `bytes` with zeros in a way the optimizer cannot drop.
func cleanse(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { raw in
        if let base = raw.baseAddress { OPENSSL_cleanse(base, raw.count) }
    }
}
