/// Errors of the crypto module. Each case names what was wrong with the input; `openSSL`
/// reports a library failure that no input can cause (allocation, missing provider).
public enum CryptoError: Error, Equatable, Sendable {
    /// A base64 field did not decode.
    case invalidBase64(Base64.DecodingError)
    /// A P-256 public key was not 65 bytes long (uncompressed point).
    case invalidPublicKeyLength(Int)
    /// A P-256 public key did not start with 0x04; compressed (0x02, 0x03) and hybrid
    /// (0x06, 0x07) points are refused.
    case unsupportedPointFormat(UInt8)
    /// The coordinates are out of range or the point is not on the P-256 curve.
    case publicKeyNotOnCurve
    /// A P-256 private scalar was not 32 bytes or not in [1, n-1].
    case invalidPrivateKey
    /// An AES-256 key was not 32 bytes long.
    case invalidKeyLength(Int)
    /// An AES-GCM IV was not 12 bytes long.
    case invalidIVLength(Int)
    /// A handshake salt was not 32 bytes long.
    case invalidSaltLength(Int)
    /// An AES-GCM input was shorter than its 16-byte tag.
    case ciphertextTooShort(Int)
    /// The AES-GCM tag did not match: wrong key, IV, AAD, or tampered data.
    case authenticationFailed
    /// An OpenSSL call failed; the text names the call and OpenSSL's reason.
    case openSSL(String)
}
