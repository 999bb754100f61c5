import Switchboard

/// The `api` section: the server API (docs/api.yaml) is off until a key is configured, from
/// `api.key` (best given as `SWITCHBOARD_API_KEY`, not written in a file) or `api.key_file`.
/// It listens on a port of its own (`api.host`, `api.port`), loopback by default, or, with
/// `api.listen: internal`, on the internal listener beside `/metrics` and the probes.
public struct APIConfig: Sendable, Equatable {
    /// `api.listen`: where the API is served.
    public enum Listener: String, Sendable, CaseIterable {
        /// Its own port, `api.host:api.port` (keep-alive connections).
        case ownPort = "own"
        /// The internal listener (`internal.host:internal.port`), so that one private port
        /// carries metrics, probes and the API; `api.host` and `api.port` are then unused.
        case internalListener = "internal"
    }

    /// `api.key` / `SWITCHBOARD_API_KEY`.
    public var key: [UInt8]?
    /// `api.key_file`: a file holding the key (a trailing newline is ignored).
    public var keyFile: String?
    public var listen = Listener.ownPort
    public var host = "127.0.0.1"
    /// 0: a port the kernel chooses (tests).
    public var port = 8081
    /// Larger request bodies get 413 without being read.
    public var maxBody = 1 << 20

    public init() {}

    public var isEnabled: Bool { key != nil || keyFile != nil }

    /// A key shorter than this is refused: the API can disconnect every user.
    static let minimumKeyBytes = 16

    /// The configured key, nil when the API is off; every problem names its key.
    func resolveKey(_ config: ServeConfig) -> Result<[UInt8]?, ConfigErrors> {
        if key != nil && keyFile != nil {
            return .failure(ConfigErrors([config.error("api.key_file", "set api.key or api.key_file, not both")]))
        }
        let name: String
        let bytes: [UInt8]
        if let key {
            (name, bytes) = ("api.key", key)
        } else if let keyFile {
            guard let read = Authenticator.readSecretFile(keyFile) else {
                return .failure(ConfigErrors([config.error("api.key_file", "cannot read \(keyFile) (\(lastErrorText()))")]))
            }
            (name, bytes) = ("api.key_file", read)
        } else {
            return .success(nil)
        }
        guard bytes.count >= Self.minimumKeyBytes else {
            return .failure(ConfigErrors([config.error(name, "the API key has \(bytes.count) bytes; use at least \(Self.minimumKeyBytes) (e.g. openssl rand -hex 32)")]))
        }
        return .success(bytes)
    }

    /// Problems between `api.listen` and the keys it makes needed or unused; each error is at
    /// the key it is reported under and names the other one.
    static func crossCheck(_ config: ServeConfig) -> [ConfigError] {
        guard config.api.listen == .internalListener else { return [] }
        var errors: [ConfigError] = []
        if config.internalListener.port == nil {
            errors.append(config.error("api.listen", "'internal' needs the internal listener: set internal.port too"))
        }
        // Set but unused: an operator who sets them expects the API there.
        for key in ["api.host", "api.port"] where config.locations[key] != nil {
            errors.append(config.error(key, "is not used with api.listen: internal (the API is served on "
                                       + "internal.host:internal.port); remove one of them"))
        }
        return errors
    }

    // MARK: - Schema

    /// The section's keys, appended to `ConfigSchema.fields`.
    static let fields: [ConfigField] = [
        ConfigField(path: ["api", "key"], kind: .text) { config, value in config.api.key = Array(value.text.utf8) },
        ConfigField(path: ["api", "key_file"], kind: .file) { $0.api.keyFile = $1.text },
        ConfigField(path: ["api", "listen"], kind: .choice(Listener.allCases.map(\.rawValue))) {
            $0.api.listen = Listener(rawValue: $1.text) ?? .ownPort
        },
        ConfigField(path: ["api", "host"], kind: .text) { $0.api.host = $1.text },
        ConfigField(path: ["api", "port"], kind: .integer(0...65535)) { $0.api.port = $1.int },
        ConfigField(path: ["api", "max_body"], kind: .size(1024...(1 << 30))) { $0.api.maxBody = $1.int },
    ]

    /// How `switchboard config check` prints them (the key masked), merged into `ConfigRender.renderers`.
    static let renderers: [String: @Sendable (ServeConfig, _ mask: Bool) -> ConfigRender.Rendered] = [
        "api.key": { config, mask in
            guard let key = config.api.key else { return .unset("KEY (unset; SWITCHBOARD_API_KEY)") }
            return .value(mask ? ConfigRender.quoted("*** (\(key.count) bytes)") : ConfigRender.quoted(String(decoding: key, as: UTF8.self)))
        },
        "api.key_file": { config, _ in config.api.keyFile.map { .value(ConfigRender.quoted($0)) } ?? .unset("FILE (unset)") },
        "api.listen": { config, _ in .value(config.api.listen.rawValue) },
        "api.host": { config, _ in .value(ConfigRender.quoted(config.api.host)) },
        "api.port": { config, _ in .value("\(config.api.port)") },
        "api.max_body": { config, _ in .value(ConfigRender.size(config.api.maxBody)) },
    ]
}
