import Testing
@testable import SwitchboardGen

/// One invalid spec per validation rule (Specs/*.yaml, most are base.yaml with one change) and
/// the exact diagnostics it must produce, sorted by line.
struct DiagnosticCase: Sendable, CustomTestStringConvertible {
    let spec: String
    let expected: [String]
    var testDescription: String { spec }

    init(_ spec: String, _ expected: [String]) {
        self.spec = spec
        self.expected = expected.map { "\(spec):\($0)" }
    }
}

@Suite struct DiagnosticTests {
    static let cases: [DiagnosticCase] = [
        // Parse.
        DiagnosticCase("syntax-error.yaml", [
            "4: error: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 4); fix: correct the YAML near line 4 (indentation, quotes, ':' inside plain text)",
        ]),
        DiagnosticCase("duplicate-key.yaml", [
            "11: error: duplicate key 'hello' (first at line 9); fix: remove or rename one of the two",
        ]),
        DiagnosticCase("alias.yaml", [
            "2: error: aliases are not supported; fix: write the value out instead of '*alias'",
        ]),
        // Model: sections, fields, kinds and value types.
        DiagnosticCase("unknown-section.yaml", [
            "22: error: unknown section 'rom'; fix: did you mean 'rooms'?",
        ]),
        DiagnosticCase("missing-section.yaml", [
            "1: error: missing section 'protocol'; fix: add a 'protocol:' section",
        ]),
        DiagnosticCase("unknown-field.yaml", [
            "5: error: unknown field 'docs' in state 'open'; fix: did you mean 'doc'?",
        ]),
        DiagnosticCase("missing-field.yaml", [
            "5: error: missing field 'wire' in state 'open'; fix: add 'wire:' to it",
        ]),
        DiagnosticCase("wrong-kind.yaml", [
            "4: error: field 'wire' of state 'idle' must be a scalar, not a sequence; fix: write a single value (quote text that contains ': ' or starts with a symbol)",
            "21: error: field 'triggers' of close code 'bye' must be a sequence, not a scalar; fix: write a list: [a, b] or one '- item' per line",
        ]),
        DiagnosticCase("wrong-bool.yaml", [
            "3: error: no initial state; fix: add 'initial: true' to the state of a newly connected client",
            "4: error: field 'initial' of state 'idle' must be true or false, not 'yes'; fix: write true or false without quotes",
        ]),
        DiagnosticCase("bad-group.yaml", [
            "11: error: input 'gone' has unknown group 'timre'; fix: did you mean 'timer'?",
            "17: error: timer 'wait' fires 'gone', an input of group 'client'; fix: fire an input of group timer (or set 'group: timer' on 'gone', line 11)",
        ]),
        DiagnosticCase("names.yaml", [
            "19: error: error name 'Bad' is not snake_case; fix: use lowercase words joined by '_' (like 'auth_timeout')",
            "21: error: close code name 'code' is reserved (a member of the generated CloseCode); fix: rename it",
            "25: error: default names 'v_2' (line 24) and 'v2' both become 'v2' in Swift; fix: rename one of them",
        ]),
        DiagnosticCase("events.yaml", [
            "9: error: event 'ping' selects both 'ping' (line 8) and 'hello'; fix: give each client input its own event",
            "10: error: input 'ready' has an 'event' but is in group 'hook'; fix: remove 'event' (only client inputs are selected by wire events)",
        ]),
        // Unknown references.
        DiagnosticCase("unknown-state.yaml", [
            "5: error: state 'open' is unreachable from the initial state 'idle'; fix: add a row with 'to: open', or remove the state",
            "31: error: unknown state 'opn' in 'to'; fix: did you mean 'open'?",
        ]),
        DiagnosticCase("unknown-input.yaml", [
            "49: error: unknown input 'redy' in 'on'; fix: did you mean 'ready'?",
        ]),
        DiagnosticCase("unknown-guard.yaml", [
            "40: error: unknown guard 'frsh' in 'when'; fix: did you mean 'fresh'?",
        ]),
        DiagnosticCase("unknown-error.yaml", [
            "19: error: error 'bad' is never sent; fix: use 'send_error: bad' in a row, or remove it",
            "27: error: unknown error 'bda' in 'send_error'; fix: did you mean 'bad'?",
        ]),
        DiagnosticCase("unknown-close-code.yaml", [
            "21: error: close code 'bye' is never used; fix: use 'close: bye' in a row, mark it 'origin: codec', or remove it",
            "55: error: unknown close code 'by' in 'close'; fix: did you mean 'bye'?",
        ]),
        DiagnosticCase("unknown-timer.yaml", [
            "32: error: unknown timer 'wiat' in 'arm_timer'; fix: did you mean 'wait'?",
        ]),
        DiagnosticCase("unknown-hook.yaml", [
            "15: error: hook 'greet' is never called; fix: use 'call: greet' in a row, or remove it",
            "32: error: unknown hook 'gret' in 'call'; fix: did you mean 'greet'?",
        ]),
        DiagnosticCase("unknown-effect.yaml", [
            "27: error: unknown effect 'tuch'; fix: did you mean 'touch'?",
        ]),
        DiagnosticCase("effect-arguments.yaml", [
            "19: error: error 'bad' is never sent; fix: use 'send_error: bad' in a row, or remove it",
            "28: error: effect 'touch' takes no argument; fix: write 'touch'",
            "29: error: effect 'send_error' needs an error; fix: write 'send_error: ERROR'",
        ]),
        DiagnosticCase("ignore-mixed.yaml", [
            "50: error: 'ignore' with other effects; fix: drop 'ignore' (it means the row does nothing)",
        ]),
        // States.
        DiagnosticCase("no-initial.yaml", [
            "3: error: no initial state; fix: add 'initial: true' to the state of a newly connected client",
        ]),
        DiagnosticCase("two-initial.yaml", [
            "5: error: state 'open' is initial, and so is 'idle' (line 4); fix: keep 'initial: true' on exactly one state",
        ]),
        DiagnosticCase("no-terminal.yaml", [
            "3: error: no terminal state; fix: add 'terminal: true' to the state that absorbs closed clients",
        ]),
        DiagnosticCase("unreachable.yaml", [
            "6: error: state 'limbo' is unreachable from the initial state 'idle'; fix: add a row with 'to: limbo', or remove the state",
        ]),
        // Cells.
        DiagnosticCase("duplicate-row.yaml", [
            "48: error: duplicate row: open × ready when not fresh is also at line 43; fix: remove one of the two",
        ]),
        DiagnosticCase("conflict.yaml", [
            "48: error: rows at lines 38 and 48 both match open × ready when fresh; fix: make their 'when' exclusive (add 'not GUARD' to one of them)",
            "48: error: rows at lines 43 and 48 both match open × ready when not fresh; fix: make their 'when' exclusive (add 'not GUARD' to one of them)",
        ]),
        DiagnosticCase("missing-row.yaml", [
            "24: error: input 'ready' is not handled in state 'idle'; fix: add a row 'from: idle, on: ready'",
            "38: error: input 'ready' is not handled in state 'open' when not fresh; fix: add a row 'from: open, on: ready, when: [not fresh]'",
        ]),
        DiagnosticCase("contradiction.yaml", [
            "50: error: 'when' has both 'fresh' and 'not fresh'; fix: remove one of them (as written the row never matches)",
            "53: error: input 'ready' is not handled in state 'idle' when fresh; fix: add a row 'from: idle, on: ready, when: [fresh]'",
        ]),
        // The terminal state and release.
        DiagnosticCase("terminal-acts.yaml", [
            "61: error: terminal state 'closed' must only ignore inputs, but this row does 'touch'; fix: use 'do: [ignore]' (a terminal state absorbs every input)",
            "63: error: row leaves terminal state 'closed' for 'open'; fix: remove 'to' (a terminal state absorbs every input)",
        ]),
        DiagnosticCase("initial-terminal.yaml", [
            "4: error: initial state 'idle' is terminal; fix: a new client must be able to do something: remove 'terminal: true' or 'initial: true'",
            "24: error: input 'ping' is not handled in state 'idle'; fix: add a row 'from: idle, on: ping'",
            "24: error: input 'gone' is not handled in state 'idle'; fix: add a row 'from: idle, on: gone'",
            "29: error: terminal state 'idle' must only ignore inputs, but this row does 'arm_timer: wait'; fix: use 'do: [ignore]' (a terminal state absorbs every input)",
            "31: error: row leaves terminal state 'idle' for 'open'; fix: remove 'to' (a terminal state absorbs every input)",
        ]),
        DiagnosticCase("no-release.yaml", [
            "52: error: row enters terminal state 'closed' without 'release'; fix: add 'release' to its effects",
        ]),
        DiagnosticCase("stray-release.yaml", [
            "36: error: 'release' outside a transition into a terminal state; fix: remove it, or set 'to' to a terminal state",
        ]),
        // Unused definitions (a codec close code needs no row).
        DiagnosticCase("unused.yaml", [
            "14: error: guard 'stale' is never tested; fix: use it in a row's 'when', or remove it",
            "17: error: hook 'wave' is never called; fix: use 'call: wave' in a row, or remove it",
            "20: error: missing field 'fires' in timer 'nap'; fix: add 'fires:' to it",
            "20: error: timer 'nap' is never armed or cancelled; fix: use 'arm_timer: nap' in a row, or remove it",
            "23: error: error 'worse' is never sent; fix: use 'send_error: worse' in a row, or remove it",
            "26: error: close code 'later' is never used; fix: use 'close: later' in a row, mark it 'origin: codec', or remove it",
        ]),
        // Values.
        DiagnosticCase("close-numbers.yaml", [
            "22: error: close code 'low' has number 999, outside 1000-4999; fix: use 4000-4999 for application codes (1000-2999 are RFC 6455's)",
            "23: error: close code 'high' has number 5000, outside 1000-4999; fix: use 4000-4999 for application codes (1000-2999 are RFC 6455's)",
            "24: error: close code 'reserved' has number 1006, which RFC 6455 reserves (never sent in a close frame); fix: use another code (4000-4999 for application codes)",
            "25: error: close code 'again' reuses 4000 of 'bye' (line 21); fix: give each close code its own number",
        ]),
        DiagnosticCase("reconnect.yaml", [
            "21: error: close code 'bye' has reconnect 'maybe'; fix: use \"yes\", \"no\" or with_new_token",
        ]),
        DiagnosticCase("default-types.yaml", [
            "24: error: default 'quoted' is ms, but its value '100' is not a non-negative integer; fix: write a number of milliseconds (0 or more) without quotes",
            "25: error: default 'negative' is ms, but its value '-1' is not a non-negative integer; fix: write a number of milliseconds (0 or more) without quotes",
            "26: error: default 'flag' is bool, but its value '5' is not true or false; fix: write true or false without quotes",
            "27: error: default 'name' is string, but its value '12' is not text; fix: quote it: \"12\"",
            "28: error: default 'list' is strings, but its value 'one' is not a list of texts; fix: write a list of texts: [a, b]",
            "29: error: default 'count' has unknown type 'integer'; fix: use one of: string, strings, int, ms, bool",
        ]),
        DiagnosticCase("timer-after.yaml", [
            "17: error: timer 'wait' waits 'wait_m', which is not a default; fix: did you mean 'wait_ms'?",
            "18: error: missing field 'fires' in timer 'nap'; fix: add 'fires:' to it",
            "18: error: timer 'nap' waits 'path', a default of type string; fix: name a default of type ms",
        ]),
        DiagnosticCase("timer-until.yaml", [
            "21: error: timer 'wait' has both 'after' and 'until'; fix: give it 'after: DEFAULT' (a duration) or, for a client timer, 'until: INSTANT' (expires_at)",
            "22: error: timer 'nap' runs until 'expiry', which is not a client instant; fix: use one of expires_at",
            "23: error: timer 'doze' has neither 'after' nor 'until'; fix: give it 'after: DEFAULT' (a duration) or, for a client timer, 'until: INSTANT' (expires_at)",
            "24: error: server timer 'beat' runs until 'expires_at'; fix: a server timer runs for 'after: DEFAULT'; 'until' is per client",
            "25: error: timer 'span' runs until 'expires_at' with 'times'; fix: remove 'times': it multiplies an 'after' duration only",
        ]),
        // Timers, limits, guards, delivery rows, closes and channels.
        DiagnosticCase("timer-fires.yaml", [
            "11: error: input 'gone' is in group timer, but no timer fires it; fix: add 'fires: gone' to a timer, or move the input to another group",
            "17: error: timer 'wait' fires 'hello', an input of group 'client'; fix: fire an input of group timer (or set 'group: timer' on 'hello', line 9)",
        ]),
        DiagnosticCase("effect-argument-kind.yaml", [
            "21: error: close code 'bye' is never used; fix: use 'close: bye' in a row, mark it 'origin: codec', or remove it",
            "41: error: unknown effect 'cancel_timer'; fix: declare it under 'effects:' (and implement it in Kernel.run)",
            "55: error: effect 'close' takes no argument; fix: write 'close'",
            "65: error: effect 'close' takes no argument, but the kernel's 'close' takes a close code; fix: write 'argument: close_code'",
            "69: error: effect 'wave' has argument 'texts'; fix: did you mean 'text'?",
            "70: error: effect 'shout' sends 'greeting', which is not under 'messages:'; fix: describe 'greeting' under 'messages:', or name a message described there",
            "71: error: effect 'whisper' says who gets what it sends ('to'), but sends nothing; fix: add 'sends: [MESSAGE]' or remove 'to'",
            "72: error: effect 'murmur' sends to 'everyone'; fix: use client or room",
            "72: error: effect 'murmur' sends 'greeting', which is not under 'messages:'; fix: describe 'greeting' under 'messages:', or name a message described there",
        ]),
        DiagnosticCase("hook-raises.yaml", [
            "10: error: input 'ready' is in group hook, but no hook raises it; fix: add it to a hook's 'answers' or 'on_throw', or move it to another group",
            "15: error: hook 'greet' raises 'hello', an input of group 'client'; fix: raise an input of group hook",
        ]),
        DiagnosticCase("limits.yaml", [
            "61: error: limit 'flood' reads its maximum from 'wait_ms', a default of type ms; fix: name a default of type int (0 turns the limit off)",
            "61: error: limit 'flood' counts in terminal state 'closed'; fix: remove it (a terminal state receives no messages)",
            "61: error: limit 'flood' raises 'hello', which is not a client input without an event; fix: raise a client input with no 'event' (line 9)",
        ]),
        DiagnosticCase("guard-holds-for.yaml", [
            "40: error: guard 'fresh' cannot hold for input 'ready' (it holds for 'hello'); fix: remove 'fresh' from 'when', or add 'ready' to its 'holds_for' (line 13)",
        ]),
        DiagnosticCase("delivery-rows.yaml", [
            "54: error: delivery input 'post' does 'touch'; fix: a delivery row does 'deliver', 'ignore' or 'log' only (state changes belong to other inputs)",
            "56: error: delivery input 'post' changes the state to 'open'; fix: remove 'to' (a delivery never changes the client's state)",
            "59: error: 'deliver' on input 'hello', which is not in group delivery; fix: use 'deliver' only in rows of delivery inputs",
        ]),
        DiagnosticCase("close-stays.yaml", [
            "36: error: row closes the connection but stays in its state; fix: set 'to' to a terminal state (and add 'release')",
        ]),
        DiagnosticCase("codec-close.yaml", [
            "55: error: close code 'bye' (4000) is raised by the codec, not by rows; fix: close with a kernel code (or remove 'origin: codec' from 'bye', line 21)",
        ]),
        DiagnosticCase("channels-uncovered.yaml", [
            "61: error: channel 'broadcast' (\"b\") is covered by no subscription; fix: add \"b\" to 'subscribe'",
            "64: error: channel 'user' (\"u:{userId}\") is covered by no subscription; fix: add a pattern like \"u:*\" to 'psubscribe'",
        ]),
        // Presence: room changes are announced; the presence keys are templates too.
        DiagnosticCase("presence.yaml", [
            "55: error: 'release' changes rooms but no 'announce_presence' follows it; fix: add 'announce_presence' after it (presence_join/presence_leave and the presence store follow room changes)",
            "79: error: channel 'presence_room' is not a template with one '{name}' placeholder; fix: write it like \"prefix:{presence_room}\"",
        ]),
    ]

