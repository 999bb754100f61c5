import Switchboard
import SwitchboardBus
import SwitchboardGen

/// Reads a `ServeConfig` from YAML and the environment, reporting every problem with its
/// file, line and key.
public enum ConfigLoader {
    /// The environment variable naming a config file when `--config` is absent.
    public static let configVariable = "SWITCHBOARD_CONFIG"

    /// Defaults, then the file at `path` (if any), then `environment`.
    public static func load(path: String?, environment: [String: String]) throws(ConfigErrors) -> ServeConfig {
        guard let path else { return try load(bytes: nil, file: "", baseDirectory: ".", environment: environment) }
        guard let bytes = readFile(path) else {
            throw ConfigErrors([ConfigError(file: path, line: nil, key: nil, "cannot read the file (\(lastErrorText()))")])
        }
        return try load(bytes: bytes, file: path, baseDirectory: directory(of: path), environment: environment)
    }

    /// Defaults, then `bytes` (YAML; nil = no file) named `file`, then `environment`. Relative
    /// file paths in the YAML are taken from `baseDirectory`.
    public static func load(bytes: [UInt8]?, file: String, baseDirectory: String,
                            environment: [String: String]) throws(ConfigErrors) -> ServeConfig {
        var config = ServeConfig()
        var errors: [ConfigError] = []
        if let bytes, let root = try ConfigYAML.read(bytes, file: file) {
            var walker = Walker(file: file, baseDirectory: baseDirectory)
            walker.walk(root, prefix: [], into: &config)
            errors += walker.errors
        }
        errors += applyEnvironment(environment, to: &config)
        errors += crossCheck(config, failed: Set(errors.compactMap(\.key)))
        if !errors.isEmpty { throw ConfigErrors(errors) }
        return config
    }

    // MARK: - Environment

    static func applyEnvironment(_ environment: [String: String], to config: inout ServeConfig) -> [ConfigError] {
        var errors: [ConfigError] = []
        let byName = Dictionary(uniqueKeysWithValues: ConfigSchema.fields.map { ($0.environmentName, $0) })
        for (name, text) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("SWITCHBOARD_") {
            if name == configVariable || name == BuildInfo.versionVariable { continue }
            let source = "environment variable \(name)"
            guard let field = byName[name] else {
                // A warning, not an error: the prefix is shared (Kubernetes alone injects
                // SWITCHBOARD_PORT, SWITCHBOARD_SERVICE_HOST, ... for a service of that name).
                let hint = suggestion(for: String(name.dropFirst(12)), among: byName.keys.map { String($0.dropFirst(12)) })
                    .map { "; did you mean SWITCHBOARD_\($0)?" } ?? "; ignored"
                config.warnings.append(ConfigError(file: source, line: nil, key: nil, "not a setting\(hint)"))
                continue
            }
            switch field.kind.parse(environment: text, baseDirectory: ".") {
            case .success(let value):
                field.apply(&config, value)
                config.locations[field.key] = ConfigLocation(file: source, line: nil)
            case .failure(let failure):
                errors.append(ConfigError(file: source, line: nil, key: field.key, failure.message))
            }
        }
        return errors
    }

    // MARK: - Rules between keys

