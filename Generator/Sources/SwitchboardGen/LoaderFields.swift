/// The model stage's field readers: a section's entries and fields, typed scalars and lists,
/// and `defaults` values, each reporting what is wrong at its line.
extension ModelBuilder {
    mutating func defaultValue(_ key: String, _ f: [String: YAMLPair]) -> (DefaultType, DefaultValue)? {
        let what = "default '\(key)'"
        guard let typePair = f["type"], let typeName = text(typePair, "type", what), let valuePair = f["value"] else {
            return nil
        }
        guard let type = DefaultType(rawValue: typeName) else {
            sink.error(typePair.value.line, "\(what) has unknown type '\(typeName)'",
                       fix: Names.hint(for: typeName, among: DefaultType.allCases.map(\.rawValue)))
            return nil
        }
        let node = valuePair.value
        let line = node.line
        switch (type, node.value) {
        case (.string, .scalar(let text, let plain)):
            if plain, text.isEmpty || text == "~" || text == "null" || Self.integer(text) != nil || Self.boolean(text) != nil {
                sink.error(line, "\(what) is string, but its value '\(text)' is not text",
                           fix: "quote it: \"\(text)\"")
                return nil
            }
            return (type, .string(text))
        case (.strings, .sequence(let items)):
            guard let texts = scalars(items, problem: { "\(what) is strings, but an item is \($0)" },
                                      fix: "write a list of texts: [a, b]") else { return nil }
            return (type, .strings(texts))
        case (.int, .scalar(let text, true)), (.ms, .scalar(let text, true)):
            guard let value = Self.integer(text), type == .int || value >= 0 else {
                sink.error(line, "\(what) is \(type.rawValue), but its value '\(text)' is not \(type == .ms ? "a non-negative integer" : "an integer")",
                           fix: type == .ms ? "write a number of milliseconds (0 or more) without quotes" : "write a whole number without quotes")
                return nil
            }
            return (type, .int(value))
        case (.bool, .scalar(let text, true)) where Self.boolean(text) != nil:
            return (type, .bool(Self.boolean(text)!))
        default:
            let shown = node.scalar.map { "'\($0)'" } ?? node.kindName
            let expected: String
            switch type {
            case .string: expected = "text"
            case .strings: expected = "a list of texts"
            case .int: expected = "an integer"
            case .ms: expected = "a non-negative integer"
            case .bool: expected = "true or false"
            }
            let fix: String
            switch type {
            case .string: fix = "write one text"
            case .strings: fix = "write a list of texts: [a, b]"
            case .int: fix = "write a whole number without quotes"
            case .ms: fix = "write a number of milliseconds (0 or more) without quotes"
            case .bool: fix = "write true or false without quotes"
            }
            sink.error(line, "\(what) is \(type.rawValue), but its value \(shown) is not \(expected)", fix: fix)
            return nil
        }
    }

    // MARK: - Field helpers

    /// The entries of a section: name, line and checked fields.
    mutating func entries(_ node: YAMLNode, _ section: String, _ kind: String, allowed: [String],
                                  required: [String]) -> [(String, Int, [String: YAMLPair])] {
        guard case .mapping(let pairs) = node.value else {
            if node.isNull { return [] }
            sink.error(node.line, "section '\(section)' must be a mapping, not \(node.kindName)",
                       fix: "write one 'name:' entry per \(kind), with its fields indented below it")
            return []
        }
        var out: [(String, Int, [String: YAMLPair])] = []
        for pair in pairs {
            if let f = fields(pair.value, "\(kind) '\(pair.key)'", allowed: allowed, required: required,
                              entryLine: pair.keyLine) {
                out.append((pair.key, pair.keyLine, f))
            }
        }
        return out
    }

