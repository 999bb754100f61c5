/// The model stage for `transitions`: items, their `from`/`on` selectors, `when` literals and
/// `do` effects, as written (Validator expands and checks them).
extension ModelBuilder {
    mutating func transitions(_ node: YAMLNode) {
        guard case .sequence(let items) = node.value else {
            if node.isNull { return }
            sink.error(node.line, "section 'transitions' must be a sequence, not \(node.kindName)",
                       fix: "write one '- from: ...' item per row")
            return
        }
        for item in items {
            let what = "transition"
            guard let f = fields(item, what, allowed: ["from", "on", "when", "to", "do"], required: ["from", "on", "do"])
            else { continue }
            let from = selector(f["from"], "from", kind: "state")
            let on = selector(f["on"], "on", kind: "input")
            var row = TransitionSpec(line: item.line, from: from ?? .names([]), on: on ?? .names([]))
            if let pair = f["when"] {
                row.whenLine = pair.value.line
                row.when = guardLiterals(pair)
            }
            if let pair = f["to"], let name = text(pair, "to", what) {
                row.to = SpecName(name: name, line: pair.value.line)
            }
            if let pair = f["do"] { row.effects = effects(pair) }
            if from != nil, on != nil { spec.transitions.append(row) }
        }
    }

    mutating func selector(_ pair: YAMLPair?, _ field: String, kind: String) -> Selector? {
        guard let pair else { return nil }
        let node = pair.value
        switch node.value {
        case .scalar(let text, _):
            if text == "*" { return .all(line: node.line) }
            if node.isNull {
                sink.error(node.line, "'\(field)' is empty", fix: "name a \(kind), a list of them, or \"*\"")
                return nil
            }
            return .names([SpecName(name: text, line: node.line)])
        case .sequence(let items):
            var names: [SpecName] = []
            for item in items {
                guard let text = item.scalar else {
                    sink.error(item.line, "'\(field)' items must be \(kind) names, not \(item.kindName)",
                               fix: "write a list of names: [a, b]")
                    return nil
                }
                if text == "*" {
                    sink.error(item.line, "\"*\" must stand alone in '\(field)'", fix: "write '\(field): \"*\"'")
                    return nil
                }
                if let previous = names.first(where: { $0.name == text }) {
                    sink.warning(item.line, "'\(text)' is listed twice in '\(field)' (line \(previous.line))",
                                 fix: "remove the repetition")
                    continue
                }
                names.append(SpecName(name: text, line: item.line))
            }
            if names.isEmpty {
                sink.error(node.line, "'\(field)' is empty", fix: "name a \(kind), a list of them, or \"*\"")
                return nil
            }
            return .names(names)
        case .mapping:
            sink.error(node.line, "'\(field)' must be a \(kind) name, a list or \"*\", not a mapping",
                       fix: "write '\(field): name' or '\(field): [a, b]'")
            return nil
        }
    }

    mutating func guardLiterals(_ pair: YAMLPair) -> [GuardLiteral] {
        guard case .sequence(let items) = pair.value.value else {
            if pair.value.isNull { return [] }
            sink.error(pair.value.line, "'when' must be a sequence, not \(pair.value.kindName)",
                       fix: "write a list of guards: [a, not b]")
            return []
        }
        var literals: [GuardLiteral] = []
        for item in items {
            guard let text = item.scalar else {
                sink.error(item.line, "'when' items must be scalars, not \(item.kindName)", fix: "write 'GUARD' or 'not GUARD'")
                continue
            }
            let words = text.split(separator: " ", omittingEmptySubsequences: true)
            let literal: GuardLiteral
            if words.count == 1 {
                literal = GuardLiteral(name: String(words[0]), negated: false)
            } else if words.count == 2, words[0] == "not" {
                literal = GuardLiteral(name: String(words[1]), negated: true)
            } else {
                sink.error(item.line, "'when' item '\(text)' is not 'GUARD' or 'not GUARD'", fix: "write 'GUARD' or 'not GUARD'")
                continue
            }
            if literals.contains(literal) {
                sink.warning(item.line, "'\(literal.text)' is listed twice in 'when'", fix: "remove the repetition")
                continue
            }
            literals.append(literal)
        }
        return literals
    }

    mutating func effects(_ pair: YAMLPair) -> [EffectSpec] {
        guard case .sequence(let items) = pair.value.value else {
            sink.error(pair.value.line, "'do' must be a sequence, not \(pair.value.kindName)",
                       fix: "write a list of effects: [touch, send_error: ERROR] (or [ignore])")
            return []
        }
        if items.isEmpty {
            sink.error(pair.value.line, "'do' is empty", fix: "write 'do: [ignore]' for a row that does nothing")
        }
        var effects: [EffectSpec] = []
        for item in items {
            switch item.value {
            case .scalar(let text, _):
                effects.append(EffectSpec(name: text, argument: nil, line: item.line))
            case .mapping(let pairs) where pairs.count == 1:
                let argument = pairs[0].value
                if argument.isNull {
                    effects.append(EffectSpec(name: pairs[0].key, argument: nil, line: item.line))
                } else if let text = argument.scalar {
                    effects.append(EffectSpec(name: pairs[0].key, argument: text, line: item.line))
                } else {
                    sink.error(argument.line, "the argument of effect '\(pairs[0].key)' must be a scalar, not \(argument.kindName)",
                               fix: "write '\(pairs[0].key): NAME'")
                }
            default:
                sink.error(item.line, "an effect must be a name or one 'name: argument' pair, not \(item.kindName)",
                           fix: "write 'touch' or 'send_error: ERROR'")
            }
        }
        return effects
    }
}
