import Switchboard
import SwitchboardBus
import SwitchboardGen
#if canImport(Glibc)
import Glibc
#endif

/// A parsed configuration value.
enum FieldValue: Sendable {
    case text(String)
    case int(Int)
    case bool(Bool)
    case texts([String])
    case redis(RedisURL)
    case bytes([UInt8])

    var text: String { if case .text(let value) = self { value } else { "" } }
    var int: Int { if case .int(let value) = self { value } else { 0 } }
    var bool: Bool { if case .bool(let value) = self { value } else { false } }
    var texts: [String] { if case .texts(let value) = self { value } else { [] } }
}

/// Why a value was rejected; `line` points into a list when an item is at fault.
struct FieldFailure: Error {
    var line: Int?
    var message: String
}

/// The type of a configuration key and how its text is read.
enum FieldKind: Sendable {
    case text
    case urlPath
    case integer(ClosedRange<Int>)
    /// An integer in the range, or `auto` (read as 0).
    case integerOrAuto(ClosedRange<Int>)
    case bool
    /// Milliseconds, at least the bound.
    case duration(min: Int64)
    case size(ClosedRange<Int>)
    case rooms
    case texts
    /// Browser origins, `scheme://host[:port]`.
    case origins
    /// IPv4 or IPv6 address literals.
    case addresses
    case choice([String])
    case redis
    case file
    /// An `http://` or `https://` URL, or a file path (resolved like `file`).
    case fileOrURL
    /// An `http://` or `https://` URL with a host (the proxy hooks' backend).
    case httpURL
    case secret

    var expected: String {
        switch self {
        case .text: "a non-empty string"
        case .urlPath: "a path starting with '/'"
        case .integer(let range): range.upperBound == .max ? "an integer of at least \(range.lowerBound)"
            : "an integer from \(range.lowerBound) to \(range.upperBound)"
        case .integerOrAuto(let range): "auto or an integer from \(range.lowerBound) to \(range.upperBound)"
        case .bool: "true or false"
        case .duration(let min): "a duration (500ms, 5s, 2m, 1h, or a number of milliseconds) of at least \(min) ms"
        case .size(let range): "a size (bytes, or with KiB/MiB/GiB/KB/MB/GB) from \(range.lowerBound) to \(range.upperBound) bytes"
        case .rooms: "a list of room names"
        case .texts: "a list of strings"
        case .origins: "a list of origins (scheme://host[:port])"
        case .addresses: "a list of IP addresses"
        case .choice(let names): "one of " + names.joined(separator: ", ")
        case .redis: "a redis:// URL or a list of them"
        case .file: "a file path"
        case .fileOrURL: "a file path or an http(s):// URL"
        case .httpURL: "an http:// or https:// URL"
        case .secret: "a secret of at least 32 bytes"
        }
    }

    // MARK: YAML

    func parse(node: YAMLNode, baseDirectory: String) -> Result<FieldValue, FieldFailure> {
        switch self {
        case .rooms, .texts, .origins, .addresses:
            guard case .sequence(let items) = node.value else {
                return .failure(FieldFailure(message: "expected \(expected), got \(describe(node))"))
            }
            var values: [String] = []
            for item in items {
                guard case .scalar(let text, _) = item.value, !item.isNull else {
                    return .failure(FieldFailure(line: item.line, message: "expected a string item, got \(describe(item))"))
                }
                if let problem = itemProblem(text) {
                    return .failure(FieldFailure(line: item.line, message: problem))
                }
                if text.isEmpty { return .failure(FieldFailure(line: item.line, message: "empty item")) }
                values.append(text)
            }
            return .success(.texts(values))
        case .redis:
            if case .sequence(let items) = node.value {
                var urls: [RedisURL] = []
                for item in items {
                    guard case .scalar(let text, _) = item.value, !item.isNull else {
                        return .failure(FieldFailure(line: item.line, message: "expected a redis:// URL, got \(describe(item))"))
                    }
                    do { urls.append(try RedisURL(text)) } catch {
                        return .failure(FieldFailure(line: item.line, message: error.description))
                    }
                }
                return Self.merge(urls).map { .success(.redis($0)) } ?? .failure(FieldFailure(
                    message: urls.isEmpty ? "the list is empty" : "every URL of the list must have the same credentials and database"))
            }
            fallthrough
        default:
            guard case .scalar(let text, let plain) = node.value else {
                return .failure(FieldFailure(message: "expected \(expected), got \(describe(node))"))
            }
            if node.isNull { return .failure(FieldFailure(message: "no value (remove the key to keep the default)")) }
            return parseScalar(text, plain: plain, baseDirectory: baseDirectory)
        }
    }

