import SwitchboardCrypto
import TestSupport
import Foundation
import Switchboard
import Testing
@testable import SwitchboardServe

/// The `switchboard` binary as an operator runs it: exit codes, stdout and stderr.
@Suite struct CLITests {
    @Test func versionNamesTheBuildAndTheSpec() async throws {
        let plain = try await switchboard(["--version"])
        #expect(plain.status == 0)
        let lines = plain.out.split(separator: "\n").map(String.init)
        #expect(lines.first == "switchboard \(BuildInfo.sourceVersion)")
        #expect(lines.contains("spec digest: \(TransitionTable.specDigest)"))
        #expect(lines.contains { $0.hasPrefix("swift: 6.") })
        #expect(lines.contains("commit: unknown"))

        let stamped = try await switchboard(["--version"], environment: ["SWITCHBOARD_VERSION": "1.4.0+3f2a9c1"])
        #expect(stamped.out.hasPrefix("switchboard 1.4.0\ncommit: 3f2a9c1\n"))
    }

    @Test func helpForEveryCommand() async throws {
        for command in [["serve"], ["emit"], ["config", "check"], ["config", "defaults"], ["token", "mint"],
                        ["token", "verify"], ["spec", "validate"]] {
            let result = try await switchboard(command + ["--help"])
            #expect(result.status == 0, "\(command)")
            #expect(result.out.contains("USAGE: switchboard \(command.joined(separator: " "))"), "\(command)")
        }
        #expect(try await switchboard(["serve", "--help"]).out.contains("--log-level <level>"))
        #expect(try await switchboard(["emit", "--help"]).out.contains("--exclude <ids>"))
    }

    @Test func usageErrorsKeepTheirExitCodes() async throws {
        #expect(try await switchboard([]).status == 2)
        #expect(try await switchboard(["frobnicate"]).status == 2)
        let serve = try await switchboard(["serve", "--port", "70000"])
        #expect(serve.status == 1)
        #expect(serve.err.hasPrefix("switchboard serve: --port must be 0 to 65535, not '70000'\n"))
        #expect(try await switchboard(["spec", "validate", "--spek", "x"]).status == 1)
    }

    /// CONTRACT.md: a bad `--redis` is the seed's error first on stderr, exit 1.
    @Test func emitKeepsTheContract() async throws {
        let result = try await switchboard(["emit", "--redis", "", "--type", "room", "--target", "r", "--event", "e", "--data", "1"])
        #expect(result.status == 1)
        #expect(result.err.hasPrefix("Invalid redis connection! (--redis: the Redis URL is empty)\n"))
        let unreachable = try await switchboard(["emit", "--redis", "redis://127.0.0.1:1", "--type", "broadcast", "--event", "e", "--data", "1"])
        #expect(unreachable.status == 1 && unreachable.err.hasPrefix("switchboard emit: cannot connect to Redis at 127.0.0.1:1"))
    }

    /// A value that starts with `-` is still the flag's value (`--data -5`), as before ArgumentParser.
    @Test func valuesMayStartWithADash() throws {
        let command = try EmitCommand.parse(["--redis", "redis://h", "--type", "room", "--target", "-r", "--event", "-e", "--data", "-5"])
        #expect(command.envelope.target == "-r" && command.envelope.event == "-e" && command.envelope.data == -5)
        #expect(try ServeCommand.parse(["--host", "-x"]).host == "-x")
    }

