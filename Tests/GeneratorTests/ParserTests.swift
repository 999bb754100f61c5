import Testing
@testable import SwitchboardGen

@Suite struct ParserTests {
    func parse(_ text: String) -> (YAMLNode?, [String]) {
        var sink = DiagnosticSink(file: "t.yaml")
        let node = YAMLReader.parse(Array(text.utf8), into: &sink)
        return (node, sink.sorted.map(\.description))
    }

    @Test func blockAndFlowNodesKeepTheirLines() throws {
        let (root, diagnostics) = parse("""
            a:
              - from: x
                on: [p, q]
              - { from: y, on: r }
            b: 'quoted'
            c: 12
            """)
        #expect(diagnostics.isEmpty)
        guard case .mapping(let pairs)? = root?.value else { Issue.record("no mapping"); return }
        #expect(pairs.map(\.key) == ["a", "b", "c"])
        #expect(pairs.map(\.keyLine) == [1, 5, 6])
        guard case .sequence(let items) = pairs[0].value.value else { Issue.record("no sequence"); return }
        #expect(items.map(\.line) == [2, 4])
        #expect(items[0].column == 5)
        guard case .mapping(let row) = items[0].value, case .sequence(let on) = row[1].value.value else {
            Issue.record("no row"); return
        }
        #expect(on.map(\.scalar) == ["p", "q"])
        guard case .scalar("quoted", let plain) = pairs[1].value.value else { Issue.record("no scalar"); return }
        #expect(!plain)
        guard case .scalar("12", true) = pairs[2].value.value else { Issue.record("no plain scalar"); return }
    }

    @Test func duplicateKeysNameBothLines() {
        #expect(parse("a: 1\nb: 2\na: 3\n").1 == ["t.yaml:3: error: duplicate key 'a' (first at line 1); fix: remove or rename one of the two"])
    }

    @Test func emptyAndCommentOnlyInputs() {
        #expect(parse("").1 == ["t.yaml:1: error: the spec is empty; fix: write the spec's sections (protocol, states, inputs, transitions, ...)"])
        #expect(parse("# nothing\n").1.count == 1)
    }

    @Test func secondDocumentIsRejected() {
        #expect(parse("a: 1\n---\nb: 2\n").1 == ["t.yaml:2: error: the spec must be a single YAML document; fix: remove the second document (from line 2)"])
    }

    @Test func deepNestingIsRejected() {
        let text = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(parse(text).1 == ["t.yaml:1: error: nesting deeper than 64 levels; fix: flatten the value"])
    }

    @Test func names() {
        #expect(Names.lowerCamel("invalid_json") == "invalidJson")
        #expect(Names.lowerCamel("auth_in_progress") == "authInProgress")
        #expect(Names.lowerCamel("with_new_token") == "withNewToken")
        #expect(Names.swift("default") == "`default`")
        #expect(Names.isSnakeCase("a_b2") && !Names.isSnakeCase("a__b") && !Names.isSnakeCase("A") && !Names.isSnakeCase("a_"))
        #expect(Names.literal("a\"b\\c\n") == #""a\"b\\c\n""#)
        #expect(Names.suggestion(for: "tuch", among: ["touch", "ignore"]) == "touch")
        #expect(Names.suggestion(for: "zzzzzz", among: ["touch"]) == nil)
    }
}

/// Garbage never crashes the loader: it ends in diagnostics.
@Suite struct RobustnessTests {
    static let garbage: [String] = [
        "[", "{a: [}", "key: : :", "\t- x", "just a scalar", "- a\n- b\n", "---\n...\n", "a: *nope\n",
        "states: 3\ninputs: [1]\ntransitions: {x: 1}\nprotocol: []\n",
        "transitions:\n  - 1\n  - [a]\n  - {from: [[a]], on: {x: 1}, when: [{a: 1}, 'not', 'a b c'], to: [x], do: 7}\n",
        "states:\n  a: {initial: true, terminal: true, wire: A}\ninputs: {}\ntransitions: []\nprotocol: {name: x, version: 1}\n",
        "defaults:\n  x: {value: {a: 1}, type: strings}\n  y: {value: [[1]], type: strings}\n",
        "close_codes:\n  a: {code: 99999999999999999999999, reason: [x], reconnect: {}}\n",
        "channels: {room: '{', client: '}{', user: '{}'}\n",
        String(repeating: "- ", count: 500) + "x\n",
    ]

    @Test(arguments: garbage)
    func garbageEndsInErrors(_ text: String) {
        let (_, diagnostics) = SpecLoader.analyze(bytes: Array(text.utf8), file: "g.yaml")
        #expect(diagnostics.contains { $0.severity == .error })
        #expect(diagnostics.allSatisfy { $0.line >= 1 })
    }

    @Test func invalidUTF8AndNULBytes() {
        for bytes: [UInt8] in [[0xFF, 0xFE, 0x00], [0x61, 0x3A, 0x20, 0xC3], [0x00], Array(repeating: 0x80, count: 64)] {
            let (_, diagnostics) = SpecLoader.analyze(bytes: bytes, file: "g.yaml")
            #expect(diagnostics.contains { $0.severity == .error })
        }
    }

    @Test func everyPrefixOfTheRealSpecIsHandled() throws {
        // Truncations at many points: each ends in a spec or in diagnostics, never a crash.
        let path = repoRoot.appendingPathComponent("spec/protocol.yaml").path
        let bytes = try #require(FileManager.default.contents(atPath: path)).map { $0 }
        for end in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 97)) {
            let (spec, diagnostics) = SpecLoader.analyze(bytes: Array(bytes[..<end]), file: "p.yaml")
            #expect(spec != nil || !diagnostics.isEmpty)
            if let spec, !diagnostics.contains(where: { $0.severity == .error }) { _ = Renderer.render(spec) }
        }
    }
}

import Foundation