    /// Problems between keys; `failed` keys already have an error (so their absence is not another).
    static func crossCheck(_ config: ServeConfig, failed: Set<String> = []) -> [ConfigError] {
        var errors: [ConfigError] = []
        let jwtKeys = ["auth.jwt.hs256_secret", "auth.jwt.hs256_secret_file", "auth.jwt.public_key_file", "auth.jwt.jwks"]
        let setKeys = jwtKeys.filter { config.locations[$0] != nil }
        if setKeys.count > 1 {
            errors.append(config.error(setKeys[1], "conflicts with \(setKeys[0]) (\(config.locations[setKeys[0]]!)); give one key"))
        }
        if config.auth.jwt != nil, setKeys.isEmpty, !jwtKeys.contains(where: failed.contains) {
            let anchor = ["auth.jwt", "auth.jwt.issuer", "auth.jwt.audience", "auth.jwt.clock_skew_seconds", "auth.jwt.require_exp",
                          "auth.jwt.jwks_refresh"]
                .first { config.locations[$0] != nil } ?? "auth.jwt"
            errors.append(config.error(anchor, "needs hs256_secret, hs256_secret_file, public_key_file or jwks"))
        }
        let hasCert = config.locations["tls.cert"] != nil, hasKey = config.locations["tls.key"] != nil
        if hasCert != hasKey {
            errors.append(config.error(hasCert ? "tls.cert" : "tls.key", "tls needs both cert and key"))
        }
        if config.encryption == .optional {
            errors.append(config.error("encryption", "'optional' needs library support that is not there yet (the kernel runs "
                + "handshakeFn only when requireEncryption is on); use off or required"))
        }
        if config.abuse.messageBurst != 0, config.abuse.messagesPerSecond == 0 {
            errors.append(config.error("abuse.message_burst", "needs abuse.messages_per_second"))
        }
        if config.heartbeatTimeout < config.heartbeatInterval {
            errors.append(config.error(config.locations["timers.heartbeat_timeout"] != nil ? "timers.heartbeat_timeout" : "timers.heartbeat_interval",
                                       "heartbeat_timeout (\(config.heartbeatTimeout) ms) is shorter than heartbeat_interval (\(config.heartbeatInterval) ms)"))
        }
        if let port = config.internalListener.port, port != 0, port == config.port {
            errors.append(config.error("internal.port", "is listen.port (\(port)) too; the internal listener needs a port of its own"))
        }
        errors += APIConfig.crossCheck(config)  // api.listen against internal.port, api.host, api.port
        errors += ProxyConfig.crossCheck(config)  // proxy.forward_headers needs proxy.connect.url
        return errors
    }

    // MARK: - Files

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func resolve(_ path: String, from base: String) -> String {
        if path.hasPrefix("/") || base == "." { return path }
        return base.hasSuffix("/") ? base + path : base + "/" + path
    }
}

/// Walks the YAML tree against the schema.
private struct Walker {
    let file: String
    let baseDirectory: String
    var errors: [ConfigError] = []

    mutating func walk(_ node: YAMLNode, prefix: [String], into config: inout ServeConfig) {
        let sectionName = prefix.isEmpty ? "the file" : prefix.joined(separator: ".")
        guard case .mapping(let pairs) = node.value else {
            if node.isNull { return }
            errors.append(ConfigError(file: file, line: node.line, key: prefix.isEmpty ? nil : sectionName,
                                      "expected a mapping of keys, got \(node.configKindName)"))
            return
        }
        let known = ConfigSchema.children(of: prefix)
        for pair in pairs {
            let path = prefix + [pair.key]
            let key = path.joined(separator: ".")
            if let field = ConfigSchema.field(path) {
                switch field.kind.parse(node: pair.value, baseDirectory: baseDirectory) {
                case .success(let value):
                    field.apply(&config, value)
                    config.locations[key] = ConfigLocation(file: file, line: pair.keyLine)
                case .failure(let failure):
                    errors.append(ConfigError(file: file, line: failure.line ?? pair.keyLine, key: key, failure.message))
                }
            } else if known.contains(pair.key) {
                config.locations[key] = ConfigLocation(file: file, line: pair.keyLine)
                if key == "auth.jwt", config.auth.jwt == nil { config.auth.jwt = JWTConfig() }
                walk(pair.value, prefix: path, into: &config)
            } else {
                let hint = suggestion(for: pair.key, among: known).map { "did you mean '\($0)'?" }
                    ?? "known keys: " + known.sorted().joined(separator: ", ")
                errors.append(ConfigError(file: file, line: pair.keyLine, key: key, "unknown key in \(sectionName); \(hint)"))
            }
        }
    }
}

/// The closest name within a small edit distance, if any.
func suggestion(for word: String, among candidates: [String]) -> String? {
    let lowered = word.lowercased()
    var best: (String, Int)?
    for candidate in candidates {
        let distance = editDistance(lowered, candidate.lowercased())
        if distance <= max(2, candidate.count / 3), distance < (best?.1 ?? .max) { best = (candidate, distance) }
    }
    return best?.0
}

func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.utf8), y = Array(b.utf8)
    if x.isEmpty { return y.count }
    var previous = Array(0...y.count)
    var current = previous
    for i in 1...x.count {
        current[0] = i
        for j in stride(from: 1, through: y.count, by: 1) {
            let cost = x[i - 1] == y[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        }
        swap(&previous, &current)
    }
    return previous[y.count]
}
