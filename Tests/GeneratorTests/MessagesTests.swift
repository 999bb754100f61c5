import Foundation
import Testing
@testable import SwitchboardGen

/// The `messages` section: loading, the diagnostics of each rule, the Swift field enums and
/// docs/protocol.md. The spec is Specs/Messages/messages.yaml (base.yaml plus the section);
/// each diagnostic case edits one line of it in memory.
@Suite struct MessagesTests {
    static func text() throws -> String {
        String(decoding: try specBytes("Messages/messages.yaml"), as: UTF8.self)
    }

    static func load(_ text: String) throws -> ProtocolSpec {
        try SpecLoader.load(bytes: Array(text.utf8), file: "spec/protocol.yaml")
    }

    /// `text` with `old` (which must occur exactly once) replaced by `new`.
    static func edit(_ text: String, _ old: String, _ new: String) -> String {
        let parts = text.components(separatedBy: old)
        #expect(parts.count == 2, "'\(old)' occurs \(parts.count - 1) times")
        return parts.joined(separator: new)
    }

    @Test func loadsEveryEntryInSpecOrder() throws {
        let spec = try Self.load(try Self.text())
        #expect(spec.warnings.isEmpty)
        #expect(spec.messages.map(\.name) == ["ping", "hello", "chat", "welcome", "note", "envelope"])
        #expect(spec.messages.map(\.from) == [.client, .client, .client, .kernel, .app, .bus])
        #expect(spec.messages.map(\.event) == ["ping", "hello", "*", "welcome", "note", nil])
        #expect(spec.messages.map(\.data) == [.none, .object, .any, .object, .any, .object])
        let welcome = try #require(spec.messages.first { $0.name == "welcome" })
        #expect(welcome.line == 75)
        #expect(welcome.fields.map(\.name) == ["id", "nick", "default"])
        #expect(welcome.fields.map(\.type) == [.string, .string, .number])
        #expect(welcome.fields.map(\.isOptional) == [false, true, false])
        #expect(welcome.fields[1].when == "the client has one")
        let envelope = try #require(spec.messages.last)
        #expect(envelope.fields.map(\.values) == [.list(["one", "all"]), nil, .errorMessages])
        #expect(envelope.fields[1].inTypes == ["one"])
        #expect(envelope.fields[1].isOptional)
    }

