import CYAML

/// A YAML node with the 1-based line and column where it starts.
struct YAMLNode: Sendable {
    enum Value: Sendable {
        /// `plain` is false for quoted, block or explicitly tagged scalars (never a number or bool).
        case scalar(String, plain: Bool)
        case sequence([YAMLNode])
        case mapping([YAMLPair])
    }

    var value: Value
    var line: Int
    var column: Int

    var kindName: String {
        switch value {
        case .scalar: "a scalar"
        case .sequence: "a sequence"
        case .mapping: "a mapping"
        }
    }

    var scalar: String? {
        if case .scalar(let text, _) = value { return text }
        return nil
    }

    /// A plain empty scalar, `~` or `null`.
    var isNull: Bool {
        if case .scalar(let text, plain: true) = value { return text.isEmpty || text == "~" || text == "null" }
        return false
    }
}

/// A mapping entry; keys are scalars.
struct YAMLPair: Sendable {
    var key: String
    var keyLine: Int
    var value: YAMLNode
}

/// Reads YAML through libyaml's event API into located nodes.
enum YAMLReader {
    /// Deeper nesting is rejected (the spec is shallow; this bounds the tree and its recursion).
    static let maxDepth = 64

    private enum Frame {
        case sequence(line: Int, column: Int, items: [YAMLNode])
        case mapping(line: Int, column: Int, pairs: [YAMLPair], key: (text: String, line: Int)?, skipValue: Bool,
                     seen: [String: Int])
    }

    /// The document's root node, or nil with at least one error.
    static func parse(_ bytes: [UInt8], into sink: inout DiagnosticSink) -> YAMLNode? {
        if bytes.isEmpty {
            sink.error(1, "the spec is empty", fix: "write the spec's sections (protocol, states, inputs, transitions, ...)")
            return nil
        }
        return bytes.withUnsafeBufferPointer { buffer in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else {
                sink.error(1, "libyaml could not allocate a parser", fix: "retry with more memory")
                return nil
            }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            return run(&parser, &sink)
        }
    }

    private static func run(_ parser: inout yaml_parser_t, _ sink: inout DiagnosticSink) -> YAMLNode? {
        var stack: [Frame] = []
        var root: YAMLNode?
        var documents = 0

        func attach(_ node: YAMLNode, _ sink: inout DiagnosticSink) {
            guard let top = stack.popLast() else {
                root = node
                return
            }
            switch top {
            case .sequence(let line, let column, var items):
                items.append(node)
                stack.append(.sequence(line: line, column: column, items: items))
            case .mapping(let line, let column, var pairs, let key, let skipValue, var seen):
                if let key {
                    if !skipValue { pairs.append(YAMLPair(key: key.text, keyLine: key.line, value: node)) }
                    stack.append(.mapping(line: line, column: column, pairs: pairs, key: nil, skipValue: false, seen: seen))
                } else if case .scalar(let text, _) = node.value {
                    var skip = false
                    if let first = seen[text] {
                        sink.error(node.line, "duplicate key '\(text)' (first at line \(first))",
                                   fix: "remove or rename one of the two")
                        skip = true
                    } else {
                        seen[text] = node.line
                    }
                    stack.append(.mapping(line: line, column: column, pairs: pairs, key: (text, node.line),
                                          skipValue: skip, seen: seen))
                } else {
                    sink.error(node.line, "mapping keys must be scalars, not \(node.kindName)",
                               fix: "use a plain name as the key")
                    stack.append(.mapping(line: line, column: column, pairs: pairs, key: ("", node.line),
                                          skipValue: true, seen: seen))
                }
            }
        }

        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else {
                syntaxError(parser, &sink)
                return nil
            }
            defer { yaml_event_delete(&event) }
            let line = Int(event.start_mark.line) + 1
            let column = Int(event.start_mark.column) + 1

            switch event.type {
            case YAML_STREAM_END_EVENT:
                if root == nil {
                    sink.error(1, "the spec is empty",
                               fix: "write the spec's sections (protocol, states, inputs, transitions, ...)")
                }
                return root
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 {
                    sink.error(line, "the spec must be a single YAML document", fix: "remove the second document (from line \(line))")
                    return nil
                }
            case YAML_ALIAS_EVENT:
                sink.error(line, "aliases are not supported", fix: "write the value out instead of '*alias'")
                return nil
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                let text: String
                if let value = scalar.value, scalar.length > 0 {
                    text = String(decoding: UnsafeBufferPointer(start: value, count: Int(scalar.length)), as: UTF8.self)
                } else {
                    text = ""
                }
                let plain = scalar.style == YAML_PLAIN_SCALAR_STYLE && scalar.tag == nil
                attach(YAMLNode(value: .scalar(text, plain: plain), line: line, column: column), &sink)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                if stack.count >= maxDepth {
                    sink.error(line, "nesting deeper than \(maxDepth) levels", fix: "flatten the value")
                    return nil
                }
                if event.type == YAML_SEQUENCE_START_EVENT {
                    stack.append(.sequence(line: line, column: column, items: []))
                } else {
                    stack.append(.mapping(line: line, column: column, pairs: [], key: nil, skipValue: false, seen: [:]))
                }
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let top = stack.popLast() else { continue }
                switch top {
                case .sequence(let line, let column, let items):
                    attach(YAMLNode(value: .sequence(items), line: line, column: column), &sink)
                case .mapping(let line, let column, let pairs, _, _, _):
                    attach(YAMLNode(value: .mapping(pairs), line: line, column: column), &sink)
                }
            default:
                continue
            }
        }
    }

    private static func syntaxError(_ parser: yaml_parser_t, _ sink: inout DiagnosticSink) {
        let problem = parser.problem.map { String(cString: $0) } ?? "unreadable input"
        var message = "YAML syntax error: \(problem)"
        if let context = parser.context {
            message += " (\(String(cString: context)) at line \(Int(parser.context_mark.line) + 1))"
        }
        let line = Int(parser.problem_mark.line) + 1
        sink.error(line, message, fix: "correct the YAML near line \(line) (indentation, quotes, ':' inside plain text)")
    }
}