    // MARK: Environment

    func parse(environment text: String, baseDirectory: String) -> Result<FieldValue, FieldFailure> {
        switch self {
        case .rooms, .texts, .origins, .addresses:
            let items = text.split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
            for item in items { if let problem = itemProblem(item) { return .failure(FieldFailure(message: problem)) } }
            return .success(.texts(items))
        default:
            return parseScalar(text.trimmingSpaces(), plain: true, baseDirectory: baseDirectory)
        }
    }

    // MARK: Scalars

    private func parseScalar(_ text: String, plain: Bool, baseDirectory: String) -> Result<FieldValue, FieldFailure> {
        func failure(_ message: String) -> Result<FieldValue, FieldFailure> { .failure(FieldFailure(message: message)) }
        let got = "got '\(text)'"
        let quotedNumber = !plain && Int(text) != nil ? " (remove the quotes)" : ""
        switch self {
        case .text:
            return text.isEmpty ? failure("expected \(expected), got an empty string") : .success(.text(text))
        case .urlPath:
            guard text.hasPrefix("/"), !text.contains(" ") else { return failure("expected \(expected), \(got)") }
            return .success(.text(text))
        case .integer(let range):
            guard plain, let value = Int(text), range.contains(value) else {
                return failure("expected \(expected), \(got)\(quotedNumber)")
            }
            return .success(.int(value))
        case .integerOrAuto(let range):
            if text == "auto" { return .success(.int(0)) }
            guard plain, let value = Int(text), range.contains(value) else {
                return failure("expected \(expected), \(got)\(quotedNumber)")
            }
            return .success(.int(value))
        case .bool:
            switch text.lowercased() {
            case "true", "yes", "on": return .success(.bool(true))
            case "false", "no", "off": return .success(.bool(false))
            default: return failure("expected \(expected), \(got)")
            }
        case .duration(let min):
            guard let value = Self.milliseconds(text), value >= min else { return failure("expected \(expected), \(got)") }
            return .success(.int(Int(value)))
        case .size(let range):
            guard let value = Self.bytes(text), range.contains(value) else { return failure("expected \(expected), \(got)") }
            return .success(.int(value))
        case .choice(let names):
            guard names.contains(text) else {
                let hint = suggestion(for: text, among: names).map { "; did you mean '\($0)'?" } ?? ""
                return failure("expected \(expected), \(got)\(hint)")
            }
            return .success(.text(text))
        case .redis:
            do { return .success(.redis(try RedisURL(text))) } catch { return failure(error.description) }
        case .file:
            guard !text.isEmpty else { return failure("expected \(expected), got an empty string") }
            return .success(.text(ConfigLoader.resolve(text, from: baseDirectory)))
        case .fileOrURL:
            guard !text.isEmpty else { return failure("expected \(expected), got an empty string") }
            if case .url = JWKSSource(text) { return .success(.text(text)) }
            return .success(.text(ConfigLoader.resolve(text, from: baseDirectory)))
        case .httpURL:
            if let problem = ProxyConfig.urlProblem(text) { return failure(problem) }
            return .success(.text(text))
        case .secret:
            let bytes = Array(text.utf8)
            guard bytes.count >= 32 else {
                return failure("an HS256 secret needs at least 32 bytes (256 bits), got \(bytes.count)")
            }
            return .success(.bytes(bytes))
        case .rooms, .texts, .origins, .addresses:
            return failure("expected \(expected), \(got)")
        }
    }

