import Switchboard

/// The `proxy` section: hooks answered by the application's backend over HTTP (docs/proxy.md).
/// Each hook has its own URL and is off without one, so a backend can take over only some:
/// `connect` (the authenticateFn), `join` (the validateRoomFn), `rpc` and `publish` (the spec's
/// rpc and publish hooks) and `disconnect` (a notification). `timeout`, `retries` and
/// `retry_backoff` apply to every hook, and a hook's own `timeout` overrides the first.
public struct ProxyConfig: Sendable, Equatable {
    /// One backend hook.
    public enum Hook: String, Sendable, CaseIterable {
        case connect, join, rpc, publish, disconnect

        /// Whether a failed call may be made again. connect, join and disconnect only ask or
        /// tell (the same request gets the same answer, a repeated notice changes nothing); an
        /// rpc or a publish may act, and a retry after a timeout could act twice.
        public var isIdempotent: Bool {
            switch self {
            case .connect, .join, .disconnect: true
            case .rpc, .publish: false
            }
        }
    }

    /// `proxy.<hook>.url`, an http(s) URL; a hook without one is not proxied.
    public var urls: [Hook: String] = [:]
    /// `proxy.<hook>.timeout` (ms); absent: `timeout`.
    public var hookTimeouts: [Hook: Int64] = [:]
    /// `proxy.timeout` (ms): how long one attempt may take, answer included.
    public var timeout: Int64 = 1_000
    /// `proxy.retries`: further attempts of an idempotent hook after a timeout, a failed
    /// connection or a 5xx answer.
    public var retries = 2
    /// `proxy.retry_backoff` (ms): the wait before the first retry, doubled for each next one.
    public var retryBackoff: Int64 = 100
    /// `proxy.forward_headers`: upgrade request headers sent to the connect hook (`Cookie`,
    /// `Authorization`, `User-Agent`, ...), case-insensitive.
    public var forwardHeaders: [String] = []

    public init() {}

    public var isEnabled: Bool { !urls.isEmpty }

    public func url(_ hook: Hook) -> String? { urls[hook] }

    public func timeout(_ hook: Hook) -> Int64 { hookTimeouts[hook] ?? timeout }

    /// Attempts of one call: 1, plus `retries` for an idempotent hook.
    public func attempts(_ hook: Hook) -> Int { hook.isIdempotent ? 1 + retries : 1 }

    /// Problems between keys: forwarded headers go to the connect hook only.
    static func crossCheck(_ config: ServeConfig) -> [ConfigError] {
        if !config.proxy.forwardHeaders.isEmpty, config.proxy.urls[.connect] == nil {
            return [config.error("proxy.forward_headers", "headers are forwarded to the connect hook only: set proxy.connect.url too")]
        }
        return []
    }

    // MARK: - Schema

    /// The section's keys, appended to `ConfigSchema.fields`.
    static let fields: [ConfigField] = [
        ConfigField(path: ["proxy", "timeout"], kind: .duration(min: 1)) { $0.proxy.timeout = Int64($1.int) },
        ConfigField(path: ["proxy", "retries"], kind: .integer(0...10)) { $0.proxy.retries = $1.int },
        ConfigField(path: ["proxy", "retry_backoff"], kind: .duration(min: 0)) { $0.proxy.retryBackoff = Int64($1.int) },
        ConfigField(path: ["proxy", "forward_headers"], kind: .texts) { $0.proxy.forwardHeaders = $1.texts },
    ] + Hook.allCases.flatMap { hook in
        [
            ConfigField(path: ["proxy", hook.rawValue, "url"], kind: .httpURL) { $0.proxy.urls[hook] = $1.text },
            ConfigField(path: ["proxy", hook.rawValue, "timeout"], kind: .duration(min: 1)) {
                $0.proxy.hookTimeouts[hook] = Int64($1.int)
            },
        ]
    }

    /// How `switchboard config check` prints them, merged into `ConfigRender.renderers`.
    static let renderers: [String: @Sendable (ServeConfig, _ mask: Bool) -> ConfigRender.Rendered] = {
        var renderers: [String: @Sendable (ServeConfig, _ mask: Bool) -> ConfigRender.Rendered] = [
            "proxy.timeout": { config, _ in .value("\(config.proxy.timeout)ms") },
            "proxy.retries": { config, _ in .value("\(config.proxy.retries)") },
            "proxy.retry_backoff": { config, _ in .value("\(config.proxy.retryBackoff)ms") },
            "proxy.forward_headers": { config, _ in
                config.proxy.forwardHeaders.isEmpty ? .unset("[cookie, user-agent] (unset: none)")
                    : .value(ConfigRender.list(config.proxy.forwardHeaders))
            },
        ]
        for hook in Hook.allCases {
            renderers["proxy.\(hook.rawValue).url"] = { config, _ in
                config.proxy.urls[hook].map { .value(ConfigRender.quoted($0)) }
                    ?? .unset("http://backend.internal/switchboard/\(hook.rawValue) (unset: not proxied)")
            }
            renderers["proxy.\(hook.rawValue).timeout"] = { config, _ in
                config.proxy.hookTimeouts[hook].map { .value("\($0)ms") } ?? .unset("\(config.proxy.timeout)ms (unset: proxy.timeout)")
            }
        }
        return renderers
    }()

    /// Why `text` is not an http(s) URL with a host (and a valid port, if it names one), or nil.
    static func urlProblem(_ text: String) -> String? {
        let lowered = text.lowercased()
        guard let scheme = ["http://", "https://"].first(where: { lowered.hasPrefix($0) }) else {
            return "expected an http:// or https:// URL, got '\(text)'"
        }
        if text.contains(where: { $0 == " " || $0 == "\t" }) { return "the URL '\(text)' contains a space" }
        let authority = text.dropFirst(scheme.count).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hostPort = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? ""
        var host = hostPort
        var port: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return "the URL '\(text)' has an unclosed IPv6 address" }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") { port = after.dropFirst() } else if !after.isEmpty { return "the URL '\(text)' has a bad host" }
        } else if let colon = hostPort.firstIndex(of: ":") {
            host = hostPort[..<colon]
            port = hostPort[hostPort.index(after: colon)...]
        }
        if host.isEmpty { return "the URL '\(text)' has no host" }
        if let port, !(Int(port).map { (1...65535).contains($0) } ?? false) {
            return "the URL '\(text)' has a bad port '\(port)'"
        }
        return nil
    }
}
