import Foundation
import Switchboard
import Testing
@testable import SwitchboardServe

/// A configuration read from `yaml` as the file `test.yaml` in `base` (the config suites share
/// this and `errors`).
func load(_ yaml: String?, env: [String: String] = [:], base: String = "/etc/sb") throws(ConfigErrors) -> ServeConfig {
    try ConfigLoader.load(bytes: yaml.map { Array($0.utf8) }, file: "test.yaml", baseDirectory: base, environment: env)
}

/// Every error of a configuration that must fail, as printed.
func errors(_ yaml: String?, env: [String: String] = [:]) -> [String] {
    do {
        _ = try load(yaml, env: env)
        Issue.record("the configuration loaded but should not have")
        return []
    } catch {
        return error.errors.map(\.description)
    }
}

@Suite struct ConfigParsingTests {
    @Test func defaultsWithoutAFile() throws {
        let config = try load(nil)
        #expect(config.host == "127.0.0.1")
        #expect(config.port == 8080)
        #expect(config.path == "/ws")
        #expect(config.defaultRooms == ["ws-default", "ws-notification"])
        #expect(config.redis == nil)
        #expect(config.encryption == .off)
        #expect(!config.auth.isConfigured)
        #expect(config.serverOptions.maxPayloadLength == 131072)
    }

    @Test func anEmptyOrCommentOnlyFileIsTheDefaults() throws {
        #expect(try load("").port == 8080)
        #expect(try load("# nothing here\n").port == 8080)
    }

    @Test func everySection() throws {
        let config = try load("""
            listen: {host: 0.0.0.0, port: 9000, path: /socket}
            limits:
              max_payload_length: 64KiB
              backpressure_limit: 2MiB
              close_on_backpressure: true
              max_header_bytes: 8192
            timers:
              auth_timeout: 2s
              heartbeat_interval: 10s
              heartbeat_timeout: 1m
              idle_timeout: 45000
              send_pings: no
              upgrade_timeout: 500ms
              shutdown_grace: 0
            rooms:
              default: [lobby]
              allow_prefixes: [public-]
              allow_patterns: ["team-*"]
              user_rooms: false
              max_per_client: 20
            redis:
              url: [redis://a:7000, redis://b:7001]
            encryption: required
            auth:
              tokens_file: tokens.yaml
              jwt:
                hs256_secret_file: secrets/jwt
                issuer: me
                audience: you
                clock_skew_seconds: 5
                require_exp: false
            abuse:
              max_clients_per_user: 3
              messages_per_second: 10
              message_burst: 20
            messages:
              broadcast: true
            log:
              level: warning
            compression:
              per_message_deflate: true
              threshold: 1KiB
            tls:
              cert: cert.pem
              key: /keys/key.pem
            """)
        #expect(config.host == "0.0.0.0" && config.port == 9000 && config.path == "/socket")
        #expect(config.maxPayloadLength == 65536 && config.backpressureLimit == 2 << 20)
        #expect(config.closeOnBackpressure && config.maxHeaderBytes == 8192)
        #expect(config.authTimeout == 2000 && config.heartbeatInterval == 10_000 && config.heartbeatTimeout == 60_000)
        #expect(config.idleTimeout == 45_000 && !config.sendPings && config.upgradeTimeout == 500 && config.shutdownGrace == 0)
        #expect(config.defaultRooms == ["lobby"])
        #expect(config.rooms == RoomPolicyConfig(allowPrefixes: ["public-"], allowPatterns: ["team-*"], userRooms: false, maxPerClient: 20))
        #expect(config.redis?.nodes.map(\.description) == ["a:7000", "b:7001"])
        #expect(config.encryption == .required && config.serverOptions.requireEncryption)
        #expect(config.auth.tokensFile == "/etc/sb/tokens.yaml")
        #expect(config.auth.jwt == JWTConfig(key: .hs256SecretFile("/etc/sb/secrets/jwt"), issuer: "me", audience: "you",
                                             clockSkewSeconds: 5, requireExp: false))
        #expect(config.abuse == AbuseLimits(maxClientsPerUser: 3, messagesPerSecond: 10, messageBurst: 20))
        #expect(config.allowBroadcast)
        #expect(config.logLevel == .warning)
        #expect(config.serverOptions.perMessageDeflate && config.serverOptions.compressionThreshold == 1024)
        #expect(config.serverOptions.hooksOnLoop)  // HS256: verified on the loop
        var rsa = config
        rsa.auth.jwt?.key = .publicKeyFile("/keys/jwt.pem")
        #expect(!rsa.serverOptions.hooksOnLoop)  // RS256/ES256: on the pool, in parallel
        #expect(config.tls == TLSFiles(certificate: "/etc/sb/cert.pem", privateKey: "/keys/key.pem"))
        #expect(config.serverOptions.tlsCertificateFile == "/etc/sb/cert.pem" && config.serverOptions.tlsKeyFile == "/keys/key.pem")
        #expect(config.locations["listen.port"] == ConfigLocation(file: "test.yaml", line: 1))
        #expect(config.locations["auth.jwt.issuer"] == ConfigLocation(file: "test.yaml", line: 28))
    }

    @Test(arguments: ["switchboard.yaml", "development.yaml", "production.yaml"])
    func theExampleConfigsLoad(_ name: String) throws {
        let path = repoRoot + "/config/" + name
        let config = try ConfigLoader.load(path: path, environment: [:])
        if name == "development.yaml" {
            #expect(config.auth.tokensFile == repoRoot + "/config/tokens.example.yaml")
            #expect(try Authenticator.make(config).tokens?.users["alice-dev-token"] == "alice")
        }
        if name == "production.yaml" {
            #expect(config.redis?.nodes == [.init(host: "redis", port: 6379)])
            #expect(config.auth.jwt?.key == .publicKeyFile("/etc/switchboard/jwt-public.pem"))
            #expect(config.api.listen == .internalListener && config.internalListener.port == 9090)
        }
    }

    @Test func anUnreadableFileIsNamed() {
        #expect(throws: ConfigErrors.self) { try ConfigLoader.load(path: "/nonexistent/x.yaml", environment: [:]) }
        do {
            _ = try ConfigLoader.load(path: "/nonexistent/x.yaml", environment: [:])
        } catch {
            #expect(error.description.hasPrefix("/nonexistent/x.yaml: cannot read the file"))
        }
    }
}