    private func describe(_ node: YAMLNode) -> String {
        if node.isNull { return "nothing" }
        if case .scalar(let text, _) = node.value { return "'\(text)'" }
        return node.configKindName
    }

    /// Why an item of a list kind is not acceptable, or nil.
    private func itemProblem(_ item: String) -> String? {
        switch self {
        case .rooms: Self.roomProblem(item)
        case .origins: Self.originProblem(item)
        case .addresses: Self.addressProblem(item)
        default: nil
        }
    }

    /// An origin as browsers send it: a scheme, `://`, a host and an optional port, no path.
    static func originProblem(_ origin: String) -> String? {
        let parts = origin.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        let schemeOK = parts.count == 2 && !parts[0].isEmpty && parts[0].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }
        guard schemeOK, let authority = parts.last, !authority.isEmpty, !authority.contains("/"), !authority.contains("@"),
              !authority.contains(" ") else {
            return "origin '\(origin)' is not scheme://host[:port] (like https://app.example.com, no path)"
        }
        return nil
    }

    /// An IPv4 or IPv6 literal (what the server sees as a peer address).
    static func addressProblem(_ address: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: 16)
        let family = address.contains(":") ? AF_INET6 : AF_INET
        return inet_pton(family, address, &buffer) == 1 ? nil : "'\(address)' is not an IPv4 or IPv6 address"
    }

    static func roomProblem(_ name: String) -> String? {
        let count = name.count
        if count < RoomRules.minLength || count > RoomRules.maxLength {
            return "room name '\(name)' must have \(RoomRules.minLength) to \(RoomRules.maxLength) characters"
        }
        if name.hasPrefix(RoomRules.reservedPrefix) {
            return "room name '\(name)' starts with the reserved prefix '\(RoomRules.reservedPrefix)'"
        }
        return nil
    }

    /// `500ms`, `5s`, `2m`, `1h`, or bare milliseconds.
    static func milliseconds(_ text: String) -> Int64? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 12, let value = Int64(digits) else { return nil }
        switch text.dropFirst(digits.count) {
        case "", "ms": return value
        case "s": return value * 1000
        case "m": return value * 60_000
        case "h": return value * 3_600_000
        default: return nil
        }
    }

    /// Bytes, or a number with KiB/MiB/GiB (1024) or KB/MB/GB (1000); `B` allowed.
    static func bytes(_ text: String) -> Int? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 12, let value = Int(digits) else { return nil }
        let unit = text.dropFirst(digits.count).trimmingPrefix(" ")
        let factor: Int
        switch unit {
        case "", "B": factor = 1
        case "KiB": factor = 1 << 10
        case "MiB": factor = 1 << 20
        case "GiB": factor = 1 << 30
        case "KB": factor = 1000
        case "MB": factor = 1_000_000
        case "GB": factor = 1_000_000_000
        default: return nil
        }
        return value * factor
    }

    /// One URL naming every node of `urls`; nil when they disagree on credentials or database.
    static func merge(_ urls: [RedisURL]) -> RedisURL? {
        guard var merged = urls.first else { return nil }
        for url in urls.dropFirst() {
            guard url.username == merged.username, url.password == merged.password, url.database == merged.database else { return nil }
            merged.nodes += url.nodes.filter { !merged.nodes.contains($0) }
        }
        return merged.nodes.count > 1 && merged.database != 0 ? nil : merged
    }
}

/// One leaf key of the configuration file.
struct ConfigField: Sendable {
    let path: [String]
    let kind: FieldKind
    let apply: @Sendable (inout ServeConfig, FieldValue) -> Void

    var key: String { path.joined(separator: ".") }
    /// `SWITCHBOARD_` + the path in upper case, joined by `_`.
    var environmentName: String { "SWITCHBOARD_" + path.map { $0.uppercased() }.joined(separator: "_") }
}

