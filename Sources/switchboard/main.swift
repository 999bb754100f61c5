// switchboard: the gateway command (serve, emit, config, token, spec). The commands live in
// SwitchboardServe (CLI.swift), where the tests run them in-process too.
import Switchboard
import SwitchboardServe
#if canImport(Glibc)
import Glibc
#endif

/// The process environment, for config overrides (`SWITCHBOARD_*`) and `SWITCHBOARD_VERSION`.
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

Logger.bootstrapStandardError()
exit(CLI.main(Array(CommandLine.arguments.dropFirst()), context: CLIContext(environment: environment)))
