import Foundation
import Switchboard
import SwitchboardCrypto
import TestSupport
import Testing
@testable import SwitchboardServe

/// Keys for JWK sets, made by `openssl genpkey` once per run, and tokens signed by the
/// `openssl` command (not by the code under test), so a mistake shared by our signer and our
/// verifier (a PSS salt length, say) cannot hide.
struct JWKSKeys: Sendable {
    struct Key: Sendable {
        let privatePEM: String
        let jwk: JSONValue
    }
    let rsaA: Key, rsaB: Key, ec: Key, ed: Key

    static let shared: Result<JWKSKeys, TestFailure> = {
        do { return .success(try JWKSKeys()) } catch { return .failure(TestFailure("\(error)")) }
    }()

    private init() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        func make(_ name: String, _ options: [String], jwk: (String, [UInt8]) throws -> [(String, JSONValue)]) throws -> Key {
            let key = dir.path + "/" + name + ".pem"
            try run(["openssl", "genpkey", "-out", key] + options)
            let pub = dir.path + "/" + name + ".pub"
            try run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub])
            let der = [UInt8](try run(["openssl", "pkey", "-pubin", "-in", pub, "-outform", "DER"]).output)
            return Key(privatePEM: try String(contentsOfFile: key, encoding: .utf8), jwk: .object(JSONObject(try jwk(pub, der))))
        }
        func b64(_ bytes: some Collection<UInt8>) -> JSONValue { .string(Base64.encodeURL(Array(bytes))) }
        func rsa(_ pub: String, _ der: [UInt8]) throws -> [(String, JSONValue)] {
            let text = String(decoding: try run(["openssl", "rsa", "-pubin", "-in", pub, "-modulus", "-noout"]).output, as: UTF8.self)
            let hex = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("Modulus=".count))
            let modulus = stride(from: 0, to: hex.count, by: 2).map { UInt8(String(hex[$0...$0 + 1]), radix: 16)! }
            return [("kty", "RSA"), ("n", b64(modulus)), ("e", "AQAB")]  // genpkey's exponent: 65537
        }
        let rsaOptions = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
        rsaA = try make("rsa-a", rsaOptions, jwk: rsa)
        rsaB = try make("rsa-b", rsaOptions, jwk: rsa)
        ec = try make("ec", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]) { _, der in
            [("kty", "EC"), ("crv", "P-256"), ("x", b64(der.suffix(64).prefix(32))), ("y", b64(der.suffix(32)))]
        }
        ed = try make("ed", ["-algorithm", "ed25519"]) { _, der in [("kty", "OKP"), ("crv", "Ed25519"), ("x", b64(der.suffix(32)))] }
    }

    /// A JWK of `key` with `kid` (and `alg` when given).
    static func jwk(_ key: Key, kid: String, alg: String? = nil) -> JSONValue {
        guard case .object(var members) = key.jwk else { return key.jwk }
        members.append(key: "kid", value: .string(kid))
        if let alg { members.append(key: "alg", value: .string(alg)) }
        return .object(members)
    }

    static func set(_ keys: [JSONValue]) -> String { JSONValue.object(JSONObject([("keys", .array(keys))])).serialized() }

    /// A compact JWS over `claims`, signed by the `openssl` command with `alg`.
    static func token(_ claims: JSONValue, key: Key, alg: String, kid: String?) throws -> String {
        var header: [(String, JSONValue)] = [("alg", .string(alg)), ("typ", "JWT")]
        if let kid { header.append(("kid", .string(kid))) }
        let input = Base64.encodeURL(Array(JSONValue.object(JSONObject(header)).serialized().utf8)) + "."
            + Base64.encodeURL(Array(claims.serialized().utf8))
        let dir = try TempDir()
        defer { dir.remove() }
        let keyFile = try dir.write("key.pem", key.privatePEM)
        let inputFile = try dir.write("input", input)
        var signature: [UInt8]
        switch alg {
        case "RS256": signature = [UInt8](try run(["openssl", "dgst", "-sha256", "-sign", keyFile, inputFile]).output)
        case "PS256":
            signature = [UInt8](try run(["openssl", "dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss",
                                         "-sigopt", "rsa_pss_saltlen:32", "-sign", keyFile, inputFile]).output)
        case "ES256": signature = try rawECDSA(der: [UInt8](try run(["openssl", "dgst", "-sha256", "-sign", keyFile, inputFile]).output))
        case "EdDSA": signature = [UInt8](try run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", keyFile, "-in", inputFile]).output)
        default: throw TestFailure("no openssl signing for \(alg)")
        }
        return input + "." + Base64.encodeURL(signature)
    }

    static func claims(_ user: String, expiresIn seconds: Int64 = 3600) -> JSONValue {
        ["sub": .string(user), "exp": .number(JSONNumber(Int64(Date().timeIntervalSince1970) + seconds))]
    }
}