    @Test(arguments: cases)
    func diagnostics(_ testCase: DiagnosticCase) throws {
        #expect(try GeneratorTests.diagnostics(testCase.spec) == testCase.expected)
        // Errors make loading fail with the same list.
        let bytes = try specBytes(testCase.spec)
        #expect(throws: SpecDiagnostics.self) { try SpecLoader.load(bytes: bytes, file: testCase.spec) }
    }

    @Test func everySpecInTheFolderIsCovered() throws {
        let folder = try specURL("")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }
        let covered = Set(Self.cases.map(\.spec) + ["base.yaml"])
        #expect(Set(names) == covered)
    }

    @Test func baseSpecIsValid() throws {
        #expect(try GeneratorTests.diagnostics("base.yaml").isEmpty)
    }

    @Test func warningsDoNotFailLoading() throws {
        var text = String(decoding: try specBytes("base.yaml"), as: UTF8.self)
        text = text.replacingOccurrences(of: "    when: [fresh]\n", with: "    when: [fresh, fresh]\n")
        text = text.replacingOccurrences(of: "  - from: idle\n    on: ready\n", with: "  - from: [idle, idle]\n    on: ready\n")
        let spec = try SpecLoader.load(bytes: Array(text.utf8), file: "w.yaml")
        #expect(spec.warnings.map(\.description) == [
            "w.yaml:40: warning: 'fresh' is listed twice in 'when'; fix: remove the repetition",
            "w.yaml:48: warning: 'idle' is listed twice in 'from' (line 48); fix: remove the repetition",
        ])
    }

    @Test func atMost32Guards() throws {
        // GuardSet is a UInt32: a 33rd guard is refused at its own line.
        var text = String(decoding: try specBytes("base.yaml"), as: UTF8.self)
        let extra = (1...32).map { "  g\($0):\n" }.joined()
        text = text.replacingOccurrences(of: "hooks:\n", with: extra + "hooks:\n")
        let diagnostics = SpecLoader.analyze(bytes: Array(text.utf8), file: "g.yaml").1.map(\.description)
        #expect(diagnostics.contains("g.yaml:45: error: more than 32 guards; fix: merge some (Guard has at most 32 cases)"))
        #expect(diagnostics.count == 1 + 32) // and the 32 extra guards are never tested
    }

    @Test func diagnosticsAreSortedByLine() {
        var sink = DiagnosticSink(file: "f.yaml")
        sink.error(9, "b", fix: "x")
        sink.warning(2, "a", fix: "y")
        sink.error(9, "c", fix: "z")
        #expect(sink.sorted.map(\.description) == [
            "f.yaml:2: warning: a; fix: y", "f.yaml:9: error: b; fix: x", "f.yaml:9: error: c; fix: z",
        ])
    }
}

