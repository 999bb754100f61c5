import Switchboard
import SwitchboardGen

/// `token: userId` pairs from a development tokens file (YAML: one mapping of strings).
public struct TokenTable: Sendable, Equatable {
    public var users: [String: String]

    public init(users: [String: String]) { self.users = users }

    public static func parse(_ bytes: [UInt8], file: String) throws(ConfigErrors) -> TokenTable {
        guard let root = try ConfigYAML.read(bytes, file: file) else { return TokenTable(users: [:]) }
        guard case .mapping(let pairs) = root.value else {
            throw ConfigErrors([ConfigError(file: file, line: root.line, key: nil,
                                            "expected lines of 'token: userId', got \(root.configKindName)")])
        }
        var users: [String: String] = [:]
        var errors: [ConfigError] = []
        for pair in pairs {
            guard case .scalar(let user, _) = pair.value.value, !pair.value.isNull, !user.isEmpty else {
                errors.append(ConfigError(file: file, line: pair.keyLine, key: nil,
                                          "the token needs a user id ('token: userId'), got \(pair.value.configKindName)"))
                continue
            }
            if pair.key.isEmpty {
                errors.append(ConfigError(file: file, line: pair.keyLine, key: nil, "empty token"))
                continue
            }
            users[pair.key] = user
        }
        if !errors.isEmpty { throw ConfigErrors(errors) }
        return TokenTable(users: users)
    }
}

/// Why `authenticate` data was refused; a fixed set (metrics label them).
public enum AuthFailure: Error, Equatable, Sendable, CustomStringConvertible {
    case missingToken
    case unknownToken
    case jwt(JWTError)
    case tooManyClients
    /// The connect hook's backend answered `{"error": ...}` (docs/proxy.md).
    case proxyRefused
    /// The connect hook's backend failed (timeout, non-2xx, bad JSON): authenticateFn throws.
    case proxyFailed

    public var label: String {
        switch self {
        case .missingToken: "missing_token"
        case .unknownToken: "unknown_token"
        case .jwt(let error): "jwt_" + error.label
        case .tooManyClients: "too_many_clients"
        case .proxyRefused: "proxy_refused"
        case .proxyFailed: "proxy_failed"
        }
    }

    public var description: String {
        switch self {
        case .missingToken: "no token in authenticate data"
        case .unknownToken: "unknown token"
        case .jwt(let error): error.description
        case .tooManyClients: "the user has too many clients"
        case .proxyRefused: "the backend refused the connection"
        case .proxyFailed: "the backend's connect hook failed"
        }
    }

    /// Every label, for metrics that list zeros too.
    public static let labels: [String] = ["missing_token", "unknown_token", "too_many_clients", "proxy_refused", "proxy_failed"]
        + ["malformed", "algorithm", "signature", "expired", "not_yet_valid", "no_exp", "no_sub", "issuer", "audience",
           "unknown_key"].map { "jwt_" + $0 }
}

/// Reads `data.token` and maps it to a user: the tokens file first, then JWT.
public struct Authenticator: Sendable {
    public var tokens: TokenTable?
    public var jwt: JWTVerifier?
    /// Keeps a JWK set current (`auth.jwt.jwks`); the app starts and stops it.
    public var jwks: JWKSRefresher?

    public init(tokens: TokenTable? = nil, jwt: JWTVerifier? = nil) {
        self.tokens = tokens
        self.jwt = jwt
    }

    /// The user, the metadata and the expiry (a JWT's `exp`; none for the tokens file) for
    /// `AuthResult`; `now` is Unix seconds.
    public func check(_ data: JSONValue, now: Int64) -> Result<AuthResult, AuthFailure> {
        guard case .string(let token)? = data["token"], !token.isEmpty else { return .failure(.missingToken) }
        if let user = tokens?.users[token] {
            return .success(AuthResult(userID: user, metadata: ["auth": "tokens"]))
        }
        guard let jwt else { return .failure(.unknownToken) }
        switch jwt.verify(token, now: now) {
        case .success(let claims):
            return .success(AuthResult(userID: claims.subject, metadata: claims.payload, expiresAt: claims.expiresAt))
        case .failure(let error):
            // A token that is not a JWT at all reads better as unknown when a tokens file exists.
            if tokens != nil, case .malformed = error { return .failure(.unknownToken) }
            return .failure(.jwt(error))
        }
    }

