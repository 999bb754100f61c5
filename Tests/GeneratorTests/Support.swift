import Foundation
import Testing
@testable import SwitchboardGen

/// The package root (Tests/GeneratorTests/Support.swift -> ../..).
let repoRoot: URL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// A spec of the test bundle's Specs folder.
func specURL(_ name: String) throws -> URL {
    let folder = try #require(Bundle.module.url(forResource: "Specs", withExtension: nil), "Specs resource missing")
    return folder.appendingPathComponent(name)
}

func specBytes(_ name: String) throws -> [UInt8] {
    let data = try #require(FileManager.default.contents(atPath: try specURL(name).path), "cannot read Specs/\(name)")
    return [UInt8](data)
}

/// Every diagnostic of a test spec, as printed; the spec is named by its file name.
func diagnostics(_ name: String) throws -> [String] {
    SpecLoader.analyze(bytes: try specBytes(name), file: name).1.map(\.description)
}

/// Loads a test spec that must be valid.
func loadSpec(_ name: String) throws -> ProtocolSpec {
    do {
        return try SpecLoader.load(bytes: try specBytes(name), file: "spec/protocol.yaml")
    } catch let error as SpecDiagnostics {
        Issue.record("\(name) does not load:\n\(error)")
        throw error
    }
}

/// The real spec, loaded the way `switchboard-gen generate` loads it.
func loadRealSpec() throws -> ProtocolSpec {
    let path = repoRoot.appendingPathComponent("spec/protocol.yaml").path
    let data = try #require(FileManager.default.contents(atPath: path), "cannot read \(path)")
    do {
        return try SpecLoader.load(bytes: [UInt8](data), file: "spec/protocol.yaml")
    } catch {
        Issue.record("spec/protocol.yaml does not load:\n\(error)")
        throw error
    }
}

/// The text between the first line containing `from` and the first later line containing `to`
/// (both included).
func fragment(_ text: String, from: String, to: String) -> String? {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    guard let start = lines.firstIndex(where: { $0.contains(from) }),
          let end = lines[start...].firstIndex(where: { $0.contains(to) }) else { return nil }
    return lines[start...end].joined(separator: "\n")
}