    @Test func emitTakesTheRedisURLFromTheConfig() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let file = try dir.write("c.yaml", "redis:\n  url: redis://10.1.2.3:6390/4\n")
        let base = ["--type", "room", "--target", "r", "--event", "e", "--data", "1"]
        #expect(try EmitCommand.parse(base + ["--config", file]).redis.nodes.map(\.description) == ["10.1.2.3:6390"])
        #expect(try EmitCommand.parse(base, environment: ["SWITCHBOARD_CONFIG": file]).redis.database == 4)
        // The variable overrides the file, and --redis both.
        let variable = try EmitCommand.parse(base + ["--config", file], environment: ["SWITCHBOARD_REDIS_URL": "redis://h:1"])
        #expect(variable.redis.nodes.map(\.description) == ["h:1"])
        #expect(try EmitCommand.parse(base + ["--config", file, "--redis", "redis://g:2"]).redis.nodes.map(\.description) == ["g:2"])
        #expect(throws: UsageError("Invalid redis connection! (environment variable SWITCHBOARD_REDIS_URL: redis.url: the Redis URL is empty)")) {
            try EmitCommand.parse(base, environment: ["SWITCHBOARD_REDIS_URL": ""])
        }
        let empty = try dir.write("empty.yaml", "listen:\n  port: 1\n")
        #expect(throws: UsageError("switchboard emit: --redis URL is required (redis://host:port); \(empty) has no redis.url")) {
            try EmitCommand.parse(base + ["--config", empty])
        }
    }

    // MARK: config

    @Test func configCheckExitCodes() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("valid.yaml", "listen:\n  port: 9000\nauth:\n  jwt:\n    hs256_secret_file: secret.txt\n")
        try dir.write("secret.txt", "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t\n")
        let valid = try await switchboard(["config", "check", "valid.yaml"], environment: ["SWITCHBOARD_LISTEN_HOST": "0.0.0.0"],
                                    directory: dir.path)
        #expect(valid.status == 0)
        #expect(valid.out.contains("  port: 9000   # valid.yaml:2\n"))
        #expect(valid.out.contains("  host: \"0.0.0.0\"   # environment variable SWITCHBOARD_LISTEN_HOST\n"))

        try dir.write("invalid.yaml", "listen:\n  port: 99999\ntimers:\n  auth_timeout: soon\nauth:\n  tokens_file: missing.yaml\n")
        let invalid = try await switchboard(["config", "check", "invalid.yaml"], directory: dir.path)
        #expect(invalid.status == 1)
        #expect(invalid.out.isEmpty)
        let errors = invalid.err.split(separator: "\n").map(String.init)
        #expect(errors.contains { $0.hasPrefix("invalid.yaml:2: listen.port: expected an integer from 0 to 65535") })
        #expect(errors.contains { $0.hasPrefix("invalid.yaml:4: timers.auth_timeout: expected a duration") })
        #expect(errors.last == "switchboard config check: invalid.yaml: 2 errors")

        // The files a valid configuration names are checked too, at the key that names them.
        try dir.write("files.yaml", "auth:\n  tokens_file: missing.yaml\n")
        let files = try await switchboard(["config", "check", "files.yaml"], directory: dir.path)
        #expect(files.status == 1)
        #expect(files.err.hasPrefix("files.yaml:2: auth.tokens_file: cannot read missing.yaml (No such file or directory)\n"))

        #expect(try await switchboard(["config", "check", "--strict", "valid.yaml"], directory: dir.path).status == 2)
        #expect(try await switchboard(["config", "check", "a.yaml", "b.yaml"], directory: dir.path).status == 2)
        #expect(try await switchboard(["config"]).status == 2)
    }

    @Test func configCheckMasksSecrets() async throws {
        let secret = "a-secret-that-must-not-be-printed-0123456789"
        let result = try await switchboard(["config", "check"], environment: ["SWITCHBOARD_AUTH_JWT_HS256_SECRET": secret,
                                                                        "SWITCHBOARD_REDIS_URL": "redis://user:hunter2@127.0.0.1:6379"])
        #expect(result.status == 0)
        #expect(!result.out.contains(secret) && !result.out.contains("hunter2"))
        #expect(result.out.contains("hs256_secret: \"*** (\(secret.utf8.count) bytes)\""))
        #expect(result.out.contains("url: \"redis://user:***@127.0.0.1:6379\""))
    }

    /// `config defaults` is a config file: loaded back, it is the defaults.
    @Test func configDefaultsIsAValidFileOfTheDefaults() async throws {
        let printed = try await switchboard(["config", "defaults"])
        #expect(printed.status == 0)
        let loaded = try ConfigLoader.load(bytes: Array(printed.out.utf8), file: "defaults.yaml", baseDirectory: ".", environment: [:])
        #expect(ConfigRender.yaml(loaded, mask: false, sources: false) == ConfigRender.yaml(ServeConfig(), mask: false, sources: false))
        #expect(loaded.port == 8080 && loaded.demoPage && loaded.redis == nil && loaded.auth.jwt == nil)
        #expect(printed.out.contains("\n  heartbeat_timeout: 90s\n"))
    }

    /// A key added to the schema needs its line in ConfigRender, or `config check` cannot show it.
    @Test func everySchemaKeyIsRendered() {
        for field in ConfigSchema.fields {
            #expect(ConfigRender.renderers[field.key] != nil, "no renderer for \(field.key)")
        }
    }

    // MARK: token

    @Test func tokenMintVerifyRoundTripHS256() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let config = try dir.write("jwt.yaml", "auth:\n  jwt:\n    hs256_secret: 0123456789abcdef0123456789abcdef\n    issuer: https://id.example/\n")
        let mint = try await switchboard(["token", "mint", "--sub", "alice", "--ttl", "10m", "--claim", "role=admin",
                                    "--claim", "level=3", "--config", config])
        #expect(mint.status == 0)
        let token = mint.out.trimmingCharacters(in: .whitespacesAndNewlines)

        let verified = try await switchboard(["token", "verify", token, "--config", config])
        #expect(verified.status == 0)
        let claims = try JSONValue.parse(verified.out)
        #expect(claims["sub"] == "alice" && claims["role"] == "admin" && claims["level"] == 3)
        #expect(claims["iss"] == "https://id.example/")
        guard case .number(let iat)? = claims["iat"], case .number(let exp)? = claims["exp"] else {
            throw TestFailure("no iat or exp in \(verified.out)")
        }
        #expect((exp.int ?? 0) - (iat.int ?? 0) == 600)
        // The same through standard input and SWITCHBOARD_CONFIG.
        #expect(try await switchboard(["token", "verify", "-"], environment: ["SWITCHBOARD_CONFIG": config], stdin: token + "\n").status == 0)

        // Another payload under the same signature: refused.
        let parts = token.split(separator: ".").map(String.init)
        let forged = parts[0] + "." + Base64.encodeURL(Array(#"{"sub":"mallory","exp":9999999999}"#.utf8)) + "." + parts[2]
        let tampered = try await switchboard(["token", "verify", forged, "--config", config])
        #expect(tampered.status == 1 && tampered.err == "switchboard token verify: bad signature\n" && tampered.out.isEmpty)

        let expired = JWTSigner.hs256(payload: ["sub": "alice", "exp": .number(JSONNumber(unixSeconds() - 3600)), "iss": "https://id.example/"],
                                      secret: Array("0123456789abcdef0123456789abcdef".utf8))
        let late = try await switchboard(["token", "verify", expired, "--config", config])
        #expect(late.status == 1 && late.err == "switchboard token verify: token expired\n")
    }

    @Test func tokenMintUsageAndKeyErrors() async throws {
        #expect(try await switchboard(["token", "mint"]).status == 2)   // --sub is required
        #expect(try await switchboard(["token", "mint", "--sub", "a", "--ttl", "soon"]).status == 2)
        #expect(try await switchboard(["token", "mint", "--sub", "a", "--claim", "exp=1"]).status == 2)
        let unconfigured = try await switchboard(["token", "mint", "--sub", "a"])
        #expect(unconfigured.status == 1 && unconfigured.err.contains("no JWT key is configured"))
    }

    static let openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(.enabled(if: openssl != nil, "openssl is not installed"), arguments: [
        ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    ])
    func tokenMintWithAPrivateKeyVerifiesWithThePublicKey(_ generate: [String]) async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try await offThePool { try run([Self.openssl!, "genpkey"] + generate + ["-out", dir.path + "/key.pem"]) }
        try await offThePool { try run([Self.openssl!, "pkey", "-in", dir.path + "/key.pem", "-pubout", "-out", dir.path + "/public.pem"]) }
        try await offThePool { try run([Self.openssl!, "genpkey"] + generate + ["-out", dir.path + "/other.pem"]) }
        try dir.write("jwt.yaml", "auth:\n  jwt:\n    public_key_file: public.pem\n    audience: switchboard\n")
        let mint = try await switchboard(["token", "mint", "--sub", "bob", "--config", "jwt.yaml", "--private-key", "key.pem"], directory: dir.path)
        #expect(mint.status == 0, "\(mint.err)")
        let verified = try await switchboard(["token", "verify", mint.out.trimmingCharacters(in: .whitespacesAndNewlines), "--config", "jwt.yaml"],
                                       directory: dir.path)
        #expect(verified.status == 0)
        #expect(try JSONValue.parse(verified.out)["aud"] == "switchboard")
        let mismatch = try await switchboard(["token", "mint", "--sub", "bob", "--config", "jwt.yaml", "--private-key", "other.pem"], directory: dir.path)
        #expect(mismatch.status == 1 && mismatch.err.contains("does not match the configured key"))
        let missing = try await switchboard(["token", "mint", "--sub", "bob", "--config", "jwt.yaml"], directory: dir.path)
        #expect(missing.status == 1 && missing.err.contains("--private-key FILE"))
    }

    /// `--kid` writes the key's id in the header: with a JWK set (`auth.jwt.jwks`) that id picks
    /// the key, so a token minted for the set's second key verifies and one naming the wrong kid
    /// does not.
    @Test(.enabled(if: openssl != nil, "openssl is not installed")) func tokenMintWithAKidVerifiesAgainstAJWKSet() async throws {
        let keys = try JWKSKeys.shared.get()
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("ec.pem", keys.ec.privatePEM)
        try dir.write("jwks.json", JWKSKeys.set([JWKSKeys.jwk(keys.ed, kid: "old"), JWKSKeys.jwk(keys.ec, kid: "new")]))
        try dir.write("jwt.yaml", "auth:\n  jwt:\n    jwks: jwks.json\n")
        let mint = try await switchboard(["token", "mint", "--sub", "carol", "--config", "jwt.yaml", "--private-key", "ec.pem",
                                          "--kid", "new"], directory: dir.path)
        #expect(mint.status == 0, "\(mint.err)")
        let token = mint.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let header = try JSONValue.parse(Base64.decodeURL(Array(token.prefix { $0 != "." }.utf8)) ?? [])
        #expect(header == ["alg": "ES256", "typ": "JWT", "kid": "new"])
        let verified = try await switchboard(["token", "verify", token, "--config", "jwt.yaml"], directory: dir.path)
        #expect(verified.status == 0 && (try? JSONValue.parse(verified.out))?["sub"] == "carol", "\(verified.err)")
        // The kid of the set's Ed25519 key on a token the EC key signed: no key of the set verifies it.
        let wrong = try await switchboard(["token", "mint", "--sub", "carol", "--config", "jwt.yaml", "--private-key", "ec.pem",
                                           "--kid", "old"], directory: dir.path)
        let refused = try await switchboard(["token", "verify", wrong.out.trimmingCharacters(in: .whitespacesAndNewlines),
                                             "--config", "jwt.yaml"], directory: dir.path)
        #expect(refused.status == 1, "a token naming the Ed25519 key's kid but signed with the EC key verified")
        #expect(try await switchboard(["token", "mint", "--sub", "carol", "--kid", ""]).status == 2)
    }
}
