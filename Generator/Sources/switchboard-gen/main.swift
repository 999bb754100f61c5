import Foundation
import SwitchboardGen

/// switchboard-gen: spec/protocol.yaml -> Sources/SwitchboardKernel/Generated/*.swift, docs/errors.md, docs/states.mmd.
let usage = """
    usage: switchboard-gen generate [--spec PATH] [--root DIR]   write every generated file
           switchboard-gen check    [--spec PATH] [--root DIR]   fail when a generated file is stale
           switchboard-gen validate [--spec PATH]                report the spec's problems
           switchboard-gen table    [--spec PATH]                print the transition table
           switchboard-gen diagram  [--spec PATH]                print the Mermaid state diagram
    The spec defaults to ROOT/spec/protocol.yaml; ROOT defaults to the current directory.
    """

func fail(_ message: String, code: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(code)
}

func printError(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

var arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first else { fail(usage) }
arguments.removeFirst()
if command == "-h" || command == "--help" || command == "help" {
    print(usage)
    exit(0)
}
var specOption: String?
var root = "."
while !arguments.isEmpty {
    let flag = arguments.removeFirst()
    guard !arguments.isEmpty, flag == "--spec" || flag == "--root" else { fail("switchboard-gen: unexpected '\(flag)'\n" + usage) }
    let value = arguments.removeFirst()
    if flag == "--spec" { specOption = value } else { root = value }
}

/// The spec path to read, and the name stamps and diagnostics use (relative to the root when inside it).
@MainActor func specPaths() -> (read: String, display: String) {
    let read = specOption ?? (root == "." ? "spec/protocol.yaml" : URL(fileURLWithPath: root).appendingPathComponent("spec/protocol.yaml").path)
    guard specOption != nil else { return (read, "spec/protocol.yaml") }
    let rootPath = URL(fileURLWithPath: root).standardizedFileURL.resolvingSymlinksInPath().path
    let specPath = URL(fileURLWithPath: read).standardizedFileURL.resolvingSymlinksInPath().path
    if specPath.hasPrefix(rootPath + "/") { return (read, String(specPath.dropFirst(rootPath.count + 1))) }
    return (read, read)
}

@MainActor func loadSpec() -> ProtocolSpec {
    let (read, display) = specPaths()
    guard let data = FileManager.default.contents(atPath: read) else {
        fail("\(display):1: error: cannot read the spec; fix: check the path (--spec PATH, --root DIR)", code: 1)
    }
    do {
        let spec = try SpecLoader.load(bytes: [UInt8](data), file: display)
        for warning in spec.warnings { printError(warning.description) }
        return spec
    } catch {
        for diagnostic in error.diagnostics { printError(diagnostic.description) }
        let count = error.errors.count
        fail("switchboard-gen: \(display): \(count) error\(count == 1 ? "" : "s")", code: 1)
    }
}

switch command {
case "generate":
    let spec = loadSpec()
    do {
        let written = try GeneratedOutput.write(Renderer.render(spec), root: root)
        for path in written { print("wrote \(path)") }
        if written.isEmpty { print("switchboard-gen: generated files are up to date") }
    } catch {
        fail("switchboard-gen: \(error)", code: 1)
    }
case "check":
    let spec = loadSpec()
    let differences = GeneratedOutput.compare(Renderer.render(spec), root: root)
    if differences.isEmpty {
        print("switchboard-gen: generated files match \(spec.file)")
    } else {
        for difference in differences { printError(difference.detail) }
        fail("switchboard-gen: \(differences.count) generated file\(differences.count == 1 ? " is" : "s are") stale; run switchboard-gen generate", code: 1)
    }
case "validate":
    let spec = loadSpec()
    print("\(spec.file): ok (\(spec.states.count) states, \(spec.inputs.count) inputs, \(spec.guards.count) guards, \(spec.rows.count) rows)")
case "table":
    print(Renderer.tableText(loadSpec()), terminator: "")
case "diagram":
    print(Renderer.diagram(loadSpec()), terminator: "")
default:
    fail("switchboard-gen: unknown command '\(command)'\n" + usage)
}