    /// Loads the key material and tokens file the configuration names; problems are reported
    /// at the key that names the file.
    public static func make(_ config: ServeConfig) throws(ConfigErrors) -> Authenticator {
        var errors: [ConfigError] = []
        var authenticator = Authenticator()
        if let path = config.auth.tokensFile {
            if let bytes = readFile(path) {
                do { authenticator.tokens = try TokenTable.parse(bytes, file: path) } catch { errors += error.errors }
            } else {
                errors.append(config.error("auth.tokens_file", "cannot read \(path) (\(lastErrorText()))"))
            }
        }
        if let jwt = config.auth.jwt, let key = jwt.key {
            switch key {
            case .hs256Secret(let secret):
                authenticator.jwt = JWTVerifier(hs256Secret: secret, issuer: jwt.issuer, audience: jwt.audience,
                                                clockSkewSeconds: jwt.clockSkewSeconds, requireExp: jwt.requireExp)
            case .hs256SecretFile(let path):
                if let secret = readSecretFile(path) {
                    if secret.count < 32 {
                        errors.append(config.error("auth.jwt.hs256_secret_file",
                                                   "\(path) holds \(secret.count) bytes; an HS256 secret needs at least 32"))
                    } else {
                        authenticator.jwt = JWTVerifier(hs256Secret: secret, issuer: jwt.issuer, audience: jwt.audience,
                                                        clockSkewSeconds: jwt.clockSkewSeconds, requireExp: jwt.requireExp)
                    }
                } else {
                    errors.append(config.error("auth.jwt.hs256_secret_file", "cannot read \(path) (\(lastErrorText()))"))
                }
            case .publicKeyFile(let path):
                if let pem = readFile(path) {
                    do {
                        authenticator.jwt = try JWTVerifier(publicKeyPEM: pem, issuer: jwt.issuer, audience: jwt.audience,
                                                            clockSkewSeconds: jwt.clockSkewSeconds, requireExp: jwt.requireExp)
                    } catch {
                        errors.append(config.error("auth.jwt.public_key_file", "\(path): \(error.message)"))
                    }
                } else {
                    errors.append(config.error("auth.jwt.public_key_file", "cannot read \(path) (\(lastErrorText()))"))
                }
            case .jwks(let source):
                // A file is read now, so that a bad one stops the start; a URL is fetched once
                // the server starts (JWKSRefresher.start), and again every jwks_refresh.
                let store = JWKSStore()
                if case .file(let path) = source {
                    if let bytes = readFile(path) {
                        do { store.replace(with: try JWKSet.parse(bytes)) } catch {
                            errors.append(config.error("auth.jwt.jwks", "\(path): \(error.message)"))
                        }
                    } else {
                        errors.append(config.error("auth.jwt.jwks", "cannot read \(path) (\(lastErrorText()))"))
                    }
                }
                authenticator.jwt = JWTVerifier(keySet: store, issuer: jwt.issuer, audience: jwt.audience,
                                                clockSkewSeconds: jwt.clockSkewSeconds, requireExp: jwt.requireExp)
                authenticator.jwks = JWKSRefresher(source: source, store: store, intervalMilliseconds: jwt.jwksRefreshMilliseconds)
            }
        }
        if !errors.isEmpty { throw ConfigErrors(errors) }
        return authenticator
    }

    /// An HS256 secret file's bytes without the line break an editor leaves at the end.
    static func readSecretFile(_ path: String) -> [UInt8]? {
        guard var secret = readFile(path) else { return nil }
        while let last = secret.last, last == 10 || last == 13 { secret.removeLast() }
        return secret
    }
}
