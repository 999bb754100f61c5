import Switchboard
import SwitchboardBus

/// Writes a `ServeConfig` back as a config file: `switchboard config check` prints the
/// effective configuration (secrets masked, each value's source as a comment), and
/// `switchboard config defaults` prints the defaults as a file `switchboard serve` accepts.
enum ConfigRender {
    /// A key's value as YAML text, or why it is absent (printed as a comment).
    enum Rendered {
        case value(String)
        case unset(String)
    }

    /// The YAML text of every schema key. A key missing here is printed as a comment saying
    /// so (ConfigRenderTests fails for it, so a new key gets its line).
    static let renderers: [String: @Sendable (ServeConfig, _ mask: Bool) -> Rendered] =
        ownRenderers.merging(APIConfig.renderers) { own, _ in own }  // the server API's section (APIConfig.swift)
            .merging(ProxyConfig.renderers) { own, _ in own }  // the backend hooks' section (ProxyConfig.swift)

    private static let ownRenderers: [String: @Sendable (ServeConfig, _ mask: Bool) -> Rendered] = [
        "loops": { config, _ in .value(config.loops == 0 ? "auto" : "\(config.loops)") },
        "listen.host": { config, _ in .value(quoted(config.host)) },
        "listen.port": { config, _ in .value("\(config.port)") },
        "listen.path": { config, _ in .value(quoted(config.path)) },
        "listen.allowed_origins": { config, _ in
            config.allowedOrigins.isEmpty ? .unset("[\"https://app.example.com\"] (unset: any origin)") : .value(list(config.allowedOrigins))
        },
        "listen.trusted_proxies": { config, _ in
            config.trustedProxies.isEmpty ? .unset("[\"10.0.0.5\"] (unset: no proxy's X-Forwarded-For is believed)")
                : .value(list(config.trustedProxies))
        },
        "http.demo_page": { config, _ in .value("\(config.demoPage)") },

        "internal.host": { config, _ in .value(quoted(config.internalListener.host)) },
        "internal.port": { config, _ in
            config.internalListener.port.map { .value("\($0)") } ?? .unset("9090 (unset: no internal listener)")
        },
        "internal.public": { config, _ in .value(config.internalListener.publicEndpoints.rawValue) },

        "limits.max_payload_length": { config, _ in .value(size(config.maxPayloadLength)) },
        "limits.backpressure_limit": { config, _ in .value(size(config.backpressureLimit)) },
        "limits.close_on_backpressure": { config, _ in .value("\(config.closeOnBackpressure)") },
        "limits.max_header_bytes": { config, _ in .value(size(config.maxHeaderBytes)) },

        "compression.per_message_deflate": { config, _ in .value("\(config.perMessageDeflate)") },
        "compression.threshold": { config, _ in .value(size(config.compressionThreshold)) },

        "timers.auth_timeout": { config, _ in .value(duration(config.authTimeout)) },
        "timers.heartbeat_interval": { config, _ in .value(duration(config.heartbeatInterval)) },
        "timers.heartbeat_timeout": { config, _ in .value(duration(config.heartbeatTimeout)) },
        "timers.idle_timeout": { config, _ in .value(duration(config.idleTimeout)) },
        "timers.send_pings": { config, _ in .value("\(config.sendPings)") },
        "timers.upgrade_timeout": { config, _ in .value(duration(config.upgradeTimeout)) },
        "timers.shutdown_grace": { config, _ in .value(duration(config.shutdownGrace)) },
        "shutdown.drain_delay": { config, _ in .value(duration(config.drainDelay)) },

        "rooms.default": { config, _ in .value(list(config.defaultRooms)) },
        "rooms.allow_prefixes": { config, _ in .value(list(config.rooms.allowPrefixes)) },
        "rooms.allow_patterns": { config, _ in .value(list(config.rooms.allowPatterns)) },
        "rooms.user_rooms": { config, _ in .value("\(config.rooms.userRooms)") },
        "rooms.max_per_client": { config, _ in .value("\(config.rooms.maxPerClient)") },
        "rooms.presence": { config, _ in .value(list(config.presenceRooms)) },
        "rooms.presence_ttl": { config, _ in .value(duration(config.presenceTTL)) },
        "rooms.history": { config, _ in .value(list(config.historyRooms)) },
        "rooms.history_size": { config, _ in .value("\(config.historySize)") },
        "rooms.history_ttl": { config, _ in .value(duration(config.historyTTL)) },
        "rooms.history_epoch_ttl": { config, _ in .value(duration(config.historyEpochTTL)) },

        "redis.url": { config, _ in
            guard let url = config.redis else { return .unset("redis://host:6379 (unset: the in-process bus, one instance)") }
            // One URL per node; `description` masks the password.
            let urls = url.nodes.map { RedisURL(nodes: [$0], username: url.username, password: url.password, database: url.database) }
            return .value(urls.count == 1 ? quoted(urls[0].description) : list(urls.map(\.description)))
        },

        "tls.cert": { config, _ in config.tls.map { .value(quoted($0.certificate)) } ?? .unset("FILE (unset: plain ws://)") },
        "tls.key": { config, _ in config.tls.map { .value(quoted($0.privateKey)) } ?? .unset("FILE (unset: plain ws://)") },

        "encryption": { config, _ in .value(config.encryption.rawValue) },

        "auth.tokens_file": { config, _ in config.auth.tokensFile.map { .value(quoted($0)) } ?? .unset("FILE (unset)") },
        "auth.jwt.hs256_secret": { config, mask in
            guard case .hs256Secret(let secret)? = config.auth.jwt?.key else { return .unset("SECRET (unset)") }
            return .value(mask ? quoted("*** (\(secret.count) bytes)") : quoted(String(decoding: secret, as: UTF8.self)))
        },
        "auth.jwt.hs256_secret_file": { config, _ in
            guard case .hs256SecretFile(let path)? = config.auth.jwt?.key else { return .unset("FILE (unset)") }
            return .value(quoted(path))
        },
        "auth.jwt.public_key_file": { config, _ in
            guard case .publicKeyFile(let path)? = config.auth.jwt?.key else { return .unset("FILE (unset)") }
            return .value(quoted(path))
        },
        "auth.jwt.jwks": { config, _ in
            guard case .jwks(let source)? = config.auth.jwt?.key else { return .unset("FILE or URL (unset)") }
            return .value(quoted(source.description))
        },
        "auth.jwt.jwks_refresh": { config, _ in
            config.auth.jwt.map { .value("\($0.jwksRefreshMilliseconds)ms") } ?? .unset("\(JWTConfig().jwksRefreshMilliseconds)ms")
        },
        "auth.jwt.issuer": { config, _ in config.auth.jwt?.issuer.map { .value(quoted($0)) } ?? .unset("ISSUER (unset: not checked)") },
        "auth.jwt.audience": { config, _ in config.auth.jwt?.audience.map { .value(quoted($0)) } ?? .unset("AUDIENCE (unset: not checked)") },
        "auth.jwt.clock_skew_seconds": { config, _ in
            config.auth.jwt.map { .value("\($0.clockSkewSeconds)") } ?? .unset("\(JWTConfig().clockSkewSeconds)")
        },
        "auth.jwt.require_exp": { config, _ in config.auth.jwt.map { .value("\($0.requireExp)") } ?? .unset("\(JWTConfig().requireExp)") },

        "abuse.max_connections_per_ip": { config, _ in .value("\(config.abuse.maxConnectionsPerIP)") },
        "abuse.max_clients_per_user": { config, _ in .value("\(config.abuse.maxClientsPerUser)") },
        "abuse.messages_per_second": { config, _ in .value("\(config.abuse.messagesPerSecond)") },
        "abuse.message_burst": { config, _ in .value("\(config.abuse.messageBurst)") },
        "abuse.max_messages_before_auth": { config, _ in .value("\(config.abuse.maxMessagesBeforeAuth)") },

        "messages.broadcast": { config, _ in .value("\(config.allowBroadcast)") },
        "messages.numbers": { config, _ in .value(config.numberStyle.rawValue) },

        "log.level": { config, _ in .value(config.logLevel.name) },
    ]

