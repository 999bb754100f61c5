import Testing
@testable import SwitchboardGen

/// A tiny spec (Specs/base.yaml) and the Swift it renders, one feature at a time.
@Suite struct SnippetTests {
    func rendered(_ name: String) throws -> String {
        let files = Renderer.render(try loadSpec("base.yaml"))
        return try #require(files.first { $0.path.hasSuffix("/" + name) || $0.path == name }).contents
    }

    @Test func transitionRows() throws {
        let text = try rendered("Transitions.swift")
        let expected = #"""
                // MARK: open
                // spec/protocol.yaml:25 open × ping
                TransitionRow(.`open`, .ping, required: [], forbidden: [], next: .`open`, [.touch, .sendError(.bad)], line: 25),
                // spec/protocol.yaml:34 open × hello
                TransitionRow(.`open`, .hello, required: [], forbidden: [], next: .`open`, [.log("said \"hello\" twice")], line: 34),
                // spec/protocol.yaml:38 open × ready when fresh
                TransitionRow(.`open`, .ready, required: [.fresh], forbidden: [], next: .`open`, [.cancelTimer(.wait)], line: 38),
                // spec/protocol.yaml:43 open × ready when not fresh
                TransitionRow(.`open`, .ready, required: [], forbidden: [.fresh], next: .`open`, [.ignore], line: 43),
                // spec/protocol.yaml:52 open × gone
                TransitionRow(.`open`, .gone, required: [], forbidden: [], next: .closed, [.close(.bye), .release], line: 52),
        """#
        #expect(fragment(text, from: "// MARK: open", to: "line: 52),") == expected)
    }

    @Test func starsExpandToNonTerminalStatesAndEveryInput() throws {
        let spec = try loadSpec("base.yaml")
        // `from: "*"` (line 25) skips the terminal state; `on: "*"` (line 57) covers every input.
        #expect(spec.rows.filter { $0.line == 25 }.map(\.state) == ["idle", "open"])
        #expect(spec.rows.filter { $0.line == 57 }.map(\.input) == ["ping", "hello", "ready", "gone"])
        // Rows are grouped by cell (state order, then input order), spec order within a cell.
        #expect(spec.rows.map(\.line) == [25, 29, 48, 52, 25, 34, 38, 43, 52, 57, 57, 57, 57])
    }

    @Test func cellStart() throws {
        let text = try rendered("Transitions.swift")
        #expect(fragment(text, from: "public static let cellStart", to: "    ]") == """
                public static let cellStart: [UInt16] = [
                    0, 1, 2, 3, // idle
                    4, 5, 6, 8, // open
                    9, 10, 11, 12, // closed
                    13,
                ]
            """)
    }

    @Test func states() throws {
        let text = try rendered("States.swift")
        #expect(fragment(text, from: "public enum ClientState", to: "public var isTerminal") == """
            public enum ClientState: UInt8, CaseIterable, Sendable {
                /// Connected.
                case idle = 0
                case `open` = 1
                case closed = 2

                /// The state of a newly connected client.
                public static let initial: ClientState = .idle

                /// Whether the state absorbs every input (the client is gone).
                public var isTerminal: Bool {
            """)
        #expect(fragment(text, from: "switch self {", to: "}") == """
                    switch self {
                    case .closed: true
                    case .idle, .`open`: false
                    }
            """)
        #expect(text.contains("        case .`open`: \"OPEN\"\n"))
    }

    @Test func inputsAndClientEvents() throws {
        let text = try rendered("Inputs.swift")
        #expect(text.contains("""
                    case .ping, .hello: .client
                    case .ready: .hook
                    case .gone: .timer
                    }
            """))
        // Grouped by UTF-8 length: a custom event is compared with the names of its length only.
        #expect(text.contains("""
                public static func clientEvent(_ name: String) -> InputKind? {
                    switch name.utf8.count {
                    case 4:
                        switch name {
                        case "ping": return .ping
                        default: return nil
                        }
                    case 5:
                        switch name {
                        case "hello": return .hello
                        default: return nil
                        }
                    default: return nil
                    }
                }
            """))
    }

    @Test func timersAndDefaults() throws {
        #expect(try rendered("Timers.swift").contains("        case .wait: settings.waitMs * 2\n"))
        #expect(try rendered("Defaults.swift").contains("    public static let waitMs: Int64 = 100\n"))
        #expect(try rendered("Guards.swift").contains("    public static let fresh: GuardSet = GuardSet(Guard.fresh)\n"))
    }

    @Test func emptySectionsStillCompile() throws {
        // An enum without cases cannot declare a raw type: empty sections get a manual conformance.
        #expect(fragment(try rendered("Messages.swift"), from: "public enum HTTPAnswer", to: "rawValue: UInt8 {") == """
            public enum HTTPAnswer: RawRepresentable, CaseIterable, Sendable {
                public init?(rawValue: UInt8) { nil }
                public var rawValue: UInt8 { switch self {} }
            """)
    }

    @Test func closeCodes() throws {
        let text = try rendered("Messages.swift")
        #expect(text.contains("    /// 4000 \"Bye\", reconnect: no.\n    case bye = 0\n"))
        #expect(text.contains("        case .bye: 4000\n"))
        #expect(text.contains("        case .bye: .no\n"))
        #expect(text.contains("        case .bye: .kernel\n"))
    }

    @Test func errorsDocAndDiagram() throws {
        let docs = try rendered("docs/errors.md")
        #expect(docs.contains("| `\"Bad\"` | Client sent bad data | `error` event |\n| Close `4000` | Client left | close `4000` only |\n"))
        #expect(docs.contains("| `idle` | `gone` |  |  | `4000` | `closed` | spec/protocol.yaml:52 |\n"))
        let diagram = try rendered("docs/states.mmd")
        #expect(diagram.hasPrefix("stateDiagram-v2\n    %% Generated by switchboard-gen"))
        #expect(diagram.hasSuffix("""
                [*] --> idle
                idle --> open: hello
                idle --> closed: gone
                open --> closed: gone
                closed --> [*]

            """))
    }

    @Test func tableText() throws {
        let text = Renderer.tableText(try loadSpec("base.yaml"))
        let lines = text.split(separator: "\n")
        #expect(lines.first == "LINE  STATE   INPUT  WHEN       NEXT    EFFECTS")
        #expect(lines.contains("34    open    hello  -          =       log: \"said \\\"hello\\\" twice\""))
        #expect(lines.contains("43    open    ready  not fresh  =       ignore"))
    }
}