@Suite struct ConfigErrorTests {
    @Test func unknownKeysNameFileLineAndSuggestion() {
        #expect(errors("listen:\n  host: a\n  prot: 80\n") == ["test.yaml:3: listen.prot: unknown key in listen; did you mean 'port'?"])
        #expect(errors("auth:\n  jwt:\n    isuer: x\n    hs256_secret_file: s\n")
            == ["test.yaml:3: auth.jwt.isuer: unknown key in auth.jwt; did you mean 'issuer'?"])
        #expect(errors("colour: red\n") == ["test.yaml:1: colour: unknown key in the file; known keys: "
            + "abuse, api, auth, compression, encryption, http, internal, limits, listen, log, loops, messages, proxy, redis, rooms, shutdown, timers, tls"])
    }

    @Test func wrongTypes() {
        #expect(errors("listen: 5\n") == ["test.yaml:1: listen: expected a mapping of keys, got a scalar"])
        #expect(errors("loops: 0\n") == ["test.yaml:1: loops: expected auto or an integer from 1 to 1024, got '0'"])
        #expect(errors("listen:\n  port: [1]\n") == ["test.yaml:2: listen.port: expected an integer from 0 to 65535, got a list"])
        #expect(errors("rooms:\n  default: lobby\n") == ["test.yaml:2: rooms.default: expected a list of room names, got 'lobby'"])
        #expect(errors("listen:\n  port: \"8080\"\n")
            == ["test.yaml:2: listen.port: expected an integer from 0 to 65535, got '8080' (remove the quotes)"])
        #expect(errors("- a\n- b\n") == ["test.yaml:1: expected a mapping of keys, got a list"])
    }

    @Test(arguments: [
        ("listen:\n  port: 70000\n", "test.yaml:2: listen.port: expected an integer from 0 to 65535, got '70000'"),
        ("listen:\n  path: ws\n", "test.yaml:2: listen.path: expected a path starting with '/', got 'ws'"),
        ("timers:\n  auth_timeout: 5 minutes\n",
         "test.yaml:2: timers.auth_timeout: expected a duration (500ms, 5s, 2m, 1h, or a number of milliseconds) of at least 1 ms, got '5 minutes'"),
        ("limits:\n  max_payload_length: 1TB\n",
         "test.yaml:2: limits.max_payload_length: expected a size (bytes, or with KiB/MiB/GiB/KB/MB/GB) from 125 to 1073741824 bytes, got '1TB'"),
        ("limits:\n  close_on_backpressure: maybe\n", "test.yaml:2: limits.close_on_backpressure: expected true or false, got 'maybe'"),
        ("encryption: requried\n", "test.yaml:1: encryption: expected one of off, optional, required, got 'requried'; did you mean 'required'?"),
        ("rooms:\n  default:\n    - ok\n    - ws:inner\n", "test.yaml:4: rooms.default: room name 'ws:inner' starts with the reserved prefix 'ws:'"),
        ("redis:\n  url: http://x\n", "test.yaml:2: redis.url: unsupported scheme 'http://'; expected redis://"),
        ("redis:\n  url: [redis://a:1, redis://:pw@b:2]\n",
         "test.yaml:2: redis.url: every URL of the list must have the same credentials and database"),
        ("auth:\n  jwt:\n    hs256_secret: short\n",
         "test.yaml:3: auth.jwt.hs256_secret: an HS256 secret needs at least 32 bytes (256 bits), got 5"),
        ("log:\n  level: verbose\n", "test.yaml:2: log.level: expected one of debug, info, warning, error, got 'verbose'"),
        ("listen:\n  port:\n", "test.yaml:2: listen.port: no value (remove the key to keep the default)"),
    ])
    func badValues(_ yaml: String, _ expected: String) {
        #expect(errors(yaml) == [expected])
    }

    @Test func duplicateKeysAndSyntaxErrorsHaveLines() {
        #expect(errors("listen:\n  port: 1\n  port: 2\n") == ["test.yaml:3: port: duplicate key (first at line 2)"])
        let syntax = errors("listen:\n  port: 1\n bad: [\n")
        #expect(syntax.count == 1)
        #expect(syntax.first?.hasPrefix("test.yaml:") == true && syntax.first?.contains("YAML syntax error") == true)
        #expect(errors("a: &x 1\nb: *x\n").first == "test.yaml:2: YAML aliases are not supported")
    }

    @Test func everyErrorIsReportedAtOnce() {
        let all = errors("listen:\n  port: x\n  host: \"\"\ntimers:\n  idle_timeout: 1\n")
        #expect(all == [
            "test.yaml:2: listen.port: expected an integer from 0 to 65535, got 'x'",
            "test.yaml:3: listen.host: expected a non-empty string, got an empty string",
            "test.yaml:5: timers.idle_timeout: expected a duration (500ms, 5s, 2m, 1h, or a number of milliseconds) of at least 1000 ms, got '1'",
        ])
    }

    @Test func rulesBetweenKeys() {
        let secret = String(repeating: "s", count: 32)
        #expect(errors("auth:\n  jwt:\n    hs256_secret: \(secret)\n    public_key_file: k.pem\n")
            == ["test.yaml:4: auth.jwt.public_key_file: conflicts with auth.jwt.hs256_secret (test.yaml:3); give one key"])
        #expect(errors("auth:\n  jwt:\n    issuer: x\n")
            == ["test.yaml:2: auth.jwt: needs hs256_secret, hs256_secret_file, public_key_file or jwks"])
        #expect(errors("tls:\n  cert: c.pem\n") == ["test.yaml:2: tls.cert: tls needs both cert and key"])
        #expect(errors("encryption: optional\n").first?.hasPrefix("test.yaml:1: encryption: 'optional' needs library support") == true)
        #expect(errors("abuse:\n  message_burst: 3\n") == ["test.yaml:2: abuse.message_burst: needs abuse.messages_per_second"])
        #expect(errors("timers:\n  heartbeat_timeout: 1s\n")
            == ["test.yaml:2: timers.heartbeat_timeout: heartbeat_timeout (1000 ms) is shorter than heartbeat_interval (30000 ms)"])
    }

    @Test func connectionAndPreAuthLimitsReachTheServerOptions() throws {
        let config = try ConfigLoader.load(bytes: Array("abuse:\n  max_connections_per_ip: 5\n  max_messages_before_auth: 3\n".utf8),
                                           file: "test.yaml", baseDirectory: ".", environment: [:])
        #expect(config.serverOptions.maxConnectionsPerIP == 5)
        #expect(config.serverOptions.maxMessagesBeforeAuth == 3)
        #expect(errors("abuse:\n  max_connections_per_ip: -1\n").first?.hasPrefix("test.yaml:2: abuse.max_connections_per_ip:") == true)
    }

    @Test func numberStyleReachesTheServerOptions() throws {
        #expect(try load(nil).serverOptions.numberStyle == .exact)
        #expect(try load("messages:\n  numbers: javascript\n").serverOptions.numberStyle == .javascript)
        #expect(try load(nil, env: ["SWITCHBOARD_MESSAGES_NUMBERS": "javascript"]).serverOptions.numberStyle == .javascript)
        #expect(errors("messages:\n  numbers: js\n")  // too far from javascript for a suggestion
            == ["test.yaml:2: messages.numbers: expected one of exact, javascript, got 'js'"])
    }

    @Test func keyFilesAreCheckedAtTheKeyThatNamesThem() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try dir.write("bad.pem", "not a key\n")
        try dir.write("short", "tooshort\n")
        let config = try load("""
            auth:
              tokens_file: missing.yaml
              jwt:
                public_key_file: bad.pem
            """, base: dir.path)
        do {
            _ = try Authenticator.make(config)
            Issue.record("expected errors")
        } catch {
            #expect(error.errors.map(\.description) == [
                "test.yaml:2: auth.tokens_file: cannot read \(dir.path)/missing.yaml (No such file or directory)",
                "test.yaml:4: auth.jwt.public_key_file: \(dir.path)/bad.pem: not a PEM public key or certificate (expected -----BEGIN PUBLIC KEY-----)",
            ])
        }
        let short = try load("auth:\n  jwt:\n    hs256_secret_file: short\n", base: dir.path)
        #expect(throws: ConfigErrors.self) { try Authenticator.make(short) }
    }
}

