import ArgumentParser
import Switchboard

/// `switchboard config check|defaults`: a configuration checked before it is deployed.
struct ConfigCLI: ParsableCommand, UsageExitCode {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check a config file, or print the defaults as one.",
        subcommands: [Check.self, Defaults.self])

    struct Check: CLICommand, UsageExitCode {
        static let configuration = CommandConfiguration(
            abstract: "Validate a config file with the SWITCHBOARD_* overrides and print the effective configuration.",
            discussion: """
                Checks what `switchboard serve` checks before it binds: every key, the SWITCHBOARD_* variables, \
                and the files the configuration names (TLS, tokens, JWT keys). Prints the effective configuration \
                with secrets masked and each value's source as a comment. \
                Exit status: 0 valid, 1 invalid (every error on stderr as FILE:LINE: KEY: MESSAGE), 2 usage error.
                """)

        @Argument(help: ArgumentHelp("The config file (default: $SWITCHBOARD_CONFIG, else only the defaults and the environment).",
                                     valueName: "file"))
        var file: String?

        func execute(_ context: CLIContext) -> Int32 {
            let path = file ?? context.environment[ConfigLoader.configVariable]
            let name = path ?? "the defaults"
            let config: ServeConfig
            do {
                config = try ConfigCheck.load(path: path, environment: context.environment)
            } catch {
                for problem in error.errors { context.err("\(problem)\n") }
                let count = error.errors.count
                context.err("switchboard config check: \(name): \(count) error\(count == 1 ? "" : "s")\n")
                return 1
            }
            for warning in config.warnings { context.err("warning: \(warning)\n") }
            context.out("# switchboard config check: \(name) is valid; the effective configuration (secrets masked):\n")
            context.out(ConfigRender.yaml(config, mask: true, sources: true))
            return 0
        }
    }

    struct Defaults: CLICommand, UsageExitCode {
        static let configuration = CommandConfiguration(
            abstract: "Print every key with its default value, as a config file serve accepts.")

        func execute(_ context: CLIContext) -> Int32 {
            context.out("# switchboard \(BuildInfo.sourceVersion): every key at its default (docs/configuration.md).\n")
            context.out(ConfigRender.yaml(ServeConfig(), mask: false, sources: false))
            return 0
        }
    }
}

/// Everything `switchboard serve` checks before it binds, without binding.
enum ConfigCheck {
    static func load(path: String?, environment: [String: String]) throws(ConfigErrors) -> ServeConfig {
        let config = try ConfigLoader.load(path: path, environment: environment)
        var errors = ServeApp.unreadableTLSFiles(config)
        do { _ = try Authenticator.make(config) } catch { errors += error.errors }
        if case .failure(let apiErrors) = config.api.resolveKey(config) { errors += apiErrors.errors }  // server API key
        if !errors.isEmpty { throw ConfigErrors(errors) }
        return config
    }
}
