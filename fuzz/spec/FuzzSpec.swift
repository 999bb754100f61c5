// fuzz/spec: the generator's spec loader (libyaml -> model -> validator) on arbitrary bytes.
//
// Invariants:
// - `SpecLoader.analyze` returns a spec or at least one error, never crashes;
// - diagnostics are sorted by line, name the file, have a message and a fix, and point at a
//   line inside the input; the spec's warnings are exactly the warning diagnostics;
// - `sha256` is the SHA-256 of the input (checked against OpenSSL);
// - `load` succeeds when `analyze` finds no error, and a spec that loads renders
//   (Swift sources, docs, table, diagram) without crashing.
import COpenSSL
import SwitchboardGen

let fileName = "fuzz.yaml"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpec(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let (spec, diagnostics) = SpecLoader.analyze(bytes: bytes, file: fileName)
    let hasError = diagnostics.contains { $0.severity == .error }
    require(spec != nil || hasError, "no spec and no error")

    // Any byte libyaml may count as a line break (LF, CR, NEL, LS/PS, also in UTF-16) bounds the
    // lines; plus one, as libyaml puts an error at the end of an unterminated last line on the next line.
    let lineBound = bytes.reduce(2) { [0x0A, 0x0D, 0x85, 0x28, 0x29, 0xA8, 0xA9].contains($1) ? $0 + 1 : $0 }
    var previous = 0
    for diagnostic in diagnostics {
        require(diagnostic.file == fileName, "diagnostic names \(diagnostic.file)")
        require(diagnostic.line >= 1 && diagnostic.line <= lineBound, "line \(diagnostic.line) outside 1...\(lineBound): \(diagnostic)")
        require(diagnostic.line >= previous, "diagnostics not sorted by line: \(diagnostics)")
        require(!diagnostic.message.isEmpty && !diagnostic.fix.isEmpty, "empty message or fix: \(diagnostic)")
        previous = diagnostic.line
    }

    // `load` is `analyze` plus a check for errors: worth running (twice the cost) only for a valid spec.
    if !hasError {
        do {
            let loaded = try SpecLoader.load(bytes: bytes, file: fileName)
            require(loaded.warnings == diagnostics, "warnings of a loaded spec differ from analyze's diagnostics")
            let files = Renderer.render(loaded)
            require(!files.isEmpty && files.allSatisfy { !$0.contents.isEmpty }, "render gave an empty file")
            _ = Renderer.tableText(loaded)
            _ = Renderer.diagram(loaded)
        } catch {
            invariantFailed("load threw although analyze reported no error: \(error)", file: #fileID, line: #line)
        }
    }

    guard let spec else { return 0 }
    require(spec.file == fileName, "spec.file \(spec.file)")
    require(spec.warnings == diagnostics.filter { $0.severity == .warning }, "spec.warnings are not the warnings")
    var digest = [UInt8](repeating: 0, count: 32)
    _ = bytes.withUnsafeBufferPointer { input in digest.withUnsafeMutableBufferPointer { SHA256(input.baseAddress, input.count, $0.baseAddress) } }
    require(spec.sha256 == hex(digest), "sha256 \(spec.sha256), OpenSSL says \(hex(digest))")
    return 0
}