@Suite struct EnvironmentOverrideTests {
    @Test func variablesOverrideTheFile() throws {
        let secret = String(repeating: "k", count: 40)
        let config = try load("listen:\n  port: 9000\n", env: [
            "SWITCHBOARD_LISTEN_PORT": "9100",
            "SWITCHBOARD_ROOMS_DEFAULT": "a, b,,c",
            "SWITCHBOARD_REDIS_URL": "redis://cache:6380",
            "SWITCHBOARD_AUTH_JWT_HS256_SECRET": secret,
            "SWITCHBOARD_TIMERS_AUTH_TIMEOUT": "3s",
            "SWITCHBOARD_ENCRYPTION": "required",
            "SWITCHBOARD_MESSAGES_BROADCAST": "true",
            "SWITCHBOARD_CONFIG": "ignored-here.yaml",
            "HOME": "/root",
        ])
        #expect(config.port == 9100)
        #expect(config.defaultRooms == ["a", "b", "c"])
        #expect(config.redis?.nodes == [.init(host: "cache", port: 6380)])
        #expect(config.auth.jwt?.key == .hs256Secret(Array(secret.utf8)))
        #expect(config.authTimeout == 3000)
        #expect(config.encryption == .required)
        #expect(config.allowBroadcast)
        #expect(config.locations["listen.port"] == ConfigLocation(file: "environment variable SWITCHBOARD_LISTEN_PORT", line: nil))
    }

