import COpenSSL

/// SHA-1, for `Sec-WebSocket-Accept` (RFC 6455 section 4.2.2) only; it is not collision
/// resistant and must not be used for anything else.
public enum SHA1 {
    /// Digest length in bytes.
    public static let byteCount = 20

    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { hash($0) }
    }

    public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: byteCount) { out, initialized in
            hash(bytes, into: UnsafeMutableRawBufferPointer(out))
            initialized = byteCount
        }
    }

    /// Writes the digest of `bytes` into the first `byteCount` bytes of `out`, allocating
    /// nothing: OpenSSL's SHA-1 block functions on a context on the stack, not EVP (see the
    /// COpenSSL shim for why).
    public static func hash(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= byteCount, "SHA1.hash: output buffer too small")
        guard sb_sha1(bytes.baseAddress, bytes.count, out.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 1
        else { fatalError("OpenSSL SHA-1 failed: \(drainErrors())") }
    }
}

/// SHA-256.
public enum SHA256 {
    /// Digest length in bytes.
    public static let byteCount = 32

    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { digest(Algorithms.sha256, byteCount, $0) }
    }

    public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        digest(Algorithms.sha256, byteCount, bytes)
    }

    /// The digest in lowercase hex, as `sha256sum` prints it (the generator's spec fingerprint).
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(2 * byteCount)
        for byte in hash(bytes) {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

private func digest(_ md: OpaquePointer, _ length: Int, _ input: UnsafeRawBufferPointer) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: length) { out, initialized in
        var written: UInt32 = 0
        // EVP_Digest rejects a NULL data pointer only when count > 0; empty input is fine.
        guard EVP_Digest(input.baseAddress, input.count, out.baseAddress, &written, md, nil) == 1,
              Int(written) == length
        else { fatalError("OpenSSL EVP_Digest failed: \(drainErrors())") }
        initialized = length
    }
}