import Foundation

/// `connection.shutdown_order` names each step of the engine's shutdown once.
@Suite struct ShutdownOrderTests {
    static func diagnostics(order: String) throws -> [String] {
        let path = repoRoot.appendingPathComponent("spec/protocol.yaml").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let edited = text.replacingOccurrences(of: "shutdown_order: [stop_accepting, shut_down_clients, answer_pending_requests]",
                                               with: "shutdown_order: \(order)")
        #expect(edited != text, "the spec's shutdown_order line moved")
        return SpecLoader.analyze(bytes: Array(edited.utf8), file: "spec.yaml").1.map(\.message)
    }

    @Test func reorderedStepsAreValid() throws {
        #expect(try Self.diagnostics(order: "[shut_down_clients, stop_accepting, answer_pending_requests]").isEmpty)
    }

    @Test func unknownMissingAndRepeatedStepsAreErrors() throws {
        #expect(try Self.diagnostics(order: "[stop_acepting, shut_down_clients, answer_pending_requests]")
            == ["'shutdown_order' has unknown step 'stop_acepting'"])
        #expect(try Self.diagnostics(order: "[stop_accepting, stop_accepting, answer_pending_requests]")
            == ["'shutdown_order' must list each step once; not so for stop_accepting, shut_down_clients"])
    }
}