    @Test func badVariablesAreNamed() {
        #expect(errors(nil, env: ["SWITCHBOARD_LISTEN_PORT": "http"])
            == ["environment variable SWITCHBOARD_LISTEN_PORT: listen.port: expected an integer from 0 to 65535, got 'http'"])
        #expect(errors(nil, env: ["SWITCHBOARD_LISTEN_PORT": "1", "SWITCHBOARD_ROOMS_DEFAULT": "ws:"]).count == 1)
        #expect(errors(nil, env: ["SWITCHBOARD_ROOMS_DEFAULT": "ok,ws:x"])
            == ["environment variable SWITCHBOARD_ROOMS_DEFAULT: rooms.default: room name 'ws:x' starts with the reserved prefix 'ws:'"])
    }

    @Test func unknownVariablesAreWarnings() throws {
        let config = try load(nil, env: ["SWITCHBOARD_LISTEN_PROT": "1", "SWITCHBOARD_SERVICE_HOST": "10.0.0.1"])
        #expect(config.warnings.map(\.description) == [
            "environment variable SWITCHBOARD_LISTEN_PROT: not a setting; did you mean SWITCHBOARD_LISTEN_PORT?",
            "environment variable SWITCHBOARD_SERVICE_HOST: not a setting; ignored",
        ])
    }

    @Test func everyKeyHasAVariable() {
        let names = ConfigSchema.fields.map(\.environmentName)
        #expect(Set(names).count == names.count)
        #expect(names.contains("SWITCHBOARD_AUTH_JWT_HS256_SECRET"))
        #expect(names.contains("SWITCHBOARD_REDIS_URL"))
        #expect(names.contains("SWITCHBOARD_LISTEN_PORT"))
    }

    @Test func flagsOverrideVariablesAndFile() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let file = try dir.write("c.yaml", "listen:\n  port: 9000\n  host: 10.0.0.1\nlog:\n  level: error\n")
        let command = try ServeCommand.parse(["--config", file, "--port=0", "--host", "::1", "--log-level", "debug"])
        let config = try command.configuration(environment: ["SWITCHBOARD_LISTEN_PORT": "9100"])
        #expect(config.port == 0 && config.host == "::1" && config.logLevel == .debug)
        let fromVariable = try ServeCommand.parse([]).configuration(environment: ["SWITCHBOARD_CONFIG": file])
        #expect(fromVariable.port == 9000)
    }

    @Test(arguments: [
        (["--prot", "1"], "switchboard serve: Unknown option '--prot'. Did you mean '--port'?"),
        (["--port", "x"], "switchboard serve: --port must be 0 to 65535, not 'x'"),
        (["--log-level", "loud"], "switchboard serve: --log-level must be debug, info, warning or error, not 'loud'"),
        (["--config"], "switchboard serve: Missing value for '--config <file>'"),
        (["--port", "1", "--port", "2"], "switchboard serve: --port given twice"),
        (["serve"], "switchboard serve: Unexpected argument 'serve'"),
    ])
    func serveFlagErrors(_ arguments: [String], _ message: String) {
        #expect(throws: UsageError(message)) { try ServeCommand.parse(arguments) }
    }
}

