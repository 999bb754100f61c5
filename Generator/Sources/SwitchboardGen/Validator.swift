/// The validate stage: references, the shape of the state machine, and the table's cells
/// (every guard valuation of every (state, input) matched by exactly one row).
public enum Validator {
    /// Every problem of a modelled spec, sorted by line.
    public static func validate(_ spec: ProtocolSpec) -> [Diagnostic] {
        DiagnosticSink.sort(check(spec).diagnostics)
    }

    /// The expanded table and the problems found while building and checking it.
    public static func check(_ spec: ProtocolSpec) -> (rows: [TableRow], diagnostics: [Diagnostic]) {
        var run = ValidationRun(spec: spec, sink: DiagnosticSink(file: spec.file))
        run.names()
        run.states()
        run.inputs()
        run.effects()
        run.guards()
        run.hooks()
        run.timers()
        run.limits()
        run.closeCodes()
        run.http()
        run.connection()
        run.channels()
        let rows = run.expand()
        run.cells(rows)
        run.reachability(rows)
        run.deliveries(rows)
        run.unused()
        return (rows, run.sink.items)
    }

    /// Guards per cell beyond which valuations are not enumerated.
    static let maxGuardsPerCell = 16
}

/// One validation of one spec: the checks here and in ValidatorSections.swift, in `check`'s order.
struct ValidationRun {
    let spec: ProtocolSpec
    var sink: DiagnosticSink
    /// (state, input) cells with a row whose guards could not be resolved.
    var brokenCells: Set<[Int]> = []
    var used: [String: Set<String>] = [:]

    init(spec: ProtocolSpec, sink: DiagnosticSink) {
        self.spec = spec
        self.sink = sink
    }

    var transitionsLine: Int { spec.sectionLines["transitions"] ?? 1 }

    // MARK: - Names

    mutating func names() {
        let common: Set<String> = ["init", "self", "super", "type", "all_cases", "raw_value", "hash_value", "spec_name"]
        func check(_ kind: String, _ typeName: String, _ entries: [(String, Int)], limit: Int = 256,
                   reserved: Set<String> = []) {
            var camel: [String: (String, Int)] = [:]
            for (name, line) in entries {
                if !Names.isSnakeCase(name) {
                    sink.error(line, "\(kind) name '\(name)' is not snake_case",
                               fix: "use lowercase words joined by '_' (like 'auth_timeout')")
                    continue
                }
                if common.contains(name) || reserved.contains(name) {
                    sink.error(line, "\(kind) name '\(name)' is reserved (a member of the generated \(typeName))",
                               fix: "rename it")
                    continue
                }
                let swift = Names.lowerCamel(name)
                if let (other, otherLine) = camel[swift] {
                    sink.error(line, "\(kind) names '\(other)' (line \(otherLine)) and '\(name)' both become '\(swift)' in Swift",
                               fix: "rename one of them")
                }
                camel[swift] = (name, line)
            }
            if entries.count > limit {
                sink.error(entries[limit].1, "more than \(limit) \(kind)s", fix: "merge some (\(typeName) has at most \(limit) cases)")
            }
        }
        check("state", "ClientState", spec.states.map { ($0.name, $0.line) }, reserved: ["initial", "is_terminal", "wire_name"])
        check("input", "InputKind", spec.inputs.map { ($0.name, $0.line) }, reserved: ["group", "client_event"])
        check("guard", "Guard", spec.guards.map { ($0.name, $0.line) }, limit: 32, reserved: [
            "contains", "insert", "remove", "update", "union", "intersection", "symmetric_difference", "subtracting",
            "subtract", "is_subset", "is_superset", "is_disjoint", "is_strict_subset", "is_strict_superset", "is_empty",
            "form_union", "form_intersection", "form_symmetric_difference", "element", "array_literal_element",
        ])
        check("hook", "Hook", spec.hooks.map { ($0.name, $0.line) }, reserved: ["throw_input"])
        check("timer", "TimerKind", spec.timers.map { ($0.name, $0.line) }, reserved: ["duration", "fired_input", "period", "until"])
        check("limit", "MessageLimit", spec.limits.map { ($0.name, $0.line) }, reserved: ["maximum", "counts", "raises"])
        check("error", "ErrorMessage", spec.errors.map { ($0.name, $0.line) }, reserved: ["text"])
        check("close code", "CloseCode", spec.closeCodes.map { ($0.name, $0.line) },
              reserved: ["code", "reason", "reconnect", "origin"])
        check("startup error", "StartupErrorMessage", spec.startupErrors.map { ($0.name, $0.line) }, reserved: ["text"])
        check("http answer", "HTTPAnswer", spec.http.map { ($0.name, $0.line) }, reserved: ["status", "body"])
        check("default", "ProtocolDefaults", spec.defaults.map { ($0.name, $0.line) }, limit: Int.max)
    }