    /// A mapping's fields by key, after reporting unknown and missing ones. A null node is an
    /// empty mapping.
    mutating func fields(_ node: YAMLNode, _ what: String, allowed: [String], required: [String],
                                 entryLine: Int? = nil) -> [String: YAMLPair]? {
        let pairs: [YAMLPair]
        switch node.value {
        case .mapping(let p): pairs = p
        case .scalar where node.isNull: pairs = []
        default:
            sink.error(node.line, "\(what) must be a mapping, not \(node.kindName)",
                       fix: required.isEmpty ? "write 'doc: ...' below it, or nothing"
                           : "give it the fields " + required.map { "'\($0)'" }.joined(separator: ", "))
            return nil
        }
        var out: [String: YAMLPair] = [:]
        for pair in pairs {
            if allowed.contains(pair.key) {
                out[pair.key] = pair
            } else {
                sink.error(pair.keyLine, "unknown field '\(pair.key)' in \(what)",
                           fix: Names.hint(for: pair.key, among: allowed,
                                           otherwise: "remove it (fields: \(allowed.joined(separator: ", ")))"))
            }
        }
        for name in required where out[name] == nil {
            sink.error(entryLine ?? node.line, "missing field '\(name)' in \(what)", fix: "add '\(name):' to it")
        }
        return out
    }

    mutating func text(_ pair: YAMLPair?, _ field: String, _ what: String) -> String? {
        guard let pair else { return nil }
        guard let text = pair.value.scalar else {
            sink.error(pair.value.line, "field '\(field)' of \(what) must be a scalar, not \(pair.value.kindName)",
                       fix: "write a single value (quote text that contains ': ' or starts with a symbol)")
            return nil
        }
        return pair.value.isNull ? "" : text
    }

    /// The case of one of the model's name enums that a field names. Nil when the field is
    /// absent or not a scalar, or names none of `cases`: then an error at the value, worded by
    /// `problem` from the name found, with `fix`'s advice (by default a near name, or the list).
    mutating func choice<E: RawRepresentable<String> & CaseIterable>(
        _ pair: YAMLPair?, _ field: String, _ what: String, among cases: [E] = Array(E.allCases),
        problem: (_ value: String) -> String,
        fix: (_ value: String, _ names: [String]) -> String = { Names.hint(for: $0, among: $1) }
    ) -> E? {
        guard let pair, let value = text(pair, field, what) else { return nil }
        if let match = cases.first(where: { $0.rawValue == value }) { return match }
        let names = cases.map(\.rawValue)
        sink.error(pair.value.line, problem(value), fix: fix(value, names))
        return nil
    }

    mutating func textList(_ pair: YAMLPair?, _ field: String, _ what: String) -> [String]? {
        guard let pair else { return nil }
        guard case .sequence(let items) = pair.value.value else {
            if pair.value.isNull { return [] }
            sink.error(pair.value.line, "field '\(field)' of \(what) must be a sequence, not \(pair.value.kindName)",
                       fix: "write a list: [a, b] or one '- item' per line")
            return nil
        }
        return scalars(items, problem: { "items of '\(field)' in \(what) must be scalars, not \($0)" },
                       fix: "quote items that contain ': '")
    }

    /// The texts of a sequence's items. Nil when an item is not a scalar: then an error at the
    /// first such item, worded by `problem` from what it is (its `kindName`).
    mutating func scalars(_ items: [YAMLNode], problem: (_ kind: String) -> String, fix: String) -> [String]? {
        var texts: [String] = []
        for item in items {
            guard let text = item.scalar else {
                sink.error(item.line, problem(item.kindName), fix: fix)
                return nil
            }
            texts.append(text)
        }
        return texts
    }

    mutating func int(_ pair: YAMLPair?, _ field: String, _ what: String) -> Int? {
        guard let pair else { return nil }
        guard case .scalar(let text, true) = pair.value.value, let value = Self.integer(text),
              let small = Int(exactly: value) else {
            let shown = pair.value.scalar.map { "'\($0)'" } ?? pair.value.kindName
            sink.error(pair.value.line, "field '\(field)' of \(what) must be an integer, not \(shown)",
                       fix: "write a whole number without quotes")
            return nil
        }
        return small
    }

    mutating func bool(_ pair: YAMLPair?, _ field: String, _ what: String) -> Bool? {
        guard let pair else { return nil }
        guard case .scalar(let text, true) = pair.value.value, let value = Self.boolean(text) else {
            let shown = pair.value.scalar.map { "'\($0)'" } ?? pair.value.kindName
            sink.error(pair.value.line, "field '\(field)' of \(what) must be true or false, not \(shown)",
                       fix: "write true or false without quotes")
            return nil
        }
        return value
    }

    static func integer(_ text: String) -> Int64? {
        let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int64(text)
    }

    static func boolean(_ text: String) -> Bool? {
        switch text {
        case "true": true
        case "false": false
        default: nil
        }
    }
}