    /// The whole file, in schema order. `mask` hides secrets; `sources` adds a comment with
    /// where each value that is not a default came from.
    static func yaml(_ config: ServeConfig, mask: Bool, sources: Bool) -> String {
        var text = ""
        var open: [String] = []
        for field in ConfigSchema.fields {
            let sections = Array(field.path.dropLast())
            // Close the sections the previous key was in, open this key's.
            var common = 0
            while common < min(open.count, sections.count), open[common] == sections[common] { common += 1 }
            open = Array(open.prefix(common))
            for section in sections.dropFirst(common) {
                // A section with no key set is a comment too: `jwt:` alone would switch JWT on.
                let prefix = open + [section]
                let allUnset = ConfigSchema.fields.filter { $0.path.starts(with: prefix) }.allSatisfy { isUnset($0, config) }
                text += (allUnset ? "# " : "") + String(repeating: "  ", count: open.count) + section + ":\n"
                open.append(section)
            }
            let indent = String(repeating: "  ", count: sections.count)
            let name = field.path.last!
            switch renderers[field.key]?(config, mask) {
            case .value(let value)?:
                var line = indent + name + ": " + value
                if sources, let location = config.locations[field.key] { line += "   # \(location)" }
                text += line + "\n"
            case .unset(let hint)?:
                text += "# " + indent + name + ": " + hint + "\n"
            case nil:
                text += "# " + indent + name + ": (not shown by switchboard config check)\n"
            }
        }
        return text
    }

    private static func isUnset(_ field: ConfigField, _ config: ServeConfig) -> Bool {
        if case .unset? = renderers[field.key]?(config, true) { return true }
        return false
    }

    /// A double-quoted YAML scalar (JSON's escapes are YAML's).
    static func quoted(_ text: String) -> String { JSONValue.string(text).serialized() }

    static func list(_ items: [String]) -> String { "[" + items.map(quoted).joined(separator: ", ") + "]" }

    /// Milliseconds in the largest unit that divides them (`30s`, `2m`, `250ms`).
    static func duration(_ milliseconds: Int64) -> String {
        for (unit, size) in [("h", Int64(3_600_000)), ("m", 60_000), ("s", 1000)] where milliseconds != 0 && milliseconds % size == 0 {
            return "\(milliseconds / size)\(unit)"
        }
        return "\(milliseconds)ms"
    }

    /// Bytes in the largest binary unit that divides them (`128KiB`).
    static func size(_ bytes: Int) -> String {
        for (unit, size) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] where bytes != 0 && bytes % size == 0 {
            return "\(bytes / size)\(unit)"
        }
        return "\(bytes)"
    }
}

extension LogLevel {
    /// The name `log.level` takes.
    var name: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .warning: "warning"
        case .error: "error"
        }
    }
}
