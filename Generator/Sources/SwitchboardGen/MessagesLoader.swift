/// Loading the `messages` section (see MessagesModel.swift): kinds, fields and value types.
/// References between sections are checked later, by `MessagesValidator`.
extension ModelBuilder {
    mutating func messages(_ node: YAMLNode) {
        for (key, line, f) in entries(node, "messages", "message", allowed: ["from", "event", "data", "fields", "doc"],
                                      required: ["from"]) {
            let what = "message '\(key)'"
            var message = MessageSpec(name: key, line: line)
            if let from: MessageSourceName = choice(f["from"], "from", what, problem: { "\(what) has unknown 'from: \($0)'" },
                                                    fix: { Names.hint(for: $0, among: $1,
                                                                      otherwise: "use client, kernel, app or bus") }) {
                message.from = from
            }
            if let pair = f["event"] {
                message.event = text(pair, "event", what)
                message.eventLine = pair.value.line
            }
            if let pair = f["data"] {
                // Written at all, even with an unknown type: the validator refuses `data` on bus messages.
                if pair.value.scalar != nil { message.dataLine = pair.value.line }
                if let type: FieldTypeName = choice(pair, "data", what, problem: { "\(what) has unknown 'data: \($0)'" }) {
                    message.data = type
                }
            }
            if let pair = f["fields"] { message.fields = messageFields(pair.value, what) }
            message.doc = text(f["doc"], "doc", what) ?? ""
            spec.messages.append(message)
        }
    }

    /// `fields:`: a mapping from wire member name to `{type, when?, values?, in_types?, doc?}`.
    private mutating func messageFields(_ node: YAMLNode, _ owner: String) -> [MessageFieldSpec] {
        guard case .mapping(let pairs) = node.value else {
            if node.isNull { return [] }
            sink.error(node.line, "'fields' of \(owner) must be a mapping, not \(node.kindName)",
                       fix: "write one 'memberName: { type: string }' entry per member, in wire order")
            return []
        }
        var out: [MessageFieldSpec] = []
        for pair in pairs {
            let what = "field '\(pair.key)' of \(owner)"
            guard let f = fields(pair.value, what, allowed: ["type", "when", "values", "in_types", "doc"],
                                 required: ["type"], entryLine: pair.keyLine) else { continue }
            var field = MessageFieldSpec(name: pair.key, line: pair.keyLine)
            if let type = choice(f["type"], "type", what, among: FieldTypeName.allCases.filter { $0 != .none },
                                 problem: { "\(what) has unknown type '\($0)'" }) {
                field.type = type
            }
            if let whenPair = f["when"] {
                let condition = text(whenPair, "when", what) ?? ""
                if condition.isEmpty {
                    sink.error(whenPair.value.line, "'when' of \(what) is empty",
                               fix: "say when the member is written, or remove 'when' (the member is always written)")
                } else {
                    field.when = condition
                }
            }
            if let valuesPair = f["values"] {
                field.valuesLine = valuesPair.value.line
                field.values = fieldValues(valuesPair.value, what)
            }
            if let typesPair = f["in_types"] {
                field.inTypesLine = typesPair.value.line
                field.inTypes = textList(typesPair, "in_types", what) ?? []
            }
            field.doc = text(f["doc"], "doc", what) ?? ""
            out.append(field)
        }
        return out
    }

    /// `values: [a, b]` or `values: errors`.
    private mutating func fieldValues(_ node: YAMLNode, _ what: String) -> FieldValues? {
        switch node.value {
        case .scalar(let text, _) where text == "errors":
            return .errorMessages
        case .sequence(let items):
            guard let texts = scalars(items, problem: { "items of 'values' in \(what) must be scalars, not \($0)" },
                                      fix: "write a list of texts: [a, b]") else { return nil }
            if texts.isEmpty {
                sink.error(node.line, "'values' of \(what) is empty", fix: "list the values, or remove 'values'")
                return nil
            }
            return .list(texts)
        default:
            sink.error(node.line, "'values' of \(what) must be a list or 'errors', not \(node.scalar.map { "'\($0)'" } ?? node.kindName)",
                       fix: "write 'values: [a, b]', or 'values: errors' for the messages of the errors section")
            return nil
        }
    }
}

extension Names {
    /// `bus_envelope` -> `BusEnvelope`.
    static func upperCamel(_ name: String) -> String {
        let lower = lowerCamel(name)
        return lower.prefix(1).uppercased() + lower.dropFirst()
    }

    /// A wire member name as a Swift case: `serverId` -> `serverId`, `Salt` -> `salt`.
    static func member(_ wireName: String) -> String {
        let id = wireName.prefix(1).lowercased() + wireName.dropFirst()
        return keywords.contains(id) ? "`\(id)`" : id
    }

    /// Letters and digits, starting with a letter (a member name that is also a Swift name).
    static func isMemberName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, (first >= 65 && first <= 90) || (first >= 97 && first <= 122) else { return false }
        return bytes.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) }
    }
}
