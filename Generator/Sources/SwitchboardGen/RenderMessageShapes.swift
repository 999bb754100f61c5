extension Renderer {
    // MARK: - Generated/MessageShapes.swift

    /// What a field's presence rule says in a doc comment.
    static func presence(_ field: MessageFieldSpec) -> String {
        var parts: [String] = []
        if let when = field.when { parts.append("Only when \(Names.oneLine(when).withoutFinalPeriod).") }
        if !field.inTypes.isEmpty { parts.append("Only in envelopes of type \(field.inTypes.joined(separator: ", ")).") }
        return parts.isEmpty ? "Always written." : parts.joined(separator: " ")
    }

    /// The messages whose bytes the Swift side writes (`from: kernel` and `from: bus`): the
    /// kernel's events, and one field enum per message in wire order. The encoders walk
    /// `wireOrder` and switch over the cases, so a reordered spec reorders the bytes and a new
    /// field fails the build until its value has a source.
    static func messageShapes(_ spec: ProtocolSpec) -> String {
        // A kernel message of event "*" has no event of its own: only its field enum is rendered.
        let kernel = spec.messages.filter { $0.from == .kernel && $0.event != "*" }
        var lines = header(spec) + sectionEnum("A message the kernel writes to clients (spec `messages`, `from: kernel`).",
                                               "KernelMessage", kernel.map { ($0.name, $0.doc) }, [
            property("The wire `event`.", "event: String", kernel.map { ($0.name, Names.literal($0.event ?? "")) }),
        ])
        for message in spec.messages where message.from.isRendered {
            let type = message.fieldTypeName
            let owner = message.from == .bus ? "The members of the bus envelope"
                : message.event == "*" ? "The members written after `event` and `data` (`\(message.name)`)"
                : "The `data` members of `\(message.event ?? message.name)`"
            lines += ["", "/// \(owner), in wire order (spec `messages.\(message.name)`).",
                      "public enum \(type): UInt8, CaseIterable, Sendable {"]
            for (index, field) in message.fields.enumerated() {
                let text = [Names.oneLine(field.doc), "\(field.type.words.capitalizedFirst).", presence(field)]
                    .filter { !$0.isEmpty }.joined(separator: " ")
                lines.append("    /// \(text)")
                lines.append("    case \(Names.member(field.name)) = \(index)")
            }
            lines += ["", "    /// Every member in the order it is written.",
                      "    public static let wireOrder: [\(type)] = ["
                          + message.fields.map { "." + Names.member($0.name) }.joined(separator: ", ") + "]"]
            lines += switching("The member name on the wire.", "public var wireName: String",
                               message.fields.map { "case .\(Names.member($0.name)): \(Names.literal($0.name))" })
            lines += flag("Whether the member is left out unless its condition holds (see each case).", "isOptional",
                          true: message.fields.filter(\.isOptional).map { "." + Names.member($0.name) },
                          false: message.fields.filter { !$0.isOptional }.map { "." + Names.member($0.name) })
            lines.append("}")
        }
        return file(lines)
    }
}

extension String {
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
    var withoutFinalPeriod: String { hasSuffix(".") ? String(dropLast()) : self }
}
