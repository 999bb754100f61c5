import COpenSSL

/// AES-256-GCM with a 12-byte IV and a 16-byte tag appended to the ciphertext, the layout
/// of WebCrypto's `AES-GCM` (`tagLength: 128`).
///
/// The key is expanded once: each instance keeps one `EVP_CIPHER_CTX` for sealing and one
/// for opening, and only sets a new IV per message. Thread safety: an instance and its
/// copies share these contexts, so they may move between threads but must be used by one
/// thread at a time (one connection's loop). The contexts are freed, and the expanded key
/// wiped by OpenSSL, when the last copy goes away.
public struct AESGCM: @unchecked Sendable {
    public static let keyLength = 32
    public static let ivLength = 12
    public static let tagLength = 16

    private let contexts: GCMContexts

    /// - Throws: `CryptoError.invalidKeyLength` unless `key` is 32 bytes.
    public init(key: [UInt8]) throws(CryptoError) {
        guard key.count == Self.keyLength else { throw .invalidKeyLength(key.count) }
        let result = key.withUnsafeBytes { key in
            Result { () throws(CryptoError) in try GCMContexts(key: key) }
        }
        contexts = try result.get()
    }

    /// Encrypts `plaintext` under the 12-byte `iv` and returns ciphertext || tag. Never
    /// reuse an IV with the same key.
    public func seal(_ plaintext: [UInt8], iv: [UInt8], aad: [UInt8] = []) -> [UInt8] {
        precondition(iv.count == Self.ivLength, "AES-GCM: IV must be 12 bytes")
        let count = plaintext.count + Self.tagLength
        return plaintext.withUnsafeBytes { pt in
            iv.withUnsafeBytes { iv in
                aad.withUnsafeBytes { aad in
                    [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
                        contexts.seal(pt, iv: iv, aad: aad, into: UnsafeMutableRawBufferPointer(out))
                        initialized = count
                    }
                }
            }
        }
    }

    /// Draws a fresh IV from `random` and returns it with ciphertext || tag.
    public func sealWithRandomIV(
        _ plaintext: [UInt8], aad: [UInt8] = [], random: inout some RandomSource
    ) -> (iv: [UInt8], ciphertextAndTag: [UInt8]) {
        let iv = random.bytes(Self.ivLength)
        return (iv, seal(plaintext, iv: iv, aad: aad))
    }

    /// Draws a fresh IV from OpenSSL's generator and returns it with ciphertext || tag.
    /// IVs are drawn from a reserve that `RAND_bytes` refills 4 KiB at a time, because one
    /// `RAND_bytes` call costs more than sealing a small message.
    public func sealWithRandomIV(_ plaintext: [UInt8], aad: [UInt8] = []) -> (iv: [UInt8], ciphertextAndTag: [UInt8]) {
        var random = IVSource()
        return sealWithRandomIV(plaintext, aad: aad, random: &random)
    }

    /// Writes ciphertext || tag (`plaintext.count + 16` bytes) at the start of `out`.
    public func seal(
        _ plaintext: UnsafeRawBufferPointer, iv: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        into out: UnsafeMutableRawBufferPointer
    ) {
        precondition(iv.count == Self.ivLength, "AES-GCM: IV must be 12 bytes")
        precondition(out.count >= plaintext.count + Self.tagLength, "AES-GCM: output buffer too small")
        contexts.seal(plaintext, iv: iv, aad: aad, into: out)
    }

    /// Verifies and decrypts ciphertext || tag. No plaintext is returned unless the tag
    /// matches.
    /// - Throws: `invalidIVLength`, `ciphertextTooShort`, or `authenticationFailed`.
    public func open(_ ciphertextAndTag: [UInt8], iv: [UInt8], aad: [UInt8] = []) throws(CryptoError) -> [UInt8] {
        guard iv.count == Self.ivLength else { throw .invalidIVLength(iv.count) }
        guard ciphertextAndTag.count >= Self.tagLength else { throw .ciphertextTooShort(ciphertextAndTag.count) }
        let count = ciphertextAndTag.count - Self.tagLength
        var failure: CryptoError?
        let plaintext = ciphertextAndTag.withUnsafeBytes { input in
            iv.withUnsafeBytes { iv in
                aad.withUnsafeBytes { aad in
                    [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
                        failure = contexts.open(input, iv: iv, aad: aad, into: UnsafeMutableRawBufferPointer(out))
                        initialized = failure == nil ? count : 0
                    }
                }
            }
        }
        if let failure { throw failure }
        return plaintext
    }