    // MARK: - Sections

    mutating func states() {
        let statesLine = spec.sectionLines["states"] ?? 1
        let initial = spec.states.filter(\.initial)
        if spec.states.isEmpty { return sink.error(statesLine, "no states", fix: "define the client states under 'states:'") }
        if initial.isEmpty {
            sink.error(statesLine, "no initial state", fix: "add 'initial: true' to the state of a newly connected client")
        }
        for extra in initial.dropFirst() {
            sink.error(extra.line, "state '\(extra.name)' is initial, and so is '\(initial[0].name)' (line \(initial[0].line))",
                       fix: "keep 'initial: true' on exactly one state")
        }
        if !spec.states.contains(where: \.terminal) {
            sink.error(statesLine, "no terminal state", fix: "add 'terminal: true' to the state that absorbs closed clients")
        }
        for state in initial where state.terminal {
            sink.error(state.line, "initial state '\(state.name)' is terminal",
                       fix: "a new client must be able to do something: remove 'terminal: true' or 'initial: true'")
        }
    }

    mutating func inputs() {
        // Without a delivery input no client receives messages (a valid, if quiet, protocol).
        let deliveries = spec.inputs.filter { $0.group == .delivery }
        for extra in deliveries.dropFirst() {
            sink.error(extra.line, "input '\(extra.name)' is a second delivery input ('\(deliveries[0].name)', line \(deliveries[0].line))",
                       fix: "keep one input of group delivery")
        }
        var events: [String: InputSpec] = [:]
        for input in spec.inputs {
            guard let event = input.event else { continue }
            if input.group != .client {
                sink.error(input.eventLine, "input '\(input.name)' has an 'event' but is in group '\(input.group.rawValue)'",
                           fix: "remove 'event' (only client inputs are selected by wire events)")
            } else if event.isEmpty {
                sink.error(input.eventLine, "input '\(input.name)' has an empty 'event'", fix: "name the wire event")
            } else if let other = events[event] {
                sink.error(input.eventLine, "event '\(event)' selects both '\(other.name)' (line \(other.line)) and '\(input.name)'",
                           fix: "give each client input its own event")
            } else {
                events[event] = input
            }
        }
    }

    // MARK: - Transitions

    func names(of selector: Selector, kind: String) -> [SpecName] {
        switch selector {
        case .all(let line):
            if kind == "state" { return spec.states.filter { !$0.terminal }.map { SpecName(name: $0.name, line: line) } }
            return spec.inputs.map { SpecName(name: $0.name, line: line) }
        case .names(let names):
            return names
        }
    }

    mutating func reference(_ name: String, line: Int, kind: String, section: String, known: [String],
                                    context: String) -> Bool {
        if known.contains(name) { return true }
        sink.error(line, "unknown \(kind) '\(name)'\(context)",
                   fix: Names.hint(for: name, among: known, otherwise: known.isEmpty
                       ? "define it under '\(section):'"
                       : "define it under '\(section):' (known: \(known.joined(separator: ", ")))"))
        return false
    }