    @Test func rendersFieldEnumsInWireOrder() throws {
        let text = try #require(Renderer.render(try Self.load(try Self.text())).first {
            $0.path == "Sources/SwitchboardKernel/Generated/MessageShapes.swift"
        }).contents
        #expect(fragment(text, from: "public enum KernelMessage", to: "case .welcome:") == """
            public enum KernelMessage: UInt8, CaseIterable, Sendable {
                /// Sent on hello.
                case welcome = 0

                /// The wire `event`.
                public var event: String {
                    switch self {
                    case .welcome: "welcome"
            """)
        #expect(fragment(text, from: "/// The `data` members of `welcome`", to: "public static let wireOrder") == """
            /// The `data` members of `welcome`, in wire order (spec `messages.welcome`).
            public enum WelcomeField: UInt8, CaseIterable, Sendable {
                /// The client. String. Always written.
                case id = 0
                /// String. Only when the client has one.
                case nick = 1
                /// Number. Always written.
                case `default` = 2

                /// Every member in the order it is written.
                public static let wireOrder: [WelcomeField] = [.id, .nick, .`default`]
            """)
        #expect(fragment(text, from: "public var isOptional", to: "        }") == """
                public var isOptional: Bool {
                    switch self {
                    case .nick: true
                    case .id, .`default`: false
                    }
            """)
        // The bus envelope gets an enum; client and app messages do not.
        #expect(text.contains("public enum EnvelopeField: UInt8, CaseIterable, Sendable {"))
        #expect(text.contains("    /// Array of strings. Only when the sender names clients. Only in envelopes of type one.\n    case to = 1\n"))
        for name in ["PingField", "HelloField", "ChatField", "NoteField"] { #expect(!text.contains(name)) }
    }

    @Test func aReorderedSpecReordersTheWire() throws {
        let swapped = Self.edit(try Self.text(), """
                  id: { type: string, doc: The client. }
                  nick: { type: string, when: the client has one }
            """, """
                  nick: { type: string, when: the client has one }
                  id: { type: string, doc: The client. }
            """)
        let text = try #require(Renderer.render(try Self.load(swapped)).first { $0.path.hasSuffix("/MessageShapes.swift") }).contents
        #expect(text.contains("public static let wireOrder: [WelcomeField] = [.nick, .id, .`default`]"))
        let docs = try #require(Renderer.render(try Self.load(swapped)).first { $0.path == "docs/protocol.md" }).contents
        #expect(docs.contains(#"`{"event": "welcome", "data": {"nick"?, "id", "default"}}`"#))
    }

    @Test func protocolReferenceDescribesEachMessage() throws {
        let docs = try #require(Renderer.render(try Self.load(try Self.text())).first { $0.path == "docs/protocol.md" }).contents
        #expect(fragment(docs, from: "#### `welcome`", to: "| `default`") == """
            #### `welcome`

            `{"event": "welcome", "data": {"id", "nick"?, "default"}}`

            Sent on hello.

            | Member | Type | Present | Meaning |
            |--------|------|---------|---------|
            | `id` | string | always | The client. |
            | `nick` | string | when the client has one |  |
            | `default` | number | always |  |
            """)
        #expect(docs.contains("#### `ping`\n\n`{\"event\": \"ping\"}`\n\nAre you there?\n\nNo `data`.\n"))
        #expect(docs.contains("#### Any other event\n\n`{\"event\": \"<any other name>\", \"data\": <any JSON value>}`\n"))
        #expect(docs.contains("#### `note`\n\n`{\"event\": \"note\", \"data\": <any JSON value>}`\n\nWritten by the application (not the protocol kernel).\n"))
        // The bus envelope has no `channels` section here, so no Redis part; its shape still renders.
        #expect(Renderer.shape(try #require(try Self.load(try Self.text()).messages.last)) == #"{"type", "to"?, "reason"}"#)
        // What each client message does, by state, from the table.
        #expect(docs.contains("| `ping` | `error` \"Bad\" | `error` \"Bad\" |"))
        #expect(docs.contains("| `hello` | calls `greet`, -> `OPEN` | nothing |"))
    }

    static let cases: [(String, String, [String])] = [
        ("    from: app\n", "    from: server\n",
         ["84: error: message 'note' has unknown 'from: server'; fix: use client, kernel, app or bus"]),
        ("    doc: Sent on hello.\n", "    docs: Sent on hello.\n",
         ["78: error: unknown field 'docs' in message 'welcome'; fix: did you mean 'doc'?"]),
        ("  note:\n", "  Note:\n",
         ["83: error: message name 'Note' is not snake_case; fix: use lowercase words joined by '_' (like 'bus_envelope')"]),
        ("    event: welcome\n", "    # no event\n",
         [#"75: error: missing field 'event' in message 'welcome'; fix: add 'event:' with the wire event name ("*" for any other name)"#]),
        ("    from: bus\n", "    from: bus\n    event: relay\n",
         ["89: error: message 'envelope' is the bus envelope and has no event of its own; fix: remove 'event' (the envelope's 'event' member is one of its fields)"]),
        ("    event: note\n", "    event: welcome\n",
         ["85: error: server event 'welcome' is described by both 'welcome' (line 75) and 'note'; fix: keep one of them"]),
        ("    event: note\n", "    event: \"*\"\n",
         [#"85: error: message 'note' has event "*", but only client and kernel messages may stand for any event; fix: write the event name the server sends"#]),
        ("    doc: Sent on hello.\n", "    data: any\n",
         ["78: error: message 'welcome' has fields but 'data: any'; fix: remove 'data' (a message with fields has an object as data)"]),
        ("    from: app\n", "    from: kernel\n",
         ["83: error: message 'note' is written by the kernel but has no fields; fix: list its members under 'fields:' in wire order"]),
        ("      nick:", "      nick-name:",
         ["81: error: field 'nick-name' of message 'welcome' is not a member name of letters and digits; fix: use a name like 'userId' (it becomes a Swift case)"]),
        ("      default:", "      Nick:",
         ["82: error: fields 'nick' (line 81) and 'Nick' both become 'nick' in Swift; fix: rename one of them"]),
        ("      default:", "      wireName:",
         ["82: error: field 'wireName' of message 'welcome' is reserved (a member of the generated WelcomeField); fix: rename it"]),
        ("      id: { type: string,", "      id: { type: text,",
         ["80: error: field 'id' of message 'welcome' has unknown type 'text'; fix: use one of: string, strings, number, bool, object, any"]),
        ("in_types: [one]", "in_types: [ones]",
         ["91: error: field 'to' of message 'envelope' is only in envelopes of type 'ones', which 'type' does not list; fix: did you mean 'one'?"]),
        ("values: [one, all]", "values: one", [
            "90: error: 'values' of field 'type' of message 'envelope' must be a list or 'errors', not 'one'; fix: write 'values: [a, b]', or 'values: errors' for the messages of the errors section",
            "91: error: field 'to' of message 'envelope' has 'in_types' but message 'envelope' has no 'type' field with values; fix: add a 'type' field with 'values: [...]' before it, or remove 'in_types'",
        ]),
        ("reason: { type: string, values: errors }", "reason: { type: number, values: errors }",
         ["92: error: field 'reason' of message 'envelope' takes the messages of 'errors' but is number; fix: make it 'type: string'"]),
        ("    event: hello\n", "    event: hullo\n",
         ["9: error: input 'hello' is selected by event 'hello', but no client message describes it; fix: add a 'messages' entry with 'from: client' and 'event: hello' (section at line 60)"]),
    ]

    @Test(arguments: 0..<cases.count)
    func diagnostics(_ index: Int) throws {
        let (old, new, expected) = Self.cases[index]
        let text = Self.edit(try Self.text(), old, new)
        let found = SpecLoader.analyze(bytes: Array(text.utf8), file: "messages.yaml").1.map(\.description)
        #expect(found == expected.map { "messages.yaml:\($0)" })
        #expect(throws: SpecDiagnostics.self) { try Self.load(text) }
    }

    /// `switchboard-gen check` covers docs/protocol.md: a hand edit, or a spec change that alters
    /// the reference, is reported until `generate` runs.
    @Test func checkReportsAStaleProtocolReference() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-gen-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let files = Renderer.render(try Self.load(try Self.text()))
        try GeneratedOutput.write(files, root: root.path)
        #expect(GeneratedOutput.compare(files, root: root.path).isEmpty)

        // A hand edit.
        let path = root.appendingPathComponent("docs/protocol.md")
        let text = try String(contentsOf: path, encoding: .utf8)
        try Self.edit(text, "Sent on hello.", "Sent after hello.").write(to: path, atomically: true, encoding: .utf8)
        let differences = GeneratedOutput.compare(files, root: root.path)
        #expect(differences.map(\.path) == ["docs/protocol.md"])
        #expect(differences.first?.detail.hasPrefix("docs/protocol.md: would change\n") == true)
        #expect(differences.first?.detail.contains("- Sent after hello.\n+ Sent on hello.") == true)
        try text.write(to: path, atomically: true, encoding: .utf8)

        // A spec change that shows in the reference.
        let changed = Renderer.render(try Self.load(Self.edit(try Self.text(), "    doc: Sent on hello.\n", "    doc: Sent after hello.\n")))
        #expect(GeneratedOutput.compare(changed, root: root.path).map(\.path).contains("docs/protocol.md"))
    }

    @Test func theRealSpecDescribesTheKernelsMessages() throws {
        let spec = try loadRealSpec()
        func fields(_ name: String) -> [String]? { spec.messages.first { $0.name == name }?.fields.map(\.name) }
        #expect(fields("connected") == ["id", "userId", "time", "serverPublicKey", "salt"])
        #expect(fields("error") == ["message"])
        // The original's members, then the two a room with history adds (issue 19), which an
        // original instance ignores.
        #expect(fields("bus_envelope") == ["serverId", "type", "target", "event", "data", "exclude", "offset", "epoch"])
        // Every client event an input selects is described (the validator's rule, on the real spec).
        let described = Set(spec.messages.filter { $0.from == .client }.compactMap(\.event))
        #expect(spec.inputs.compactMap(\.event).allSatisfy(described.contains))
    }
}
