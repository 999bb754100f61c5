import SwitchboardServe
import Testing

/// `listen.allowed_origins` and `listen.trusted_proxies`: read from the file or the
/// environment, checked item by item, and handed to the library's options.
@Suite struct ProxyConfigTests {
    static func load(_ yaml: String, env: [String: String] = [:]) throws(ConfigErrors) -> ServeConfig {
        try ConfigLoader.load(bytes: Array(yaml.utf8), file: "test.yaml", baseDirectory: ".", environment: env)
    }

    static func errors(_ yaml: String, env: [String: String] = [:]) -> [String] {
        do {
            _ = try load(yaml, env: env)
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test func bothReachTheServerOptions() throws {
        let config = try Self.load("listen:\n  allowed_origins: [https://app.example.com, \"http://localhost:3000\"]\n"
            + "  trusted_proxies: [10.0.0.5, \"::1\"]\n")
        #expect(config.serverOptions.allowedOrigins == ["https://app.example.com", "http://localhost:3000"])
        #expect(config.serverOptions.trustedProxies == ["10.0.0.5", "::1"])
        #expect(config.locations["listen.trusted_proxies"]?.line == 3)
    }

    @Test func unsetMeansAnyOriginAndNoProxy() throws {
        let options = try Self.load("listen:\n  port: 1\n").serverOptions
        #expect(options.allowedOrigins == nil)
        #expect(options.trustedProxies.isEmpty)
    }

    @Test func theEnvironmentTakesCommaSeparatedLists() throws {
        let config = try Self.load("", env: ["SWITCHBOARD_LISTEN_ALLOWED_ORIGINS": "https://a.example, https://b.example:8443",
                                             "SWITCHBOARD_LISTEN_TRUSTED_PROXIES": "10.0.0.5,10.0.0.6"])
        #expect(config.allowedOrigins == ["https://a.example", "https://b.example:8443"])
        #expect(config.trustedProxies == ["10.0.0.5", "10.0.0.6"])
    }

    @Test func badItemsAreNamedAtTheirLine() {
        #expect(Self.errors("listen:\n  allowed_origins:\n    - https://ok.example\n    - https://app.example.com/chat\n")
            == ["test.yaml:4: listen.allowed_origins: origin 'https://app.example.com/chat' is not scheme://host[:port] (like https://app.example.com, no path)"])
        #expect(Self.errors("listen:\n  allowed_origins: [app.example.com]\n").count == 1)
        #expect(Self.errors("listen:\n  trusted_proxies: [10.0.0.0/8]\n")
            == ["test.yaml:2: listen.trusted_proxies: '10.0.0.0/8' is not an IPv4 or IPv6 address"])
        #expect(Self.errors("", env: ["SWITCHBOARD_LISTEN_TRUSTED_PROXIES": "proxy.internal"])
            == ["environment variable SWITCHBOARD_LISTEN_TRUSTED_PROXIES: listen.trusted_proxies: 'proxy.internal' is not an IPv4 or IPv6 address"])
    }
}