    /// Resolves every transition item and expands it into rows, grouped by cell.
    mutating func expand() -> [TableRow] {
        let stateNames = spec.states.map(\.name)
        let inputNames = spec.inputs.map(\.name)
        let guardNames = spec.guards.map(\.name)
        let stateIndex = Dictionary(stateNames.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let inputIndex = Dictionary(inputNames.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let terminal = Set(spec.states.filter(\.terminal).map(\.name))
        var rows: [(cell: [Int], row: TableRow)] = []

        for item in spec.transitions {
            // Guards.
            var guardsOK = true
            for literal in item.when {
                used["guard", default: []].insert(literal.name)
                if !reference(literal.name, line: item.whenLine, kind: "guard", section: "guards", known: guardNames,
                              context: " in 'when'") { guardsOK = false }
            }
            for literal in item.when where !literal.negated && item.when.contains(GuardLiteral(name: literal.name, negated: true)) {
                sink.error(item.whenLine, "'when' has both '\(literal.name)' and 'not \(literal.name)'",
                           fix: "remove one of them (as written the row never matches)")
            }

            // States and inputs.
            let froms = names(of: item.from, kind: "state").filter {
                reference($0.name, line: $0.line, kind: "state", section: "states", known: stateNames, context: " in 'from'")
            }
            let ons = names(of: item.on, kind: "input").filter {
                reference($0.name, line: $0.line, kind: "input", section: "inputs", known: inputNames, context: " in 'on'")
            }
            var to = item.to?.name
            if let target = item.to, !reference(target.name, line: target.line, kind: "state", section: "states",
                                                known: stateNames, context: " in 'to'") {
                to = nil
            }

            // Effects.
            var effects: [RowEffect] = []
            for effect in item.effects {
                if let resolved = resolve(effect) { effects.append(resolved) }
            }
            if effects.contains(where: { $0.kind == .ignore }), item.effects.count > 1 {
                let line = item.effects.first { $0.name == "ignore" }?.line ?? item.line
                sink.error(line, "'ignore' with other effects", fix: "drop 'ignore' (it means the row does nothing)")
            }

            // Terminal states and release.
            let fromTerminal = froms.filter { terminal.contains($0.name) }
            for state in fromTerminal {
                if effects.contains(where: { $0.kind != .ignore }) {
                    sink.error(item.line, "terminal state '\(state.name)' must only ignore inputs, but this row does '\(effects.first { $0.kind != .ignore }!.text)'",
                               fix: "use 'do: [ignore]' (a terminal state absorbs every input)")
                }
                if let to, to != state.name {
                    sink.error(item.to!.line, "row leaves terminal state '\(state.name)' for '\(to)'",
                               fix: "remove 'to' (a terminal state absorbs every input)")
                }
            }
            let enters = to.map { terminal.contains($0) } == true && froms.contains { !terminal.contains($0.name) }
            let releases = item.effects.filter { $0.name == EffectKind.release.rawValue }
            if enters, releases.isEmpty {
                sink.error(item.line, "row enters terminal state '\(to!)' without 'release'",
                           fix: "add 'release' to its effects")
            }
            if !enters {
                for release in releases {
                    sink.error(release.line, "'release' outside a transition into a terminal state",
                               fix: "remove it, or set 'to' to a terminal state")
                }
            }

            // Presence: rooms joined or left in a row are announced after the change.
            if spec.effects.contains(where: { $0.name == EffectKind.announcePresence.rawValue }),
               let last = item.effects.lastIndex(where: { EffectKind.roomChanging.contains(EffectKind(rawValue: $0.name)) }),
               !item.effects[last...].contains(where: { $0.name == EffectKind.announcePresence.rawValue }) {
                sink.error(item.effects[last].line, "'\(item.effects[last].name)' changes rooms but no 'announce_presence' follows it",
                           fix: "add 'announce_presence' after it (presence_join/presence_leave and the presence store follow room changes)")
            }

            // A required guard that cannot hold for the input makes the row dead.
            for literal in item.when where !literal.negated {
                if let input = ons.first(where: { !canHold(literal.name, for: $0.name) }),
                   let entry = spec.guards.first(where: { $0.name == literal.name }) {
                    sink.error(item.whenLine, "guard '\(literal.name)' cannot hold for input '\(input.name)' (it holds for "
                               + entry.holdsFor.map { "'\($0.name)'" }.joined(separator: ", ") + ")",
                               fix: "remove '\(literal.name)' from 'when', or add '\(input.name)' to its 'holds_for' (line \(entry.line))")
                }
            }

            // Delivery inputs only decide whether a client receives: `deliver`, or nothing.
            let groups = Dictionary(spec.inputs.map { ($0.name, $0.group) }, uniquingKeysWith: { a, _ in a })
            let deliveryInputs = ons.filter { groups[$0.name] == .delivery }
            if let input = deliveryInputs.first {
                if let extra = effects.first(where: { ![.deliver, .ignore, .log].contains($0.kind) }) {
                    sink.error(item.line, "delivery input '\(input.name)' does '\(extra.text)'",
                               fix: "a delivery row does 'deliver', 'ignore' or 'log' only (state changes belong to other inputs)")
                }
                if let target = to, froms.contains(where: { $0.name != target }) {
                    sink.error(item.to!.line, "delivery input '\(input.name)' changes the state to '\(target)'",
                               fix: "remove 'to' (a delivery never changes the client's state)")
                }
                if !item.when.isEmpty {
                    sink.error(item.whenLine, "delivery input '\(input.name)' has guards",
                               fix: "remove 'when' (whether a state receives is decided by the state alone)")
                }
            }
            if effects.contains(where: { $0.kind == .deliver }), let input = ons.first(where: { groups[$0.name] != .delivery }) {
                sink.error(item.line, "'deliver' on input '\(input.name)', which is not in group delivery",
                           fix: "use 'deliver' only in rows of delivery inputs")
            }
            // A close ends the connection: the row must end in a terminal state.
            if let close = item.effects.first(where: { $0.name == EffectKind.close.rawValue }),
               to.map({ !terminal.contains($0) }) ?? true, froms.contains(where: { !terminal.contains($0.name) }) {
                sink.error(close.line, "row closes the connection but stays in \(to.map { "'\($0)'" } ?? "its state")",
                           fix: "set 'to' to a terminal state (and add 'release')")
            }
            // Codec codes are the RFC 6455 codec's to send; a kernel row cannot raise them.
            for effect in item.effects where effect.name == EffectKind.close.rawValue {
                if let code = spec.closeCodes.first(where: { $0.name == effect.argument }), code.origin == .codec {
                    sink.error(effect.line, "close code '\(code.name)' (\(code.code)) is raised by the codec, not by rows",
                               fix: "close with a kernel code (or remove 'origin: codec' from '\(code.name)', line \(code.line))")
                }
            }

            for state in froms {
                for input in ons {
                    let cell = [stateIndex[state.name]!, inputIndex[input.name]!]
                    if !guardsOK { brokenCells.insert(cell) }
                    rows.append((cell, TableRow(state: state.name, input: input.name, when: item.when,
                                                next: to ?? state.name, effects: effects, line: item.line)))
                }
            }
        }
        // Stable: spec order within a cell.
        let sorted = rows.enumerated().sorted { a, b in
            (a.element.cell[0], a.element.cell[1], a.offset) < (b.element.cell[0], b.element.cell[1], b.offset)
        }.map(\.element.row)
        if sorted.count > Int(UInt16.max) {
            sink.error(transitionsLine, "the table has \(sorted.count) rows, more than \(UInt16.max)",
                       fix: "use fewer guards or merge rows")
        }
        return sorted
    }

    private mutating func resolve(_ effect: EffectSpec) -> RowEffect? {
        guard let declaration = spec.effects.first(where: { $0.name == effect.name }) else {
            sink.error(effect.line, "unknown effect '\(effect.name)'",
                       fix: Names.hint(for: effect.name, among: spec.effects.map(\.name),
                                       otherwise: "declare it under 'effects:' (and implement it in Kernel.run)"))
            return nil
        }
        let kind = EffectKind(rawValue: declaration.name)
        guard let argumentKind = declaration.argument else {
            if effect.argument != nil {
                sink.error(effect.line, "effect '\(kind.rawValue)' takes no argument", fix: "write '\(kind.rawValue)'")
                return nil
            }
            return RowEffect(kind)
        }
        guard let argument = effect.argument, !argument.isEmpty else {
            sink.error(effect.line, "effect '\(kind.rawValue)' needs \(argumentKind == .error ? "an" : "a") \(argumentKind.words)",
                       fix: "write '\(kind.rawValue): \(argumentKind.placeholder)'")
            return nil
        }
        let known: [String]
        let section: String
        switch argumentKind {
        case .text: return RowEffect(kind, argument)
        case .error: known = spec.errors.map(\.name); section = "errors"
        case .closeCode: known = spec.closeCodes.map(\.name); section = "close_codes"
        case .timer:
            if let timer = spec.timers.first(where: { $0.name == argument && $0.scope == .server }) {
                sink.error(effect.line, "'\(kind.rawValue)' names server timer '\(timer.name)' (line \(timer.line))",
                           fix: "rows arm and cancel client timers only (a server timer runs from start to shutdown)")
                return nil
            }
            known = spec.timers.filter { $0.scope == .client }.map(\.name); section = "timers"
        case .hook: known = spec.hooks.map(\.name); section = "hooks"
        }
        used[section, default: []].insert(argument)
        guard reference(argument, line: effect.line, kind: argumentKind.words, section: section, known: known,
                        context: " in '\(kind.rawValue)'") else { return nil }
        return RowEffect(kind, argument)
    }

    // MARK: - Cells

    /// Duplicate, conflicting and missing rows, cell by cell.
    mutating func cells(_ rows: [TableRow]) {
        guard !spec.states.isEmpty, !spec.inputs.isEmpty else { return }
        var byCell: [[Int]: [TableRow]] = [:]
        let stateIndex = Dictionary(spec.states.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        let inputIndex = Dictionary(spec.inputs.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        for row in rows { byCell[[stateIndex[row.state]!, inputIndex[row.input]!], default: []].append(row) }

        // Pairs of transition items, keyed by their lines: the first cell and how many cells.
        var duplicates: [[Int]: (String, Int)] = [:]
        var conflicts: [[Int]: (String, Int)] = [:]
        var pairOrder: [[Int]] = []

        for (s, state) in spec.states.enumerated() {
            for (i, input) in spec.inputs.enumerated() {
                let cell = [s, i]
                if brokenCells.contains(cell) { continue }
                let cellRows = byCell[cell] ?? []
                let where_ = "\(state.name) × \(input.name)"
                for a in 0..<cellRows.count {
                    for b in (a + 1)..<cellRows.count {
                        let x = cellRows[a], y = cellRows[b]
                        let key = [x.line, y.line]
                        if Set(x.when) == Set(y.when) {
                            if duplicates[key] == nil {
                                pairOrder.append(key + [0])
                                duplicates[key] = (where_ + (x.when.isEmpty ? "" : " when \(x.whenText)"), 1)
                            } else {
                                duplicates[key]!.1 += 1
                            }
                        } else if compatible(x.when, y.when) {
                            let both = x.when + y.when.filter { !x.when.contains($0) }
                            if conflicts[key] == nil {
                                pairOrder.append(key + [1])
                                conflicts[key] = (where_ + (both.isEmpty ? "" : " when " + both.map(\.text).joined(separator: ", ")), 1)
                            } else {
                                conflicts[key]!.1 += 1
                            }
                        }
                    }
                }
                missing(state: state.name, input: input.name, rows: cellRows)
            }
        }
        for key in pairOrder {
            let lines = Array(key.prefix(2))
            func more(_ count: Int) -> String { count > 1 ? " (and \(count - 1) more cell\(count > 2 ? "s" : ""))" : "" }
            if key[2] == 0, let (where_, count) = duplicates[lines] {
                sink.error(lines[1], "duplicate row: \(where_)\(more(count)) is also at line \(lines[0])",
                           fix: "remove one of the two")
            } else if key[2] == 1, let (where_, count) = conflicts[lines] {
                sink.error(lines[1], "rows at lines \(lines[0]) and \(lines[1]) both match \(where_)\(more(count))",
                           fix: "make their 'when' exclusive (add 'not GUARD' to one of them)")
            }
        }
    }

    private func compatible(_ a: [GuardLiteral], _ b: [GuardLiteral]) -> Bool {
        !a.contains { b.contains(GuardLiteral(name: $0.name, negated: !$0.negated)) }
    }

    /// Reports the guard valuations of a cell that no row matches, merged into as few
    /// conditions as a greedy expansion finds.
    private mutating func missing(state: String, input: String, rows: [TableRow]) {
        var guards: [String] = []
        for row in rows { for literal in row.when where !guards.contains(literal.name) { guards.append(literal.name) } }
        let line = rows.last?.line ?? transitionsLine
        if guards.count > Validator.maxGuardsPerCell {
            sink.error(line, "\(state) × \(input) tests \(guards.count) guards, more than \(Validator.maxGuardsPerCell)",
                       fix: "split the cell's conditions (fewer guards per input)")
            return
        }
        let masks: [(required: Int, forbidden: Int)] = rows.compactMap { row in
            var required = 0, forbidden = 0
            for literal in row.when {
                let bit = 1 << guards.firstIndex(of: literal.name)!
                if literal.negated { forbidden |= bit } else { required |= bit }
            }
            return required & forbidden == 0 ? (required, forbidden) : nil
        }
        let count = 1 << guards.count
        let all = count - 1
        var covered = [Bool](repeating: false, count: count)
        for v in 0..<count {
            covered[v] = masks.contains { v & $0.required == $0.required && v & $0.forbidden == 0 }
        }
        var reported = covered
        for v in 0..<count where !reported[v] {
            var care = all
            for g in 0..<guards.count {
                let trial = care & ~(1 << g)
                let touched = masks.contains { ($0.required & trial & ~v) == 0 && ($0.forbidden & trial & v) == 0 }
                if !touched { care = trial }
            }
            for w in 0..<count where w & care == v & care { reported[w] = true }
            let literals = guards.enumerated().filter { care & (1 << $0.offset) != 0 }.map {
                v & (1 << $0.offset) != 0 ? $0.element : "not \($0.element)"
            }
            if literals.isEmpty {
                sink.error(line, "input '\(input)' is not handled in state '\(state)'",
                           fix: "add a row 'from: \(state), on: \(input)'")
            } else {
                let text = literals.joined(separator: ", ")
                sink.error(line, "input '\(input)' is not handled in state '\(state)' when \(text)",
                           fix: "add a row 'from: \(state), on: \(input), when: [\(text)]'")
            }
        }
    }

}
