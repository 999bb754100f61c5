/// Checks the `messages` section against itself and the other sections: names that render to
/// Swift, events that are unique per direction, fields the kernel can encode, and that every
/// client event an input selects is described (docs/protocol.md lists them all).
enum MessagesValidator {
    /// Case names the generated field enums declare themselves.
    static let reservedMembers: Set<String> = ["init", "self", "allCases", "rawValue", "hashValue", "wireName",
                                               "wireOrder", "isOptional"]

    static func check(_ spec: ProtocolSpec) -> [Diagnostic] {
        var sink = DiagnosticSink(file: spec.file)
        guard let sectionLine = spec.sectionLines["messages"] else { return [] }
        var typeNames: [String: (String, Int)] = [:]
        var events: [String: (String, Int)] = [:]
        for message in spec.messages {
            let what = "message '\(message.name)'"
            if !Names.isSnakeCase(message.name) {
                sink.error(message.line, "message name '\(message.name)' is not snake_case",
                           fix: "use lowercase words joined by '_' (like 'bus_envelope')")
            } else if message.from.isRendered {
                if let (other, line) = typeNames[message.fieldTypeName] {
                    sink.error(message.line, "messages '\(other)' (line \(line)) and '\(message.name)' both become '\(message.fieldTypeName)' in Swift",
                               fix: "rename one of them")
                }
                typeNames[message.fieldTypeName] = (message.name, message.line)
            }
            event(message, what, &events, &sink)
            shape(message, what, &sink)
            fields(message, what, spec, &sink)
        }
        let described = Set(spec.messages.filter { $0.from == .client }.compactMap(\.event))
        for input in spec.inputs {
            guard let event = input.event, !described.contains(event) else { continue }
            sink.error(input.eventLine, "input '\(input.name)' is selected by event '\(event)', but no client message describes it",
                       fix: "add a 'messages' entry with 'from: client' and 'event: \(event)' (section at line \(sectionLine))")
        }
        return sink.items
    }

    /// `event`: present except on the bus envelope, `*` only for client messages (any other
    /// event) and kernel messages (members the kernel adds beside `event` and `data` of
    /// messages of any event), one message per (direction, event).
    private static func event(_ message: MessageSpec, _ what: String, _ events: inout [String: (String, Int)],
                              _ sink: inout DiagnosticSink) {
        guard let event = message.event else {
            if message.from != .bus {
                sink.error(message.line, "missing field 'event' in \(what)",
                           fix: "add 'event:' with the wire event name (\"*\" for any other name)")
            }
            return
        }
        if message.from == .bus {
            sink.error(message.eventLine, "\(what) is the bus envelope and has no event of its own",
                       fix: "remove 'event' (the envelope's 'event' member is one of its fields)")
            return
        }
        if event.isEmpty {
            sink.error(message.eventLine, "\(what) has an empty event", fix: "write the wire event name")
            return
        }
        if event == "*" && message.from != .client && message.from != .kernel {
            sink.error(message.eventLine, "\(what) has event \"*\", but only client and kernel messages may stand for any event",
                       fix: "write the event name the server sends")
            return
        }
        let direction = message.from == .client ? "client" : "server"
        let key = direction + " " + event
        if let (other, line) = events[key] {
            sink.error(message.eventLine, "\(direction) event '\(event)' is described by both '\(other)' (line \(line)) and '\(message.name)'",
                       fix: "keep one of them")
        }
        events[key] = (message.name, message.line)
    }

    /// `data` against `fields`, and messages the Swift side encodes need fields to encode.
    private static func shape(_ message: MessageSpec, _ what: String, _ sink: inout DiagnosticSink) {
        let line = message.dataLine == 0 ? message.line : message.dataLine
        if !message.fields.isEmpty && message.data != .object {
            sink.error(line, "\(what) has fields but 'data: \(message.data.rawValue)'",
                       fix: "remove 'data' (a message with fields has an object as data)")
        }
        if message.from.isRendered && message.fields.isEmpty {
            sink.error(message.line, "\(what) is written by the \(message.from == .bus ? "bus" : "kernel") but has no fields",
                       fix: "list its members under 'fields:' in wire order")
        }
        if message.from == .bus && message.dataLine != 0 {
            sink.error(message.dataLine, "\(what) is the bus envelope; its members are its fields",
                       fix: "remove 'data'")
        }
    }

    private static func fields(_ message: MessageSpec, _ what: String, _ spec: ProtocolSpec, _ sink: inout DiagnosticSink) {
        var swiftNames: [String: (String, Int)] = [:]
        let typeValues: [String]? = message.fields.first { $0.name == "type" }.flatMap {
            if case .list(let values)? = $0.values { values } else { nil }
        }
        for field in message.fields {
            let fieldWhat = "field '\(field.name)' of \(what)"
            if !Names.isMemberName(field.name) {
                sink.error(field.line, "\(fieldWhat) is not a member name of letters and digits",
                           fix: "use a name like 'userId' (it becomes a Swift case)")
                continue
            }
            let swift = Names.member(field.name)
            if message.from.isRendered && reservedMembers.contains(swift) {
                sink.error(field.line, "\(fieldWhat) is reserved (a member of the generated \(message.fieldTypeName))",
                           fix: "rename it")
            }
            if let (other, line) = swiftNames[swift] {
                sink.error(field.line, "fields '\(other)' (line \(line)) and '\(field.name)' both become '\(swift)' in Swift",
                           fix: "rename one of them")
            }
            swiftNames[swift] = (field.name, field.line)
            if field.values == .errorMessages {
                if field.type != .string {
                    sink.error(field.valuesLine, "\(fieldWhat) takes the messages of 'errors' but is \(field.type.rawValue)",
                               fix: "make it 'type: string'")
                } else if spec.errors.isEmpty {
                    sink.error(field.valuesLine, "\(fieldWhat) takes the messages of 'errors', but there are none",
                               fix: "add an 'errors' section, or list the values: [a, b]")
                }
            }
            if !field.inTypes.isEmpty {
                guard let typeValues, field.name != "type" else {
                    sink.error(field.inTypesLine, "\(fieldWhat) has 'in_types' but \(what) has no 'type' field with values",
                               fix: "add a 'type' field with 'values: [...]' before it, or remove 'in_types'")
                    continue
                }
                for name in field.inTypes where !typeValues.contains(name) {
                    sink.error(field.inTypesLine, "\(fieldWhat) is only in envelopes of type '\(name)', which 'type' does not list",
                               fix: Names.hint(for: name, among: typeValues))
                }
            }
        }
    }
}