/// Every key of the configuration file (docs/configuration.md describes each).
enum ConfigSchema {
    private static func field(_ key: String, _ kind: FieldKind,
                              _ apply: @escaping @Sendable (inout ServeConfig, FieldValue) -> Void) -> ConfigField {
        ConfigField(path: key.split(separator: ".").map(String.init), kind: kind, apply: apply)
    }

    private static func jwt(_ config: inout ServeConfig, _ change: (inout JWTConfig) -> Void) {
        var jwt = config.auth.jwt ?? JWTConfig()
        change(&jwt)
        config.auth.jwt = jwt
    }

    static let fields: [ConfigField] = [
        field("loops", .integerOrAuto(1...1024)) { $0.loops = $1.int },
        field("listen.host", .text) { $0.host = $1.text },
        field("listen.port", .integer(0...65535)) { $0.port = $1.int },
        field("listen.path", .urlPath) { $0.path = $1.text },
        field("listen.allowed_origins", .origins) { $0.allowedOrigins = $1.texts },
        field("listen.trusted_proxies", .addresses) { $0.trustedProxies = $1.texts },
        field("http.demo_page", .bool) { $0.demoPage = $1.bool },

        field("internal.host", .text) { $0.internalListener.host = $1.text },
        field("internal.port", .integer(0...65535)) { $0.internalListener.port = $1.int },
        field("internal.public", .choice(InternalListenerConfig.PublicEndpoints.allCases.map(\.rawValue))) {
            $0.internalListener.publicEndpoints = InternalListenerConfig.PublicEndpoints(rawValue: $1.text) ?? .health
        },

        field("limits.max_payload_length", .size(125...(1 << 30))) { $0.maxPayloadLength = $1.int },
        field("limits.backpressure_limit", .size(1024...(1 << 34))) { $0.backpressureLimit = $1.int },
        field("limits.close_on_backpressure", .bool) { $0.closeOnBackpressure = $1.bool },
        field("limits.max_header_bytes", .size(1024...(1 << 20))) { $0.maxHeaderBytes = $1.int },

        field("compression.per_message_deflate", .bool) { $0.perMessageDeflate = $1.bool },
        field("compression.threshold", .size(0...(1 << 30))) { $0.compressionThreshold = $1.int },

        field("timers.auth_timeout", .duration(min: 1)) { $0.authTimeout = Int64($1.int) },
        field("timers.heartbeat_interval", .duration(min: 1)) { $0.heartbeatInterval = Int64($1.int) },
        field("timers.heartbeat_timeout", .duration(min: 1)) { $0.heartbeatTimeout = Int64($1.int) },
        field("timers.idle_timeout", .duration(min: 1000)) { $0.idleTimeout = Int64($1.int) },
        field("timers.send_pings", .bool) { $0.sendPings = $1.bool },
        field("timers.upgrade_timeout", .duration(min: 100)) { $0.upgradeTimeout = Int64($1.int) },
        field("timers.shutdown_grace", .duration(min: 0)) { $0.shutdownGrace = Int64($1.int) },
        field("shutdown.drain_delay", .duration(min: 0)) { $0.drainDelay = Int64($1.int) },

        field("rooms.default", .rooms) { $0.defaultRooms = $1.texts },
        field("rooms.allow_prefixes", .texts) { $0.rooms.allowPrefixes = $1.texts },
        field("rooms.allow_patterns", .texts) { $0.rooms.allowPatterns = $1.texts },
        field("rooms.user_rooms", .bool) { $0.rooms.userRooms = $1.bool },
        field("rooms.max_per_client", .integer(0...100_000)) { $0.rooms.maxPerClient = $1.int },
        field("rooms.presence", .texts) { $0.presenceRooms = $1.texts },
        field("rooms.presence_ttl", .duration(min: 300)) { $0.presenceTTL = Int64($1.int) },
        field("rooms.history", .texts) { $0.historyRooms = $1.texts },
        field("rooms.history_size", .integer(1...100_000)) { $0.historySize = $1.int },
        field("rooms.history_ttl", .duration(min: 1000)) { $0.historyTTL = Int64($1.int) },
        field("rooms.history_epoch_ttl", .duration(min: 1000)) { $0.historyEpochTTL = Int64($1.int) },

        field("redis.url", .redis) { config, value in if case .redis(let url) = value { config.redis = url } },

        field("tls.cert", .file) { config, value in
            config.tls = TLSFiles(certificate: value.text, privateKey: config.tls?.privateKey ?? "")
        },
        field("tls.key", .file) { config, value in
            config.tls = TLSFiles(certificate: config.tls?.certificate ?? "", privateKey: value.text)
        },

        field("encryption", .choice(EncryptionMode.allCases.map(\.rawValue))) {
            $0.encryption = EncryptionMode(rawValue: $1.text) ?? .off
        },

        field("auth.tokens_file", .file) { $0.auth.tokensFile = $1.text },
        field("auth.jwt.hs256_secret", .secret) { config, value in
            if case .bytes(let secret) = value { jwt(&config) { $0.key = .hs256Secret(secret) } }
        },
        field("auth.jwt.hs256_secret_file", .file) { config, value in jwt(&config) { $0.key = .hs256SecretFile(value.text) } },
        field("auth.jwt.public_key_file", .file) { config, value in jwt(&config) { $0.key = .publicKeyFile(value.text) } },
        field("auth.jwt.jwks", .fileOrURL) { config, value in jwt(&config) { $0.key = .jwks(JWKSSource(value.text)) } },
        field("auth.jwt.jwks_refresh", .duration(min: 100)) { config, value in
            jwt(&config) { $0.jwksRefreshMilliseconds = Int64(value.int) }
        },
        field("auth.jwt.issuer", .text) { config, value in jwt(&config) { $0.issuer = value.text } },
        field("auth.jwt.audience", .text) { config, value in jwt(&config) { $0.audience = value.text } },
        field("auth.jwt.clock_skew_seconds", .integer(0...3600)) { config, value in jwt(&config) { $0.clockSkewSeconds = value.int } },
        field("auth.jwt.require_exp", .bool) { config, value in jwt(&config) { $0.requireExp = value.bool } },

        field("abuse.max_connections_per_ip", .integer(0...Int.max)) { $0.abuse.maxConnectionsPerIP = $1.int },
        field("abuse.max_clients_per_user", .integer(0...Int.max)) { $0.abuse.maxClientsPerUser = $1.int },
        field("abuse.messages_per_second", .integer(0...1_000_000)) { $0.abuse.messagesPerSecond = $1.int },
        field("abuse.message_burst", .integer(0...1_000_000)) { $0.abuse.messageBurst = $1.int },
        field("abuse.max_messages_before_auth", .integer(0...Int.max)) { $0.abuse.maxMessagesBeforeAuth = $1.int },

        field("messages.broadcast", .bool) { $0.allowBroadcast = $1.bool },
        field("messages.numbers", .choice(JSONNumberStyle.allCases.map(\.rawValue))) {
            $0.numberStyle = JSONNumberStyle(rawValue: $1.text) ?? .exact
        },

        field("log.level", .choice(["debug", "info", "warning", "error"])) { $0.logLevel = LogLevel.named($1.text) ?? .info },
    ] + APIConfig.fields  // the server API's section (APIConfig.swift)
        + ProxyConfig.fields  // the backend hooks' section (ProxyConfig.swift)

    private static let byPath: [[String]: ConfigField] = Dictionary(uniqueKeysWithValues: fields.map { ($0.path, $0) })

    static func field(_ path: [String]) -> ConfigField? { byPath[path] }

    /// The names one level below `prefix` (sections and keys).
    static func children(of prefix: [String]) -> [String] {
        var names: [String] = []
        for field in fields where field.path.count > prefix.count && Array(field.path.prefix(prefix.count)) == prefix {
            let name = field.path[prefix.count]
            if !names.contains(name) { names.append(name) }
        }
        return names
    }
}

extension LogLevel {
    /// `debug`, `info`, `warning` or `error`.
    public static func named(_ name: String) -> LogLevel? {
        switch name {
        case "debug": .debug
        case "info": .info
        case "warning": .warning
        case "error": .error
        default: nil
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