@Suite struct ValueFormatTests {
    @Test func durations() {
        #expect(FieldKind.milliseconds("250") == 250)
        #expect(FieldKind.milliseconds("250ms") == 250)
        #expect(FieldKind.milliseconds("5s") == 5000)
        #expect(FieldKind.milliseconds("2m") == 120_000)
        #expect(FieldKind.milliseconds("1h") == 3_600_000)
        #expect(FieldKind.milliseconds("1.5s") == nil)
        #expect(FieldKind.milliseconds("-1s") == nil)
        #expect(FieldKind.milliseconds("s") == nil)
    }

    @Test func sizes() {
        #expect(FieldKind.bytes("100") == 100)
        #expect(FieldKind.bytes("64KiB") == 65536)
        #expect(FieldKind.bytes("1 MiB") == 1 << 20)
        #expect(FieldKind.bytes("2MB") == 2_000_000)
        #expect(FieldKind.bytes("1kb") == nil)
    }

    @Test func suggestions() {
        #expect(suggestion(for: "prot", among: ["host", "port", "path"]) == "port")
        #expect(suggestion(for: "completely-different", among: ["host", "port"]) == nil)
        #expect(editDistance("kitten", "sitting") == 3)
    }
}

@Suite struct LoopsConfigTests {
    /// `loops` (top level) and `SWITCHBOARD_LOOPS` reach `ServerOptions.loops`; `auto`, one per
    /// online CPU, by default.
    @Test func loopsReachTheServerOptions() throws {
        #expect(try load("listen:\n  port: 0\n").serverOptions.loops == ServerOptions.onlineCPUs)
        #expect(try load("loops: auto\n").serverOptions.loops == ServerOptions.onlineCPUs)
        #expect(try load("loops: 3\n", env: ["SWITCHBOARD_LOOPS": "auto"]).serverOptions.loops == ServerOptions.onlineCPUs)
        #expect(try load("loops: 3\n").serverOptions.loops == 3)
        #expect(try load("loops: 3\n", env: ["SWITCHBOARD_LOOPS": "2"]).serverOptions.loops == 2)
    }
}
