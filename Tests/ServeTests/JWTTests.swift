import Foundation
import Switchboard
import SwitchboardCrypto
import TestSupport
import Testing
@testable import SwitchboardServe

/// Keys made by `openssl genpkey` once per test run; tokens signed by `openssl dgst`.
struct OpenSSLKeys: Sendable {
    let rsaPrivate: String, rsaPublic: [UInt8]
    let ecPrivate: String, ecPublic: [UInt8]
    let ecCertificate: [UInt8]
    let rsa1024Public: [UInt8]
    let p384Public: [UInt8]

    static let shared: Result<OpenSSLKeys, TestFailure> = {
        do { return .success(try OpenSSLKeys()) } catch { return .failure(TestFailure("\(error)")) }
    }()

    private init() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        func make(_ name: String, _ options: [String]) throws -> (String, [UInt8]) {
            let key = dir.path + "/" + name + ".pem"
            try run(["openssl", "genpkey", "-out", key] + options)
            let pub = try run(["openssl", "pkey", "-in", key, "-pubout"]).output
            return (try String(contentsOfFile: key, encoding: .utf8), [UInt8](pub))
        }
        (rsaPrivate, rsaPublic) = try make("rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        (ecPrivate, ecPublic) = try make("ec", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
        rsa1024Public = try make("rsa1024", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]).1
        p384Public = try make("p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]).1
        ecCertificate = [UInt8](try run(["openssl", "req", "-new", "-x509", "-key", dir.path + "/ec.pem",
                                         "-subj", "/CN=switchboard-test", "-days", "1"]).output)
    }

