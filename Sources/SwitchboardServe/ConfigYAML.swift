import CYAML

/// A YAML node of a config or tokens file with the 1-based line where it starts.
///
/// Read through libyaml's event API like the generator's `YAMLReader`. That reader is internal
/// to SwitchboardGen and its messages speak of "the spec"; once it is public (see the serve
/// report), `ConfigYAML.read` becomes a conversion from its `YAMLNode`.
struct ConfigNode: Sendable {
    struct Pair: Sendable {
        var key: String
        var line: Int
        var value: ConfigNode
    }

    enum Value: Sendable {
        /// `plain` is false for quoted, block or tagged scalars (never a number, bool or null).
        case scalar(String, plain: Bool)
        case sequence([ConfigNode])
        case mapping([Pair])
    }

    var value: Value
    var line: Int

    var kindName: String {
        switch value {
        case .scalar: "a scalar"
        case .sequence: "a list"
        case .mapping: "a mapping"
        }
    }

    /// A plain empty scalar, `~` or `null`.
    var isNull: Bool {
        if case .scalar(let text, plain: true) = value { return text.isEmpty || text == "~" || text == "null" }
        return false
    }
}

/// Reads one YAML document into `ConfigNode`s.
enum ConfigYAML {
    static let maxDepth = 32

    private enum Frame {
        case sequence(line: Int, items: [ConfigNode])
        case mapping(line: Int, pairs: [ConfigNode.Pair], key: (text: String, line: Int)?, skip: Bool, seen: [String: Int])
    }

    /// The root node; nil for a document without content (only comments or nothing).
    static func read(_ bytes: [UInt8], file: String) throws(ConfigErrors) -> ConfigNode? {
        var errors: [ConfigError] = []
        let root: ConfigNode? = bytes.withUnsafeBufferPointer { buffer in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else {
                errors.append(ConfigError(file: file, line: 1, key: nil, "libyaml could not allocate a parser"))
                return nil
            }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            return run(&parser, file: file, errors: &errors)
        }
        if !errors.isEmpty { throw ConfigErrors(errors) }
        return root
    }

    private static func run(_ parser: inout yaml_parser_t, file: String, errors: inout [ConfigError]) -> ConfigNode? {
        var stack: [Frame] = []
        var root: ConfigNode?
        var documents = 0

        func attach(_ node: ConfigNode) {
            guard let top = stack.popLast() else {
                root = node
                return
            }
            switch top {
            case .sequence(let line, var items):
                items.append(node)
                stack.append(.sequence(line: line, items: items))
            case .mapping(let line, var pairs, let key, let skip, var seen):
                if let key {
                    if !skip { pairs.append(ConfigNode.Pair(key: key.text, line: key.line, value: node)) }
                    stack.append(.mapping(line: line, pairs: pairs, key: nil, skip: false, seen: seen))
                } else if case .scalar(let text, _) = node.value {
                    var duplicate = false
                    if let first = seen[text] {
                        errors.append(ConfigError(file: file, line: node.line, key: text,
                                                  "duplicate key (first at line \(first))"))
                        duplicate = true
                    } else {
                        seen[text] = node.line
                    }
                    stack.append(.mapping(line: line, pairs: pairs, key: (text, node.line), skip: duplicate, seen: seen))
                } else {
                    errors.append(ConfigError(file: file, line: node.line, key: nil,
                                              "a key must be a plain name, not \(node.kindName)"))
                    stack.append(.mapping(line: line, pairs: pairs, key: ("", node.line), skip: true, seen: seen))
                }
            }
        }

        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else {
                let problem = parser.problem.map { String(cString: $0) } ?? "unreadable input"
                var message = "YAML syntax error: \(problem)"
                if let context = parser.context {
                    message += " (\(String(cString: context)) at line \(Int(parser.context_mark.line) + 1))"
                }
                errors.append(ConfigError(file: file, line: Int(parser.problem_mark.line) + 1, key: nil, message))
                return nil
            }
            defer { yaml_event_delete(&event) }
            let line = Int(event.start_mark.line) + 1
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return root
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 {
                    errors.append(ConfigError(file: file, line: line, key: nil, "only one YAML document is allowed"))
                    return nil
                }
            case YAML_ALIAS_EVENT:
                errors.append(ConfigError(file: file, line: line, key: nil, "YAML aliases are not supported"))
                return nil
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                var text = ""
                if let value = scalar.value, scalar.length > 0 {
                    text = String(decoding: UnsafeBufferPointer(start: value, count: Int(scalar.length)), as: UTF8.self)
                }
                let plain = scalar.style == YAML_PLAIN_SCALAR_STYLE && scalar.tag == nil
                attach(ConfigNode(value: .scalar(text, plain: plain), line: line))
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                if stack.count >= maxDepth {
                    errors.append(ConfigError(file: file, line: line, key: nil, "nesting deeper than \(maxDepth) levels"))
                    return nil
                }
                if event.type == YAML_SEQUENCE_START_EVENT {
                    stack.append(.sequence(line: line, items: []))
                } else {
                    stack.append(.mapping(line: line, pairs: [], key: nil, skip: false, seen: [:]))
                }
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let top = stack.popLast() else { continue }
                switch top {
                case .sequence(let line, let items): attach(ConfigNode(value: .sequence(items), line: line))
                case .mapping(let line, let pairs, _, _, _): attach(ConfigNode(value: .mapping(pairs), line: line))
                }
            default:
                continue
            }
        }
    }
}
