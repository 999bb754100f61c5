import Switchboard
#if canImport(Glibc)
import Glibc
#endif

/// `switchboard serve [--config FILE] [--port N] [--host H] [--log-level L]`.
public struct ServeCommand: Equatable, Sendable {
    public var configPath: String?
    public var port: Int?
    public var host: String?
    public var logLevel: LogLevel?

    public static let usage = """
        usage: switchboard serve [--config FILE] [--port N] [--host H] [--log-level debug|info|warning|error]
        Without a config: 127.0.0.1:8080, in-process bus, a development HS256 secret made at start
        (a sample token for user "demo" is printed). SWITCHBOARD_CONFIG names a config file too;
        SWITCHBOARD_<SECTION>_<KEY> variables override it; flags override both.
        See docs/configuration.md.
        """

    public static func parse(_ arguments: [String]) throws(UsageError) -> ServeCommand {
        var command = ServeCommand()
        var reader = FlagReader(arguments, command: "switchboard serve")
        while let flag = try reader.next() {
            switch flag.name {
            case "--config": command.configPath = try reader.value(flag)
            case "--host":
                let host = try reader.value(flag)
                guard !host.isEmpty else { throw UsageError("switchboard serve: --host needs a non-empty address") }
                command.host = host
            case "--port":
                let text = try reader.value(flag)
                guard let port = Int(text), (0...65535).contains(port) else {
                    throw UsageError("switchboard serve: --port must be 0 to 65535, not '\(text)'")
                }
                command.port = port
            case "--log-level":
                let text = try reader.value(flag)
                guard let level = LogLevel.named(text) else {
                    throw UsageError("switchboard serve: --log-level must be debug, info, warning or error, not '\(text)'")
                }
                command.logLevel = level
            default:
                let hint = suggestion(for: flag.name, among: ["--config", "--port", "--host", "--log-level"])
                    .map { "; did you mean \($0)?" } ?? ""
                throw UsageError("switchboard serve: unknown flag \(flag.name)\(hint)")
            }
        }
        return command
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
    public static func main(_ arguments: [String], environment: [String: String]) -> Int32 {
        if arguments.contains("--help") || arguments.contains("-h") {
            writeAll(1, usage + "\n")
            return 0
        }
        let config: ServeConfig
        do {
            config = try parse(arguments).configuration(environment: environment)
        } catch let error as UsageError {
            writeAll(2, error.message + "\n" + usage + "\n")
            return 1
        } catch {
            return fail(error)
        }
        for warning in config.warnings { writeAll(2, "switchboard serve: warning: \(warning)\n") }
        let app: ServeApp
        do {
            app = try ServeApp(config: config, logger: Logger(level: config.logLevel))
        } catch {
            return fail(error)
        }
        do {
            try app.run { port in writeAll(1, banner(config: config, port: port, token: app.developmentToken)) }
        } catch {
            return fail(error)
        }
        writeAll(1, "switchboard: stopped\n")
        return 0
    }

    /// Reports `error` on standard error, a config file's errors one per line; exit code 1.
    private static func fail(_ error: any Error) -> Int32 {
        if let errors = error as? ConfigErrors {
            writeAll(2, errors.errors.map { "switchboard serve: \($0)\n" }.joined())
        } else {
            writeAll(2, "switchboard serve: \(error)\n")
        }
        return 1
    }

    static func banner(config: ServeConfig, port: Int, token: String?) -> String {
        var host = config.host
        if host == "0.0.0.0" || host.isEmpty { host = "127.0.0.1" } else if host == "::" { host = "::1" }
        if host.contains(":") { host = "[\(host)]" }
        let (http, ws) = config.tls == nil ? ("http", "ws") : ("https", "wss")
        var text = """
            switchboard listening on \(config.host):\(port)
              websocket  \(ws)://\(host):\(port)\(config.path)
              demo page  \(http)://\(host):\(port)/
              metrics    \(http)://\(host):\(port)/metrics
              health     \(http)://\(host):\(port)/healthz
              bus        \(config.redis.map { "redis \($0)" } ?? "in-process (single instance)")
              encryption \(config.encryption.rawValue)

            """
        if let token {
            text += """
                development mode: no auth configured; tokens are checked against a secret made at start.
                sample token (user "demo", valid 1 h):
                \(token)
                demo: \(http)://\(host):\(port)/?token=\(token)

                """
        }
        return text
    }
}