    /// `openssl dgst -sha256 -sign` over `input` (DER for EC keys).
    static func sign(_ input: String, privateKeyPEM: String) throws -> [UInt8] {
        let dir = try TempDir()
        defer { dir.remove() }
        let key = try dir.write("key.pem", privateKeyPEM)
        return [UInt8](try run(["openssl", "dgst", "-sha256", "-sign", key], stdin: Data(input.utf8)).output)
    }
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }` -> JOSE `r || s` (32 + 32 bytes).
func rawECDSA(der: [UInt8]) throws -> [UInt8] {
    var index = 2
    if der[1] & 0x80 != 0 { index += Int(der[1] & 0x7F) }
    var out: [UInt8] = []
    for _ in 0..<2 {
        guard der[index] == 0x02 else { throw TestFailure("not a DER INTEGER") }
        let length = Int(der[index + 1])
        var value = Array(der[(index + 2)..<(index + 2 + length)]).drop { $0 == 0 }
        while value.count < 32 { value.insert(0, at: value.startIndex) }
        out += value
        index += 2 + length
    }
    return out
}

private let secret = Array("0123456789abcdef0123456789abcdef".utf8)
private let now: Int64 = 1_800_000_000

private func b64(_ text: String) -> String { Base64.encodeURL(Array(text.utf8)) }

/// A token with the given header and payload JSON, signed by `sign` over `header.payload`.
private func token(_ header: String, _ payload: String, sign: (String) throws -> [UInt8]) rethrows -> String {
    let input = b64(header) + "." + b64(payload)
    return input + "." + Base64.encodeURL(try sign(input))
}

private func hs256(_ payload: String, key: [UInt8] = secret, header: String = #"{"alg":"HS256","typ":"JWT"}"#) -> String {
    token(header, payload) { HMACSHA256.mac(key: key, message: Array($0.utf8)) }
}

@Suite struct HS256Tests {
    let verifier = JWTVerifier(hs256Secret: secret)

    @Test func hmacKnownAnswer() {
        // RFC 4231 test case 2.
        let mac = HMACSHA256.mac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(mac.map { String(format: "%02x", $0) }.joined() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func signerMatchesTheWellKnownExample() {
        let signed = JWTSigner.hs256(payload: ["sub": "1234567890", "name": "John Doe", "iat": 1516239022],
                                     secret: Array("your-256-bit-secret".utf8))
        #expect(signed == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
    }

    @Test func aValidToken() throws {
        let claims = try verifier.verify(hs256(#"{"sub":"alice","exp":1800000100,"role":"admin"}"#), now: now).get()
        #expect(claims.subject == "alice")
        #expect(claims.payload["role"] == "admin")
    }

    @Test func expiryWithClockSkew() {
        #expect(verifier.verify(hs256(#"{"sub":"a","exp":1799999969}"#), now: now) == .failure(.expired))
        #expect(verifier.verify(hs256(#"{"sub":"a","exp":1799999990}"#), now: now).map(\.subject) == .success("a"))
        let strict = JWTVerifier(hs256Secret: secret, clockSkewSeconds: 0)
        #expect(strict.verify(hs256(#"{"sub":"a","exp":1800000000}"#), now: now) == .failure(.expired))
    }

    @Test func notBeforeWithClockSkew() {
        #expect(verifier.verify(hs256(#"{"sub":"a","exp":1800009999,"nbf":1800000031}"#), now: now) == .failure(.notYetValid))
        #expect(verifier.verify(hs256(#"{"sub":"a","exp":1800009999,"nbf":1800000010}"#), now: now).map(\.subject) == .success("a"))
    }

    @Test func badSignatures() {
        let good = hs256(#"{"sub":"a","exp":1800009999}"#)
        var tampered = Array(good)
        tampered[tampered.count - 2] = tampered[tampered.count - 2] == "A" ? "B" : "A"
        #expect(verifier.verify(String(tampered), now: now) == .failure(.badSignature))
        #expect(verifier.verify(hs256(#"{"sub":"a","exp":1800009999}"#, key: Array(repeating: 7, count: 32)), now: now) == .failure(.badSignature))
        let parts = good.split(separator: ".")
        let otherPayload = b64(#"{"sub":"root","exp":1800009999}"#)
        #expect(verifier.verify("\(parts[0]).\(otherPayload).\(parts[2])", now: now) == .failure(.badSignature))
    }

    @Test func algNoneAndOtherAlgorithmsAreRefused() {
        let none = b64(#"{"alg":"none","typ":"JWT"}"#) + "." + b64(#"{"sub":"a","exp":1800009999}"#) + "."
        #expect(verifier.verify(none, now: now) == .failure(.algorithmNotAllowed("none")))
        let hs384 = hs256(#"{"sub":"a","exp":1800009999}"#, header: #"{"alg":"HS384"}"#)
        #expect(verifier.verify(hs384, now: now) == .failure(.algorithmNotAllowed("HS384")))
        let rs = hs256(#"{"sub":"a","exp":1800009999}"#, header: #"{"alg":"RS256"}"#)
        #expect(verifier.verify(rs, now: now) == .failure(.algorithmNotAllowed("RS256")))
        let crit = hs256(#"{"sub":"a","exp":1800009999}"#, header: #"{"alg":"HS256","crit":["x"]}"#)
        #expect(verifier.verify(crit, now: now) == .failure(.malformed("crit header parameters are not supported")))
    }

    @Test func claimsChecks() {
        #expect(verifier.verify(hs256(#"{"sub":"a"}"#), now: now) == .failure(.missingExpiry))
        let lenient = JWTVerifier(hs256Secret: secret, requireExp: false)
        #expect(lenient.verify(hs256(#"{"sub":"a"}"#), now: now).map(\.subject) == .success("a"))
        #expect(verifier.verify(hs256(#"{"exp":1800009999}"#), now: now) == .failure(.missingSubject))
        #expect(verifier.verify(hs256(#"{"sub":"","exp":1800009999}"#), now: now) == .failure(.missingSubject))
        #expect(verifier.verify(hs256(#"{"sub":"a","exp":"soon"}"#), now: now) == .failure(.malformed("exp is not a number")))

        let scoped = JWTVerifier(hs256Secret: secret, issuer: "https://id", audience: "sb")
        #expect(scoped.verify(hs256(#"{"sub":"a","exp":1800009999,"iss":"https://id","aud":"sb"}"#), now: now).map(\.subject) == .success("a"))
        #expect(scoped.verify(hs256(#"{"sub":"a","exp":1800009999,"iss":"https://id","aud":["x","sb"]}"#), now: now).map(\.subject) == .success("a"))
        #expect(scoped.verify(hs256(#"{"sub":"a","exp":1800009999,"iss":"https://evil","aud":"sb"}"#), now: now) == .failure(.wrongIssuer))
        #expect(scoped.verify(hs256(#"{"sub":"a","exp":1800009999,"iss":"https://id","aud":"other"}"#), now: now) == .failure(.wrongAudience))
        #expect(scoped.verify(hs256(#"{"sub":"a","exp":1800009999,"iss":"https://id"}"#), now: now) == .failure(.wrongAudience))
    }

    @Test func malformedTokens() {
        #expect(verifier.verify("abc.def", now: now) == .failure(.malformed("expected three dot-separated parts")))
        #expect(verifier.verify("a+b.c.d", now: now) == .failure(.malformed("invalid base64url")))
        #expect(verifier.verify(b64("[1]") + "." + b64("{}") + ".", now: now) == .failure(.malformed("the header is not a JSON object")))
        let long = String(repeating: "a", count: JWTVerifier.maxTokenLength + 1)
        #expect(verifier.verify(long, now: now) == .failure(.malformed("longer than 8192 bytes")))
    }
}

@Suite struct PublicKeyJWTTests {
    let keys: OpenSSLKeys

    init() throws { keys = try OpenSSLKeys.shared.get() }

    private func rs256(_ payload: String, header: String = #"{"alg":"RS256","typ":"JWT"}"#) throws -> String {
        try token(header, payload) { try OpenSSLKeys.sign($0, privateKeyPEM: keys.rsaPrivate) }
    }

    private func es256(_ payload: String) throws -> String {
        try token(#"{"alg":"ES256","typ":"JWT"}"#, payload) { try rawECDSA(der: OpenSSLKeys.sign($0, privateKeyPEM: keys.ecPrivate)) }
    }

    @Test func rs256() throws {
        let verifier = try JWTVerifier(publicKeyPEM: keys.rsaPublic)
        #expect(verifier.algorithm == .rs256)
        #expect(verifier.verify(try rs256(#"{"sub":"bob","exp":1800009999}"#), now: now).map(\.subject) == .success("bob"))
        #expect(verifier.verify(try rs256(#"{"sub":"bob","exp":1700000000}"#), now: now) == .failure(.expired))
        let good = try rs256(#"{"sub":"bob","exp":1800009999}"#).split(separator: ".")
        #expect(verifier.verify("\(good[0]).\(b64(#"{"sub":"eve","exp":1800009999}"#)).\(good[2])", now: now) == .failure(.badSignature))
    }

    @Test func es256() throws {
        let verifier = try JWTVerifier(publicKeyPEM: keys.ecPublic)
        #expect(verifier.algorithm == .es256)
        #expect(verifier.verify(try es256(#"{"sub":"carol","exp":1800009999}"#), now: now).map(\.subject) == .success("carol"))
        let good = try es256(#"{"sub":"carol","exp":1800009999}"#).split(separator: ".")
        #expect(verifier.verify("\(good[0]).\(b64(#"{"sub":"eve","exp":1800009999}"#)).\(good[2])", now: now) == .failure(.badSignature))
        // A DER signature (what OpenSSL emits) is not the JOSE form.
        let der = try token(#"{"alg":"ES256"}"#, #"{"sub":"c","exp":1800009999}"#) { try OpenSSLKeys.sign($0, privateKeyPEM: keys.ecPrivate) }
        #expect(verifier.verify(der, now: now) == .failure(.badSignature))
        let certificate = try JWTVerifier(publicKeyPEM: keys.ecCertificate)
        #expect(certificate.verify(try es256(#"{"sub":"carol","exp":1800009999}"#), now: now).map(\.subject) == .success("carol"))
    }

    @Test func keyConfusionIsRefused() throws {
        let rsa = try JWTVerifier(publicKeyPEM: keys.rsaPublic)
        // The classic attack: HS256 "signed" with the public key as the HMAC secret.
        let forged = hs256(#"{"sub":"admin","exp":1800009999}"#, key: keys.rsaPublic)
        #expect(rsa.verify(forged, now: now) == .failure(.algorithmNotAllowed("HS256")))
        let ec = try JWTVerifier(publicKeyPEM: keys.ecPublic)
        #expect(ec.verify(try rs256(#"{"sub":"bob","exp":1800009999}"#), now: now) == .failure(.algorithmNotAllowed("RS256")))
        let none = b64(#"{"alg":"none"}"#) + "." + b64(#"{"sub":"a","exp":1800009999}"#) + "."
        #expect(rsa.verify(none, now: now) == .failure(.algorithmNotAllowed("none")))
    }

    @Test func weakOrUnsupportedKeysAreRefused() {
        #expect(throws: JWTKeyError(message: "RSA key of 1024 bits; RS256 needs at least 2048")) {
            try JWTVerifier(publicKeyPEM: keys.rsa1024Public)
        }
        #expect(throws: JWTKeyError(message: "EC key on curve secp384r1; ES256 needs P-256 (prime256v1)")) {
            try JWTVerifier(publicKeyPEM: keys.p384Public)
        }
        #expect(throws: JWTKeyError.self) { try JWTVerifier(publicKeyPEM: Array("garbage".utf8)) }
    }

    @Test func derConversionRoundTrips() throws {
        var raw = [UInt8](repeating: 0, count: 64)
        raw[0] = 0x80; raw[31] = 1; raw[32] = 0; raw[33] = 0; raw[34] = 0x7F; raw[63] = 9
        #expect(try rawECDSA(der: derECDSASignature(raw: raw)) == raw)
    }
}

@Suite struct TokenAuthTests {
    @Test func tokensFile() throws {
        let table = try TokenTable.parse(Array("# dev\nabc: alice\n\"x:y\": bob\n".utf8), file: "tokens.yaml")
        #expect(table.users == ["abc": "alice", "x:y": "bob"])
        #expect(try TokenTable.parse([], file: "t").users.isEmpty)
    }

    @Test func tokensFileErrorsHaveLines() {
        #expect(throws: ConfigErrors.self) { try TokenTable.parse(Array("a: alice\nb:\n".utf8), file: "t.yaml") }
        do {
            _ = try TokenTable.parse(Array("a: alice\nb:\nc: [x]\n".utf8), file: "t.yaml")
        } catch {
            #expect(error.errors.map(\.description) == [
                "t.yaml:2: the token needs a user id ('token: userId'), got a scalar",
                "t.yaml:3: the token needs a user id ('token: userId'), got a list",
            ])
        }
        do {
            _ = try TokenTable.parse(Array("- a\n".utf8), file: "t.yaml")
        } catch {
            #expect(error.errors.map(\.description) == ["t.yaml:1: expected lines of 'token: userId', got a list"])
        }
    }

    @Test func authenticatorOrder() {
        let auth = Authenticator(tokens: TokenTable(users: ["dev": "alice"]), jwt: JWTVerifier(hs256Secret: secret))
        #expect(auth.check(["token": "dev"], now: now).map(\.userID) == .success("alice"))
        #expect(auth.check(["token": .string(hs256(#"{"sub":"bob","exp":1800009999}"#))], now: now).map(\.userID) == .success("bob"))
        #expect(auth.check(["token": "nope"], now: now) == .failure(.unknownToken))
        #expect(auth.check([:], now: now) == .failure(.missingToken))
        #expect(auth.check(["token": 5], now: now) == .failure(.missingToken))
        #expect(auth.check(["token": .string(hs256(#"{"sub":"bob","exp":1}"#))], now: now) == .failure(.jwt(.expired)))
        let jwtOnly = Authenticator(jwt: JWTVerifier(hs256Secret: secret))
        #expect(jwtOnly.check(["token": "nope"], now: now) == .failure(.jwt(.malformed("expected three dot-separated parts"))))
        #expect(Authenticator(tokens: TokenTable(users: [:])).check(["token": "x"], now: now) == .failure(.unknownToken))
    }
}
