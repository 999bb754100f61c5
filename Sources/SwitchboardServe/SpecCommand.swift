import Foundation
import Switchboard
import SwitchboardGen

/// `switchboard spec validate|check|generate|table|diagram [--spec PATH] [--root DIR]`.
public enum SpecCommand {
    public static let usage = """
        usage: switchboard spec validate [--spec PATH] [--root DIR]   report the spec's problems
               switchboard spec generate [--spec PATH] [--root DIR]   write the generated Swift and docs
               switchboard spec check    [--spec PATH] [--root DIR]   fail when a generated file is stale
               switchboard spec table    [--spec PATH] [--root DIR]   print the transition table
               switchboard spec diagram  [--spec PATH] [--root DIR]   print the Mermaid state diagram
        The spec defaults to ROOT/spec/protocol.yaml; ROOT defaults to the current directory.
        """

    /// Runs one spec command; output on `out`, diagnostics on `err`; returns the exit code.
    public static func main(_ arguments: [String], out: (String) -> Void = { writeAll(1, $0) },
                            err: (String) -> Void = { writeAll(2, $0) }) -> Int32 {
        guard let command = arguments.first else {
            err(usage + "\n")
            return 1
        }
        if command == "--help" || command == "-h" || command == "help" {
            out(usage + "\n")
            return 0
        }
        guard ["validate", "check", "generate", "table", "diagram"].contains(command) else {
            err("switchboard spec: unknown command '\(command)'\n" + usage + "\n")
            return 1
        }
        var reader = FlagReader(Array(arguments.dropFirst()), command: "switchboard spec \(command)")
        var specOption: String?
        var root = "."
        do throws(UsageError) {
            while let flag = try reader.next() {
                switch flag.name {
                case "--spec": specOption = try reader.value(flag)
                case "--root": root = try reader.value(flag)
                default: throw UsageError("switchboard spec: unknown flag \(flag.name) (--spec PATH, --root DIR)")
                }
            }
        } catch {
            err(error.message + "\n")
            return 1
        }

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
