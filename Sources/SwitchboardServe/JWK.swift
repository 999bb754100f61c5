import Switchboard
import SwitchboardCrypto

/// One verification key of a JSON Web Key Set (RFC 7517): RSA (`n`, `e`), EC P-256 (`x`, `y`)
/// or OKP Ed25519 (`x`), with its optional `kid` and `alg`.
struct JWK: Sendable {
    var kid: String?
    /// The algorithm the key is restricted to, when the set says so.
    var algorithm: JWTVerifier.Algorithm?
    var key: PublicKey

    /// Whether a token with `algorithm` may be checked with this key.
    func accepts(_ algorithm: JWTVerifier.Algorithm) -> Bool {
        (self.algorithm == nil || self.algorithm == algorithm) && key.suits(algorithm)
    }

    /// Reads one member of `keys`. Throws a one-line reason for a key that cannot be used.
    init(_ value: JSONValue) throws(JWTKeyError) {
        guard case .object(let members) = value else { throw JWTKeyError(message: "not a JSON object") }
        func text(_ name: String) throws(JWTKeyError) -> String? {
            switch members[name] {
            case nil: return nil
            case .string(let value)?: return value
            default: throw JWTKeyError(message: "\(name) is not a string")
            }
        }
        func bytes(_ name: String) throws(JWTKeyError) -> [UInt8] {
            guard let encoded = try text(name), let decoded = Base64.decodeURL(Array(encoded.utf8)), !decoded.isEmpty else {
                throw JWTKeyError(message: "\(name) is missing or not base64url")
            }
            return decoded
        }
        kid = try text("kid")
        if let use = try text("use"), use != "sig" { throw JWTKeyError(message: "use '\(use)' is not sig") }
        if let alg = try text("alg") {
            guard let known = JWTVerifier.Algorithm(rawValue: alg), known != .hs256 else {
                throw JWTKeyError(message: "alg '\(alg)' is not one of RS256, PS256, ES256, EdDSA")
            }
            algorithm = known
        }
        let der: [UInt8]
        switch try text("kty") {
        case "RSA":
            der = DER.rsaPublicKey(modulus: try bytes("n"), exponent: try bytes("e"))
        case "EC":
            guard try text("crv") == "P-256" else { throw JWTKeyError(message: "EC curve is not P-256") }
            let x = try bytes("x"), y = try bytes("y")
            guard x.count == 32, y.count == 32 else { throw JWTKeyError(message: "P-256 x and y must be 32 bytes each") }
            der = DER.p256Prefix + [0x04] + x + y
        case "OKP":
            guard try text("crv") == "Ed25519" else { throw JWTKeyError(message: "OKP curve is not Ed25519") }
            let x = try bytes("x")
            guard x.count == 32 else { throw JWTKeyError(message: "Ed25519 x must be 32 bytes") }
            der = DER.ed25519Prefix + x
        case let other:
            throw JWTKeyError(message: "kty '\(other ?? "(none)")' is not RSA, EC or OKP")
        }
        key = try PublicKey(der: der)
        if let algorithm, !key.suits(algorithm) {
            throw JWTKeyError(message: "alg \(algorithm.rawValue) does not suit the key")
        }
    }
}

/// A parsed key set: the usable keys, and why the others were skipped.
public struct JWKSet: Sendable {
    var keys: [JWK]
    /// One line per key that was left out (`keys[2]: kty 'oct' is not RSA, EC or OKP`).
    public var skipped: [String]
    public var count: Int { keys.count }
    /// The key ids, in the set's order (nil for a key without one).
    public var kids: [String?] { keys.map(\.kid) }

    /// Reads `{"keys": [...]}`. Throws when the document is not a key set or holds no usable key.
    public static func parse(_ bytes: [UInt8]) throws(JWTKeyError) -> JWKSet {
        guard case .object(let document)? = try? JSONValue.parse(bytes), case .array(let members)? = document["keys"] else {
            throw JWTKeyError(message: "not a JWK set (a JSON object with a \"keys\" array)")
        }
        var set = JWKSet(keys: [], skipped: [])
        for (index, member) in members.enumerated() {
            do { set.keys.append(try JWK(member)) } catch { set.skipped.append("keys[\(index)]: \(error.message)") }
        }
        guard !set.keys.isEmpty else {
            throw JWTKeyError(message: "no usable key" + (set.skipped.isEmpty ? "" : " (" + set.skipped.joined(separator: "; ") + ")"))
        }
        return set
    }

    /// The key for a token: the one with its `kid`; without a `kid`, the only key that suits
    /// `algorithm` (a set of several needs kids to tell them apart).
    func key(kid: String?, algorithm: JWTVerifier.Algorithm) -> Result<PublicKey, JWTError> {
        if let kid {
            guard let key = keys.first(where: { $0.kid == kid }) else { return .failure(.unknownKey("kid '\(kid)' is not in the key set")) }
            guard key.accepts(algorithm) else { return .failure(.algorithmNotAllowed(algorithm.rawValue)) }
            return .success(key.key)
        }
        let suitable = keys.filter { $0.accepts(algorithm) }
        guard suitable.count == 1 else {
            return .failure(.unknownKey(suitable.isEmpty ? "no \(algorithm.rawValue) key in the key set" : "no kid, and several keys suit"))
        }
        return .success(suitable[0].key)
    }
}

/// Just enough DER to turn JWK members into a SubjectPublicKeyInfo OpenSSL reads.
enum DER {
    /// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes follow) }
    static let p256Prefix: [UInt8] = [0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01,
                                      0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00]
    /// SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING (32 bytes follow) }
    static let ed25519Prefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]
    /// AlgorithmIdentifier { rsaEncryption, NULL }
    static let rsaAlgorithm: [UInt8] = [0x30, 0x0D, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01, 0x05, 0x00]

    static func rsaPublicKey(modulus: [UInt8], exponent: [UInt8]) -> [UInt8] {
        let rsaKey = element(0x30, integer(modulus) + integer(exponent))
        return element(0x30, rsaAlgorithm + element(0x03, [0x00] + rsaKey))
    }

    /// A positive INTEGER from big-endian bytes (leading zeros dropped, a sign byte added).
    static func integer(_ bytes: [UInt8]) -> [UInt8] {
        var value = Array(bytes.drop { $0 == 0 })
        if value.isEmpty || value[0] & 0x80 != 0 { value.insert(0, at: 0) }
        return element(0x02, value)
    }

    static func element(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var length: [UInt8] = []
        if content.count < 0x80 {
            length = [UInt8(content.count)]
        } else {
            var count = content.count
            while count > 0 {
                length.insert(UInt8(count & 0xFF), at: 0)
                count >>= 8
            }
            length.insert(0x80 | UInt8(length.count), at: 0)
        }
        return [tag] + length + content
    }
}
