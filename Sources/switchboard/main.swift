// switchboard: the gateway command (serve, emit, spec tools).
import Switchboard
import SwitchboardServe
#if canImport(Glibc)
import Glibc
#endif

let usage = """
    usage: switchboard serve [--config FILE] [--port N] [--host H] [--log-level LEVEL]
           switchboard emit --redis URL --type client|user|room|broadcast [--target T] --event E --data JSON [--exclude ids]
           switchboard spec validate|check|generate|table|diagram [--spec PATH] [--root DIR]
    `switchboard <command> --help` explains each; docs/configuration.md describes the config file.

    """

Logger.bootstrapStandardError()
var arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first else {
    writeAll(2, usage)
    exit(2)
}
arguments.removeFirst()

var environment: [String: String] {
    var result: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let equals = text.firstIndex(of: "=") {
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        pointer += 1
    }
    return result
}

switch command {
case "serve":
    exit(ServeCommand.main(arguments, environment: environment))
case "emit":
    exit(EmitCommand.main(arguments))
case "spec":
    exit(SpecCommand.main(arguments))
case "-h", "--help", "help":
    writeAll(1, usage)
    exit(0)
default:
    writeAll(2, "switchboard: unknown command '\(command)'\n" + usage)
    exit(2)
}
