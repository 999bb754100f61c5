import ArgumentParser
import Foundation
import Switchboard
import SwitchboardGen

/// `switchboard spec`: the spec tools, one subcommand each.
struct SpecCLI: ParsableCommand, UsageExitCode {
    static let configuration = CommandConfiguration(
        commandName: "spec",
        abstract: "Validate, render and check the protocol spec.",
        discussion: "The spec defaults to ROOT/spec/protocol.yaml; ROOT defaults to the current directory.",
        subcommands: [Validate.self, Generate.self, Check.self, Table.self, Diagram.self])
    static let usageExitCode: Int32 = 1

    /// The flags every spec subcommand takes.
    struct Paths: ParsableArguments {
        @Option(parsing: .unconditional, help: ArgumentHelp("The spec file (default: ROOT/spec/protocol.yaml).", valueName: "path"))
        var spec: String?
        @Option(parsing: .unconditional, help: ArgumentHelp("The repository root generated files are written under.", valueName: "dir"))
        var root = "."
    }

    struct Validate: SpecSubcommand {
        static let name = "validate", abstract = "Report the spec's problems."
        @OptionGroup var paths: Paths
    }

    struct Generate: SpecSubcommand {
        static let name = "generate", abstract = "Write the generated Swift and docs."
        @OptionGroup var paths: Paths
    }

    struct Check: SpecSubcommand {
        static let name = "check", abstract = "Fail when a generated file is stale."
        @OptionGroup var paths: Paths
    }

    struct Table: SpecSubcommand {
        static let name = "table", abstract = "Print the transition table."
        @OptionGroup var paths: Paths
    }

    struct Diagram: SpecSubcommand {
        static let name = "diagram", abstract = "Print the Mermaid state diagram."
        @OptionGroup var paths: Paths
    }
}

/// A `spec` subcommand: it declares its name, abstract and the shared flags; parsing, the usage
/// exit code (1, as `spec` had before ArgumentParser) and running are the same for all, in
/// `SpecCommand.run`.
protocol SpecSubcommand: CLICommand, UsageExitCode {
    /// The word after `spec`, which also selects what `SpecCommand.run` does.
    static var name: String { get }
    static var abstract: String { get }
    var paths: SpecCLI.Paths { get }
}

extension SpecSubcommand {
    static var configuration: CommandConfiguration { CommandConfiguration(commandName: name, abstract: abstract) }
    static var usageExitCode: Int32 { 1 }
    func execute(_ context: CLIContext) -> Int32 { SpecCommand.run(Self.name, paths, context) }
}

/// `switchboard spec validate|check|generate|table|diagram [--spec PATH] [--root DIR]`.
public enum SpecCommand {
    /// Runs one spec command line (`validate --root .`); output on `out`, diagnostics on `err`;
    /// the exit code.
    public static func main(_ arguments: [String], out: @escaping (String) -> Void = { writeAll(1, $0) },
                            err: @escaping (String) -> Void = { writeAll(2, $0) }) -> Int32 {
        CLI.main(["spec"] + arguments, context: CLIContext(environment: [:], out: out, err: err))
    }

    static func run(_ command: String, _ options: SpecCLI.Paths, _ context: CLIContext) -> Int32 {
        let out = context.out, err = context.err
        let specOption = options.spec, root = options.root
        let (read, display) = paths(spec: specOption, root: root)
        guard let data = FileManager.default.contents(atPath: read) else {
            err("\(display):1: error: cannot read the spec; fix: check the path (--spec PATH, --root DIR)\n")
            return 1
        }
        let spec: ProtocolSpec
        do {
            spec = try SpecLoader.load(bytes: [UInt8](data), file: display)
        } catch {
            for diagnostic in error.diagnostics { err(diagnostic.description + "\n") }
            let count = error.errors.count
            err("switchboard spec: \(display): \(count) error\(count == 1 ? "" : "s")\n")
            return 1
        }
        for warning in spec.warnings { err(warning.description + "\n") }

        switch command {
        case "validate":
            out("\(spec.file): ok (\(spec.states.count) states, \(spec.inputs.count) inputs, \(spec.guards.count) guards, \(spec.rows.count) rows)\n")
        case "generate":
            do {
                let written = try GeneratedOutput.write(Renderer.render(spec), root: root)
                for path in written { out("wrote \(path)\n") }
                if written.isEmpty { out("switchboard spec: generated files are up to date\n") }
            } catch {
                err("switchboard spec: \(error)\n")
                return 1
            }
        case "check":
            let differences = GeneratedOutput.compare(Renderer.render(spec), root: root)
            guard differences.isEmpty else {
                for difference in differences { err(difference.detail + "\n") }
                err("switchboard spec: \(differences.count) generated file\(differences.count == 1 ? " is" : "s are") stale; run switchboard spec generate\n")
                return 1
            }
            out("switchboard spec: generated files match \(spec.file)\n")
        case "table":
            out(Renderer.tableText(spec))
        default:
            out(Renderer.diagram(spec))
        }
        return 0
    }

    /// The path to read and the name used in stamps and diagnostics (relative to the root when inside it).
    static func paths(spec: String?, root: String) -> (read: String, display: String) {
        let standard = URL(fileURLWithPath: root).appendingPathComponent("spec/protocol.yaml").path
        guard let spec else { return (root == "." ? "spec/protocol.yaml" : standard, "spec/protocol.yaml") }
        let rootPath = URL(fileURLWithPath: root).standardizedFileURL.resolvingSymlinksInPath().path
        let specPath = URL(fileURLWithPath: spec).standardizedFileURL.resolvingSymlinksInPath().path
        if specPath.hasPrefix(rootPath + "/") { return (spec, String(specPath.dropFirst(rootPath.count + 1))) }
        return (spec, spec)
    }
}