    /// Verifies ciphertext || tag and writes the plaintext (`count - 16` bytes) at the
    /// start of `out`; returns its length. On failure `out` holds no plaintext.
    public func open(
        _ ciphertextAndTag: UnsafeRawBufferPointer, iv: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        into out: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) -> Int {
        guard iv.count == Self.ivLength else { throw .invalidIVLength(iv.count) }
        guard ciphertextAndTag.count >= Self.tagLength else { throw .ciphertextTooShort(ciphertextAndTag.count) }
        let count = ciphertextAndTag.count - Self.tagLength
        precondition(out.count >= count, "AES-GCM: output buffer too small")
        if let failure = contexts.open(ciphertextAndTag, iv: iv, aad: aad, into: out) { throw failure }
        return count
    }
}

extension AESGCM: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "AESGCM(key: <redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

/// Owns the two keyed cipher contexts of an `AESGCM`.
private final class GCMContexts {
    private let sealContext: OpaquePointer
    private let openContext: OpaquePointer

    init(key: UnsafeRawBufferPointer) throws(CryptoError) {
        guard let sealContext = EVP_CIPHER_CTX_new() else { throw openSSLError("EVP_CIPHER_CTX_new") }
        guard let openContext = EVP_CIPHER_CTX_new() else {
            EVP_CIPHER_CTX_free(sealContext)
            throw openSSLError("EVP_CIPHER_CTX_new")
        }
        let k = key.baseAddress!.assumingMemoryBound(to: UInt8.self)
        guard EVP_EncryptInit_ex2(sealContext, Algorithms.aes256GCM, k, nil, nil) == 1,
              EVP_DecryptInit_ex2(openContext, Algorithms.aes256GCM, k, nil, nil) == 1
        else {
            EVP_CIPHER_CTX_free(sealContext)
            EVP_CIPHER_CTX_free(openContext)
            throw openSSLError("EVP_CipherInit_ex2")
        }
        self.sealContext = sealContext
        self.openContext = openContext
    }

    deinit {
        // EVP_CIPHER_CTX_free cleanses the expanded key.
        EVP_CIPHER_CTX_free(sealContext)
        EVP_CIPHER_CTX_free(openContext)
    }

    func seal(
        _ plaintext: UnsafeRawBufferPointer, iv: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        into out: UnsafeMutableRawBufferPointer
    ) {
        let ctx = sealContext
        guard EVP_EncryptInit_ex2(ctx, nil, nil, bytes(iv), nil) == 1,
              update(ctx, aad, into: nil),
              update(ctx, plaintext, into: out.baseAddress)
        else { fatalError("OpenSSL AES-GCM encryption failed: \(drainErrors())") }
        var written: Int32 = 0
        let tag = out.baseAddress! + plaintext.count
        guard EVP_EncryptFinal_ex(ctx, tag.assumingMemoryBound(to: UInt8.self), &written) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, Int32(AESGCM.tagLength), tag) == 1
        else { fatalError("OpenSSL AES-GCM finalization failed: \(drainErrors())") }
    }

    /// Returns nil on success. On failure any plaintext written to `out` is wiped.
    func open(
        _ input: UnsafeRawBufferPointer, iv: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        into out: UnsafeMutableRawBufferPointer
    ) -> CryptoError? {
        let ctx = openContext
        let count = input.count - AESGCM.tagLength
        let ciphertext = UnsafeRawBufferPointer(rebasing: input[..<count])
        let tag = UnsafeMutableRawPointer(mutating: input.baseAddress! + count)
        guard EVP_DecryptInit_ex2(ctx, nil, nil, bytes(iv), nil) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, Int32(AESGCM.tagLength), tag) == 1,
              update(ctx, aad, into: nil),
              update(ctx, ciphertext, into: out.baseAddress)
        else {
            if count > 0 { OPENSSL_cleanse(out.baseAddress, count) }
            return openSSLError("AES-GCM decryption")
        }
        var written: Int32 = 0
        var scratch: UInt8 = 0  // GCM's final step writes nothing; OpenSSL wants a pointer.
        guard EVP_DecryptFinal_ex(ctx, &scratch, &written) == 1 else {
            if count > 0 { OPENSSL_cleanse(out.baseAddress, count) }
            drainErrors()
            return .authenticationFailed
        }
        return nil
    }

    /// Feeds `input` through `EVP_CipherUpdate` in chunks that fit its `int` length;
    /// `out == nil` feeds AAD.
    private func update(_ ctx: OpaquePointer, _ input: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer?) -> Bool {
        var offset = 0
        while offset < input.count {
            let chunk = min(input.count - offset, 1 << 30)
            var written: Int32 = 0
            let source = (input.baseAddress! + offset).assumingMemoryBound(to: UInt8.self)
            let target = out.map { ($0 + offset).assumingMemoryBound(to: UInt8.self) }
            guard EVP_CipherUpdate(ctx, target, &written, source, Int32(chunk)) == 1 else { return false }
            offset += chunk
        }
        return true
    }

    private func bytes(_ raw: UnsafeRawBufferPointer) -> UnsafePointer<UInt8>? {
        raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }
}
