import ArgumentParser
import Switchboard

/// Where a command writes and what it reads from its surroundings; tests pass their own.
public struct CLIContext {
    public var environment: [String: String]
    public var out: (String) -> Void
    public var err: (String) -> Void

    public init(environment: [String: String], out: @escaping (String) -> Void = { writeAll(1, $0) },
                err: @escaping (String) -> Void = { writeAll(2, $0) }) {
        self.environment = environment
        self.out = out
        self.err = err
    }
}

/// A `switchboard` subcommand: parsed by ArgumentParser, run by `CLI.main` with a context
/// (instead of ArgumentParser's `run()`, which can neither take the environment nor return
/// the exit codes scripts already rely on).
protocol CLICommand: ParsableCommand {
    func execute(_ context: CLIContext) -> Int32
}

/// How a command (or group) treats its usage errors: the exit status (2 unless it says
/// otherwise; `serve`, `emit` and `spec` say 1, as before ArgumentParser, CONTRACT.md for
/// `emit`) and which options may repeat.
protocol UsageExitCode {
    static var usageExitCode: Int32 { get }
    /// Options that may be given more than once; any other is refused when repeated.
    static var repeatableOptions: Set<String> { get }
}

extension UsageExitCode {
    static var usageExitCode: Int32 { 2 }
    static var repeatableOptions: Set<String> { [] }
}

extension CLICommand where Self: UsageExitCode {
    /// Reports a usage error a command finds after parsing (a bad value, a missing flag) as
    /// `CLI.main` reports one ArgumentParser finds: the message, the usage lines, the command's
    /// usage exit code.
    func refuse(_ error: UsageError, _ context: CLIContext) -> Int32 {
        context.err(error.message + "\n" + CLI.usage(Self.self))
        return Self.usageExitCode
    }
}

extension Option where Value == String? {
    /// An optional string flag (`--name VALUE`), nil when absent so that a command can tell a
    /// flag given from one left to the config. Its value is taken as it comes even when it starts
    /// with a dash (`--data -1`), as every `switchboard` flag's is.
    init(name: NameSpecification = .long, _ help: String, value: String) {
        self.init(name: name, parsing: .unconditional, help: ArgumentHelp(help, valueName: value))
    }
}

/// The `switchboard` command line.
public struct SwitchboardCLI: ParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "switchboard",
            abstract: "A real-time WebSocket gateway.",
            discussion: "docs/configuration.md describes the config file; `switchboard help <command>` explains each command.",
            // A static configuration cannot take the context: `--version` reads the process's own variable.
            version: BuildInfo.current(environment: BuildInfo.versionFromProcess).text,
            subcommands: [ServeCLI.self, EmitCLI.self, ConfigCLI.self, TokenCLI.self, SpecCLI.self])
    }

    public init() {}
}

public enum CLI {
    /// Parses and runs one command line (without the program name); the exit status.
    public static func main(_ arguments: [String], context: CLIContext) -> Int32 {
        let group = commandType(for: arguments)
        do {
            try refuseRepeats(arguments, of: group)
            var command = try SwitchboardCLI.parseAsRoot(arguments)
            if let runnable = command as? any CLICommand { return runnable.execute(context) }
            guard type(of: command).configuration.subcommands.isEmpty else {
                // A group without its subcommand (`switchboard`, `switchboard config`): its help, as a usage error.
                context.err(SwitchboardCLI.helpMessage(for: type(of: command)) + "\n")
                return usageExitCode(group)
            }
            try command.run()   // `switchboard help [COMMAND]`: throws the help request
            return 0
        } catch let error as UsageError {
            context.err(error.message + "\n" + usage(group))
            return usageExitCode(group)
        } catch {
            let code = SwitchboardCLI.exitCode(for: error)
            if code == .success {   // --help, --version
                context.out(SwitchboardCLI.fullMessage(for: error) + "\n")
                return 0
            }
            let name = commandPath(group)
            context.err("\(name): \(SwitchboardCLI.message(for: error))\n" + usage(group))
            return usageExitCode(group)
        }
    }

    /// The usage lines printed after a usage error.
    static func usage(_ type: any ParsableCommand.Type) -> String {
        "usage: \(SwitchboardCLI.usageString(for: type))\nSee '\(commandPath(type)) --help'.\n"
    }

    /// The deepest command the leading words of `arguments` name (the root when none).
    static func commandType(for arguments: [String]) -> any ParsableCommand.Type {
        var current: any ParsableCommand.Type = SwitchboardCLI.self
        for word in arguments {
            guard let next = current.configuration.subcommands.first(where: { $0._commandName == word }) else { break }
            current = next
        }
        return current
    }

    /// `switchboard serve`, `switchboard config check`, ...: the words that name `type`.
    static func commandPath(_ type: any ParsableCommand.Type) -> String {
        func find(_ node: any ParsableCommand.Type, _ path: [String]) -> [String]? {
            if node == type { return path }
            for child in node.configuration.subcommands {
                if let found = find(child, path + [child._commandName]) { return found }
            }
            return nil
        }
        return (find(SwitchboardCLI.self, ["switchboard"]) ?? ["switchboard"]).joined(separator: " ")
    }

    static func usageExitCode(_ type: any ParsableCommand.Type) -> Int32 {
        (type as? any UsageExitCode.Type)?.usageExitCode ?? 2
    }

    /// Every option at most once (unless the command says otherwise), as before ArgumentParser,
    /// which would silently keep the last: `--port 1 --port 2` is a mistake worth naming.
    static func refuseRepeats(_ arguments: [String], of type: any ParsableCommand.Type) throws(UsageError) {
        let repeatable = (type as? any UsageExitCode.Type)?.repeatableOptions ?? []
        var seen: Set<String> = []
        for argument in arguments {
            if argument == "--" { break }
            guard argument.hasPrefix("--"), argument.count > 2 else { continue }
            let name = String(argument.prefix { $0 != "=" })
            if repeatable.contains(name) { continue }
            guard seen.insert(name).inserted else { throw UsageError("\(commandPath(type)): \(name) given twice") }
        }
    }
}

/// A command line that cannot be run; `message` is what to print.
public struct UsageError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension ParsableArguments {
    /// Parses `arguments` for one command, turning ArgumentParser's errors into a `UsageError`
    /// prefixed with the command's name (what the older hand-written parsers printed).
    static func parse(_ arguments: [String], as command: String) throws(UsageError) -> Self {
        do {
            return try parse(arguments)
        } catch {
            throw UsageError("\(command): \(message(for: error))")
        }
    }
}
