import ArgumentParser
import Switchboard
#if canImport(Glibc)
import Glibc
#endif

/// `switchboard serve`: the flags as ArgumentParser reads them.
struct ServeCLI: CLICommand, UsageExitCode {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway until SIGTERM or SIGINT.",
        discussion: """
            Without a config: 127.0.0.1:8080, in-process bus, a development HS256 secret made at start \
            (a sample token for user "demo" is printed). SWITCHBOARD_CONFIG names a config file too; \
            SWITCHBOARD_<SECTION>_<KEY> variables override it; flags override both. See docs/configuration.md.
            """)
    static let usageExitCode: Int32 = 1

    @Option(name: .customLong("config"), "The YAML config file (default: $SWITCHBOARD_CONFIG, else none).", value: "file")
    var configPath: String?
    @Option("Listen port, 0 to 65535 (0 picks a free one); overrides listen.port.", value: "n")
    var port: String?
    @Option("Listen address; overrides listen.host.", value: "address")
    var host: String?
    @Option("debug, info, warning or error; overrides log.level.", value: "level")
    var logLevel: String?

    func execute(_ context: CLIContext) -> Int32 {
        let config: ServeConfig
        do {
            config = try ServeCommand(self).configuration(environment: context.environment)
        } catch let error as UsageError {
            return refuse(error, context)
        } catch {
            return ServeCommand.fail(error, context)
        }
        return ServeCommand.run(config, context: context)
    }
}

/// `switchboard serve [--config FILE] [--port N] [--host H] [--log-level L]`, checked.
public struct ServeCommand: Equatable, Sendable {
    public var configPath: String?
    public var port: Int?
    public var host: String?
    public var logLevel: LogLevel?

    public init(configPath: String? = nil, port: Int? = nil, host: String? = nil, logLevel: LogLevel? = nil) {
        self.configPath = configPath
        self.port = port
        self.host = host
        self.logLevel = logLevel
    }

    public static func parse(_ arguments: [String]) throws(UsageError) -> ServeCommand {
        try CLI.refuseRepeats(arguments, of: ServeCLI.self)
        return try ServeCommand(ServeCLI.parse(arguments, as: "switchboard serve"))
    }

    init(_ flags: ServeCLI) throws(UsageError) {
        configPath = flags.configPath
        if let host = flags.host {
            guard !host.isEmpty else { throw UsageError("switchboard serve: --host needs a non-empty address") }
            self.host = host
        }
        if let text = flags.port {
            guard let port = Int(text), (0...65535).contains(port) else {
                throw UsageError("switchboard serve: --port must be 0 to 65535, not '\(text)'")
            }
            self.port = port
        }
        if let text = flags.logLevel {
            guard let level = LogLevel.named(text) else {
                throw UsageError("switchboard serve: --log-level must be debug, info, warning or error, not '\(text)'")
            }
            logLevel = level
        }
    }

    /// The configuration: defaults < file < environment < flags.
    public func configuration(environment: [String: String]) throws(ConfigErrors) -> ServeConfig {
        var config = try ConfigLoader.load(path: configPath ?? environment[ConfigLoader.configVariable], environment: environment)
        if let host {
            config.host = host
            config.locations["listen.host"] = ConfigLocation(file: "--host", line: nil)
        }
        if let port {
            config.port = port
            config.locations["listen.port"] = ConfigLocation(file: "--port", line: nil)
        }
        if let logLevel { config.logLevel = logLevel }
        return config
    }

    /// Runs the gateway until SIGTERM/SIGINT; the exit code.
    static func run(_ config: ServeConfig, context: CLIContext) -> Int32 {
        for warning in config.warnings { context.err("switchboard serve: warning: \(warning)\n") }
        let app: ServeApp
        do {
            app = try ServeApp(config: config, logger: Logger(level: config.logLevel),
                               build: BuildInfo.current(environment: context.environment))
        } catch {
            return fail(error, context)
        }
        do {
            try app.run { port in context.out(banner(config: config, port: port, internalPort: app.internalPort, token: app.developmentToken)) }
        } catch {
            return fail(error, context)
        }
        context.out("switchboard: stopped\n")
        return 0
    }

    /// Reports `error` on the context's standard error, a config file's errors one per line;
    /// exit code 1. Reading the config, starting and running fail alike.
    static func fail(_ error: any Error, _ context: CLIContext) -> Int32 {
        if let errors = error as? ConfigErrors {
            context.err(errors.errors.map { "switchboard serve: \($0)\n" }.joined())
        } else {
            context.err("switchboard serve: \(error)\n")
        }
        return 1
    }

    static func banner(config: ServeConfig, port: Int, internalPort: Int? = nil, token: String?) -> String {
        var host = config.host
        if host == "0.0.0.0" || host.isEmpty { host = "127.0.0.1" } else if host == "::" { host = "::1" }
        if host.contains(":") { host = "[\(host)]" }
        let (http, ws) = config.tls == nil ? ("http", "ws") : ("https", "wss")
        var metrics = "\(http)://\(host):\(port)/metrics"
        var health = "\(http)://\(host):\(port)/livez, /readyz, /healthz"
        if let internalPort {
            var internalHost = config.internalListener.host
            if internalHost.contains(":") { internalHost = "[\(internalHost)]" }
            let base = "http://\(internalHost):\(internalPort)"
            let publicPort = config.internalListener.publicEndpoints
            metrics = "\(base)/metrics" + (publicPort == .all ? " (and on the public port)" : "")
            health = "\(base)/livez, /readyz, /healthz" + (publicPort == .none ? "" : " (and on the public port)")
        }
        var text = """
            switchboard listening on \(config.host):\(port)
              websocket  \(ws)://\(host):\(port)\(config.path)
              demo page  \(config.demoPage ? "\(http)://\(host):\(port)/" : "off (http.demo_page)")
              metrics    \(metrics)
              health     \(health)
              bus        \(config.redis.map { "redis \($0)" } ?? "in-process (single instance)")
              encryption \(config.encryption.rawValue)

            """
        if let token {
            text += """
                development mode: no auth configured; tokens are checked against a secret made at start.
                sample token (user "demo", valid 1 h):
                \(token)

                """
            if config.demoPage { text += "demo: \(http)://\(host):\(port)/?token=\(token)\n\n" }
        }
        return text
    }
}