@Suite struct JWKSTests {
    static func keys() throws -> JWKSKeys { try JWKSKeys.shared.get() }
    static var now: Int64 { Int64(Date().timeIntervalSince1970) }

    static func verifier(_ keys: [JSONValue]) throws -> JWTVerifier {
        JWTVerifier(keySet: JWKSStore(try JWKSet.parse(Array(JWKSKeys.set(keys).utf8))))
    }

    @Test(arguments: ["RS256", "PS256", "ES256", "EdDSA"])
    func eachAlgorithmVerifiesWithItsKeyByKid(alg: String) throws {
        let k = try Self.keys()
        let verifier = try Self.verifier([JWKSKeys.jwk(k.rsaA, kid: "rsa"), JWKSKeys.jwk(k.ec, kid: "ec"), JWKSKeys.jwk(k.ed, kid: "ed")])
        let (key, kid) = switch alg {
        case "ES256": (k.ec, "ec")
        case "EdDSA": (k.ed, "ed")
        default: (k.rsaA, "rsa")
        }
        let token = try JWKSKeys.token(JWKSKeys.claims("alice"), key: key, alg: alg, kid: kid)
        let claims = try verifier.verify(token, now: Self.now).get()
        #expect(claims.subject == "alice")
        #expect(claims.expiresAt.map { $0 % 1000 == 0 && $0 / 1000 > Self.now } == true)
        // The same signature under another key's kid fails: the kid chose the key.
        let swapped = try JWKSKeys.token(JWKSKeys.claims("alice"), key: key, alg: alg, kid: kid == "rsa" ? "ec" : "rsa")
        #expect(throws: JWTError.self) { try verifier.verify(swapped, now: Self.now).get() }
        // A flipped signature byte fails.
        var bytes = Array(token.utf8)
        let last = bytes.count - 3
        bytes[last] = bytes[last] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(verifier.verify(String(decoding: bytes, as: UTF8.self), now: Self.now) == .failure(.badSignature))
    }

