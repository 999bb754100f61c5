import ArgumentParser
import Switchboard

/// `switchboard token mint|verify`: tokens for the JWT key the configuration names, so an
/// operator can test a deployment's auth without the identity provider.
struct TokenCLI: ParsableCommand, UsageExitCode {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint or verify a JWT with the configured key (auth.jwt).",
        discussion: """
            The key is the one `switchboard serve` would use: auth.jwt of the config file (--config or \
            SWITCHBOARD_CONFIG) with the SWITCHBOARD_* overrides. Exit status: 0 done, 1 refused token or \
            configuration problem, 2 usage error.
            """,
        subcommands: [Mint.self, Verify.self])

    struct Mint: CLICommand, UsageExitCode {
        static let configuration = CommandConfiguration(
            abstract: "Print a signed token for a user.",
            discussion: """
                HS256 signs with the configured secret. With auth.jwt.public_key_file, --private-key names the \
                matching PEM private key (RSA for RS256, EC P-256 for ES256); with auth.jwt.jwks, --private-key \
                names the key to sign with and --kid its kid in the set. iss and aud come from the config.
                """)
        static let repeatableOptions: Set<String> = ["--claim"]

        @Option(parsing: .unconditional, help: ArgumentHelp("The user id (the sub claim).", valueName: "user"))
        var sub: String
        @Option(parsing: .unconditional, help: ArgumentHelp("How long the token is valid: 30s, 15m, 1h, ... (the exp claim).", valueName: "duration"))
        var ttl = "1h"
        @Option(name: .customLong("claim"), parsing: .unconditionalSingleValue, help: ArgumentHelp(
            "An extra claim; the value is JSON when it parses as JSON, else a string. Repeatable.", valueName: "name=value"))
        var claims: [String] = []
        @Option(name: .customLong("config"), parsing: .unconditional, help: ArgumentHelp("The config file (default: $SWITCHBOARD_CONFIG).", valueName: "file"))
        var configPath: String?
        @Option(parsing: .unconditional, help: ArgumentHelp("The PEM private key for RS256/ES256.", valueName: "file"))
        var privateKey: String?
        @Option(parsing: .unconditional, help: ArgumentHelp(
            "The key id written in the token's header (kid): which key of a JWK set (auth.jwt.jwks) verifies it.", valueName: "kid"))
        var kid: String?

        func execute(_ context: CLIContext) -> Int32 {
            let payload: JSONValue
            do throws(UsageError) { payload = try self.payload(now: unixSeconds()) } catch {
                return refuse(error, context)
            }
            if let kid, kid.isEmpty { return refuse(UsageError("switchboard token mint: --kid needs a key id"), context) }
            switch TokenKeys.load(configPath: configPath, environment: context.environment) {
            case .failure(let failure):
                context.err("switchboard token mint: \(failure.message)\n")
                return 1
            case .success(let keys):
                switch keys.mint(payload, privateKeyPath: privateKey, kid: kid) {
                case .failure(let failure):
                    context.err("switchboard token mint: \(failure.message)\n")
                    return 1
                case .success(let token):
                    context.out(token + "\n")
                    return 0
                }
            }
        }

        /// `sub`, `iat`, `exp`, then `iss`/`aud` from the config (added by `TokenKeys`), then the claims.
        func payload(now: Int64) throws(UsageError) -> JSONValue {
            guard !sub.isEmpty else { throw UsageError("switchboard token mint: --sub needs a user id") }
            guard let milliseconds = FieldKind.milliseconds(ttl), milliseconds >= 1000 else {
                throw UsageError("switchboard token mint: --ttl must be a duration of at least 1s (30s, 15m, 1h), not '\(ttl)'")
            }
            var members: [(String, JSONValue)] = [("sub", .string(sub)), ("iat", .number(JSONNumber(now))),
                                                  ("exp", .number(JSONNumber(now + milliseconds / 1000)))]
            for claim in claims {
                guard let equals = claim.firstIndex(of: "="), equals != claim.startIndex else {
                    throw UsageError("switchboard token mint: --claim must be name=value, not '\(claim)'")
                }
                let name = String(claim[..<equals]), text = String(claim[claim.index(after: equals)...])
                guard !["sub", "iat", "exp"].contains(name) else {
                    throw UsageError("switchboard token mint: --claim \(name)=... is set by --sub and --ttl")
                }
                let value = (try? JSONValue.parse(text)) ?? .string(text)
                members.removeAll { $0.0 == name }
                members.append((name, value))
            }
            return .object(JSONObject(members))
        }
    }

    struct Verify: CLICommand, UsageExitCode {
        static let configuration = CommandConfiguration(
            abstract: "Check a token as `switchboard serve` would; print its claims, or why it is refused (exit 1).")

        @Argument(help: ArgumentHelp("The token; - reads it from standard input.", valueName: "token"))
        var token: String
        @Option(name: .customLong("config"), parsing: .unconditional, help: ArgumentHelp("The config file (default: $SWITCHBOARD_CONFIG).", valueName: "file"))
        var configPath: String?

        func execute(_ context: CLIContext) -> Int32 {
            var text = token
            if text == "-" { text = String(decoding: readFile("/dev/stdin") ?? [], as: UTF8.self) }
            text = text.trimmingSpaces()
            switch TokenKeys.load(configPath: configPath, environment: context.environment) {
            case .failure(let failure):
                context.err("switchboard token verify: \(failure.message)\n")
                return 1
            case .success(let keys):
                switch keys.verifier.verify(text, now: unixSeconds()) {
                case .success(let claims):
                    context.out(claims.payload.serialized() + "\n")
                    return 0
                case .failure(let error):
                    context.err("switchboard token verify: \(error)\n")
                    return 1
                }
            }
        }
    }
}

