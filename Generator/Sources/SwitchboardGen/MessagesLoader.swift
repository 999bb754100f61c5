/// Loading the `messages` section (see MessagesModel.swift): kinds, fields and value types.
/// References between sections are checked later, by `MessagesValidator`.
extension ModelBuilder {
    mutating func messages(_ node: YAMLNode) {
        for (key, line, f) in entries(node, "messages", "message", allowed: ["from", "event", "data", "fields", "doc"],
                                      required: ["from"]) {
            let what = "message '\(key)'"
            var message = MessageSpec(name: key, line: line)
            if let pair = f["from"], let value = text(pair, "from", what) {
                if let from = MessageSourceName(rawValue: value) {
                    message.from = from
                } else {
                    sink.error(pair.value.line, "\(what) has unknown 'from: \(value)'",
                               fix: Names.hint(for: value, among: MessageSourceName.allCases.map(\.rawValue),
                                               otherwise: "use client, kernel, app or bus"))
                }
            }
            if let pair = f["event"] {
                message.event = text(pair, "event", what)
                message.eventLine = pair.value.line
            }
            if let pair = f["data"], let value = text(pair, "data", what) {
                message.dataLine = pair.value.line
                if let type = FieldTypeName(rawValue: value) {
                    message.data = type
                } else {
                    sink.error(pair.value.line, "\(what) has unknown 'data: \(value)'",
                               fix: Names.hint(for: value, among: FieldTypeName.allCases.map(\.rawValue)))
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
            if let typePair = f["type"], let value = text(typePair, "type", what) {
                if let type = FieldTypeName(rawValue: value), type != .none {
                    field.type = type
                } else {
                    sink.error(typePair.value.line, "\(what) has unknown type '\(value)'",
                               fix: Names.hint(for: value, among: FieldTypeName.allCases.filter { $0 != .none }.map(\.rawValue)))
                }
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
            var texts: [String] = []
            for item in items {
                guard let text = item.scalar else {
                    sink.error(item.line, "items of 'values' in \(what) must be scalars, not \(item.kindName)",
                               fix: "write a list of texts: [a, b]")
                    return nil
                }
                texts.append(text)
            }
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