    @Test func unknownKidAndMismatchedAlgorithmsAreRefused() throws {
        let k = try Self.keys()
        let verifier = try Self.verifier([JWKSKeys.jwk(k.rsaA, kid: "a", alg: "PS256"), JWKSKeys.jwk(k.ed, kid: "ed")])
        let unknown = try JWKSKeys.token(JWKSKeys.claims("alice"), key: k.rsaB, alg: "RS256", kid: "b")
        #expect(verifier.verify(unknown, now: Self.now) == .failure(.unknownKey("kid 'b' is not in the key set")))
        #expect(JWTError.unknownKey("x").label == "unknown_key")
        // The JWK says PS256: an RS256 token with its kid is refused before any signature check.
        let rs256 = try JWKSKeys.token(JWKSKeys.claims("alice"), key: k.rsaA, alg: "RS256", kid: "a")
        #expect(verifier.verify(rs256, now: Self.now) == .failure(.algorithmNotAllowed("RS256")))
        #expect(try verifier.verify(JWKSKeys.token(JWKSKeys.claims("alice"), key: k.rsaA, alg: "PS256", kid: "a"), now: Self.now)
            .get().subject == "alice")
        // An Ed25519 key does not check ES256, and HS256 is never taken from a key set.
        let es = try JWKSKeys.token(JWKSKeys.claims("alice"), key: k.ec, alg: "ES256", kid: "ed")
        #expect(verifier.verify(es, now: Self.now) == .failure(.algorithmNotAllowed("ES256")))
        let hs = JWTSigner.hs256(payload: JWKSKeys.claims("alice"), secret: Array(repeating: 7, count: 32))
        #expect(verifier.verify(hs, now: Self.now) == .failure(.algorithmNotAllowed("HS256")))
        // Without a kid, a set of one suitable key is enough.
        let noKid = try JWKSKeys.token(JWKSKeys.claims("alice"), key: k.ed, alg: "EdDSA", kid: nil)
        #expect(try verifier.verify(noKid, now: Self.now).get().subject == "alice")
    }

    @Test func unusableKeysAreSkippedAndNamed() throws {
        let k = try Self.keys()
        let document = JWKSKeys.set([
            ["kty": "oct", "k": "c2VjcmV0", "kid": "hmac"],
            JWKSKeys.jwk(k.ec, kid: "enc-only").merging("use", "enc"),
            ["kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"],
            JWKSKeys.jwk(k.ed, kid: "ed"),
        ])
        let set = try JWKSet.parse(Array(document.utf8))
        #expect(set.kids == ["ed"])
        #expect(set.skipped.count == 3)
        #expect(set.skipped.first == "keys[0]: kty 'oct' is not RSA, EC or OKP")
        #expect(throws: JWTKeyError.self) { try JWKSet.parse(Array(#"{"keys":[]}"#.utf8)) }
        #expect(throws: JWTKeyError.self) { try JWKSet.parse(Array("[]".utf8)) }
    }

    @Test func aJWKSFileConfiguresTheVerifier() throws {
        let k = try Self.keys()
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("jwks.json", JWKSKeys.set([JWKSKeys.jwk(k.ed, kid: "ed")]))
        let file = try dir.write("serve.yaml", "auth:\n  jwt:\n    jwks: jwks.json\n    jwks_refresh: 2s\n")
        let config = try ConfigLoader.load(path: file, environment: [:])
        #expect(config.auth.jwt?.key == .jwks(.file(dir.path + "/jwks.json")))
        #expect(config.auth.jwt?.jwksRefreshMilliseconds == 2_000)
        let authenticator = try Authenticator.make(config)
        let token = try JWKSKeys.token(JWKSKeys.claims("carol"), key: k.ed, alg: "EdDSA", kid: "ed")
        let result = try authenticator.check(["token": .string(token)], now: Self.now).get()
        #expect(result.userID == "carol")
        #expect(result.expiresAt != nil)
        // A file that is not a key set stops the start, at its key.
        try dir.write("jwks.json", "{}")
        #expect(throws: ConfigErrors.self) { try Authenticator.make(config) }
        #expect(JWKSSource("https://idp.example/.well-known/jwks.json") == .url("https://idp.example/.well-known/jwks.json"))
    }

    /// A token with an unknown kid can arrive before the first load lands and load the set
    /// itself; a key published right after must still load on its first use, and only then does
    /// the interval hold further loads back.
    @Test func aLoadBeforeTheFirstSetDoesNotHoldBackTheNextKid() async throws {
        let k = try Self.keys()
        let dir = try TempDir()
        defer { dir.remove() }
        let path = try dir.write("jwks.json", JWKSKeys.set([JWKSKeys.jwk(k.ed, kid: "ed")]))
        let store = JWKSStore()
        let refresher = JWKSRefresher(source: .file(path), store: store, intervalMilliseconds: 3_600_000,
                                      unknownKeyMilliseconds: 3_600_000)
        #expect(!store.isLoaded)
        #expect(await refresher.refreshForUnknownKey(), "the token that raced the first load loads the set")
        #expect(store.kids == ["ed"])
        try dir.write("jwks.json", JWKSKeys.set([JWKSKeys.jwk(k.ed, kid: "ed"), JWKSKeys.jwk(k.ec, kid: "ec")]))
        #expect(await refresher.refreshForUnknownKey(), "the first unknown kid after the first set loads again")
        #expect(store.kids == ["ed", "ec"])
        try dir.write("jwks.json", JWKSKeys.set([JWKSKeys.jwk(k.ec, kid: "ec")]))
        #expect(await refresher.refreshForUnknownKey() == false, "a second within the interval is held back")
        #expect(store.kids == ["ed", "ec"])
    }
}

extension JSONValue {
    /// This object with one more member.
    func merging(_ name: String, _ value: JSONValue) -> JSONValue {
        guard case .object(var members) = self else { return self }
        members.append(key: name, value: value)
        return .object(members)
    }
}