/// The configured JWT key: the verifier serve would build, and the HS256 secret to sign with.
struct TokenKeys {
    var verifier: JWTVerifier
    var secret: [UInt8]?
    var issuer: String?
    var audience: String?

    static func load(configPath: String?, environment: [String: String]) -> Result<TokenKeys, TokenFailure> {
        let path = configPath ?? environment[ConfigLoader.configVariable]
        let config: ServeConfig, authenticator: Authenticator
        do {
            config = try ConfigLoader.load(path: path, environment: environment)
            authenticator = try Authenticator.make(config)
        } catch {
            return .failure(TokenFailure(error.errors.map(\.description).joined(separator: "\n")))
        }
        guard let jwt = config.auth.jwt, let verifier = authenticator.jwt else {
            let source = path ?? "no config file (--config or SWITCHBOARD_CONFIG) nor the environment"
            return .failure(TokenFailure("no JWT key is configured: \(source) sets auth.jwt.hs256_secret, "
                + "hs256_secret_file, public_key_file or jwks"))
        }
        var keys = TokenKeys(verifier: verifier, issuer: jwt.issuer, audience: jwt.audience)
        switch jwt.key {
        case .hs256Secret(let secret)?: keys.secret = secret
        case .hs256SecretFile(let file)?: keys.secret = Authenticator.readSecretFile(file)
        default: break
        }
        return .success(keys)
    }

    /// Signs `payload` (plus the configured `iss`/`aud` unless given), then checks the token
    /// with the verifier, so a private key that does not match the configured public key is named.
    func mint(_ payload: JSONValue, privateKeyPath: String?, kid: String? = nil) -> Result<String, TokenFailure> {
        guard case .object(var members) = payload else { return .failure(TokenFailure("the payload is not an object")) }
        if let issuer, members["iss"] == nil { members.append(key: "iss", value: .string(issuer)) }
        if let audience, members["aud"] == nil { members.append(key: "aud", value: .string(audience)) }
        let claims = JSONValue.object(members)
        let token: String
        if let secret {
            if privateKeyPath != nil { return .failure(TokenFailure("--private-key is for RS256/ES256; the configured key is an HS256 secret")) }
            token = JWTSigner.hs256(payload: claims, secret: secret, kid: kid)
        } else {
            guard let privateKeyPath else {
                return .failure(TokenFailure("the configured key is \(verifier.algorithm.map { "an \($0.rawValue) public key" } ?? "a JWK set"); "
                    + "minting needs its private key (--private-key FILE)"))
            }
            guard let pem = readFile(privateKeyPath) else { return .failure(TokenFailure("cannot read \(privateKeyPath) (\(lastErrorText()))")) }
            let key: JWTPrivateKey
            do { key = try JWTPrivateKey(pem: pem) } catch { return .failure(TokenFailure("\(privateKeyPath): \(error.message)")) }
            if let expected = verifier.algorithm, key.algorithm != expected {
                return .failure(TokenFailure("\(privateKeyPath) is an \(key.algorithm.rawValue) key; the configured public key is \(expected.rawValue)"))
            }
            guard let signed = JWTSigner.sign(payload: claims, key: key, kid: kid) else { return .failure(TokenFailure("signing failed in OpenSSL")) }
            token = signed
        }
        if case .failure(let error) = verifier.verify(token, now: unixSeconds()), error == .badSignature {
            return .failure(TokenFailure("\(privateKeyPath ?? "the key") does not match the configured key (the minted token fails verification)"))
        }
        return .success(token)
    }
}

/// Why a token could not be minted or checked (printed after the command's name).
struct TokenFailure: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
