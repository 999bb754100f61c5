import CYAML

/// A YAML node with the 1-based line and column where it starts.
///
/// The package's one YAML tree: the generator reads the spec into it and `switchboard serve`
/// its config and token files, each wording its own messages about what it finds.
public struct YAMLNode: Sendable {
    public enum Value: Sendable {
        /// `plain` is false for quoted, block or explicitly tagged scalars (never a number or bool).
        case scalar(String, plain: Bool)
        case sequence([YAMLNode])
        case mapping([YAMLPair])
    }

    public var value: Value
    public var line: Int
    public var column: Int

    public var kindName: String {
        switch value {
        case .scalar: "a scalar"
        case .sequence: "a sequence"
        case .mapping: "a mapping"
        }
    }

    public var scalar: String? {
        if case .scalar(let text, _) = value { return text }
        return nil
    }

    /// A plain empty scalar, `~` or `null`.
    public var isNull: Bool {
        if case .scalar(let text, plain: true) = value { return text.isEmpty || text == "~" || text == "null" }
        return false
    }
}

/// A mapping entry; keys are scalars.
public struct YAMLPair: Sendable {
    public var key: String
    public var keyLine: Int
    public var value: YAMLNode
}

/// Something wrong in a YAML document, at a 1-based line. `duplicateKey` and `nonScalarKey`
/// let reading go on (the entry is left out); the others end it with no tree.
public struct YAMLProblem: Sendable {
    public enum Kind: Sendable {
        /// libyaml could not allocate its parser.
        case noParser
        /// libyaml's own account: `YAML syntax error: <problem> (<context> at line N)`.
        case syntax(String)
        case secondDocument
        case alias
        case tooDeep(maxDepth: Int)
        case duplicateKey(String, firstLine: Int)
        /// A key that is a sequence or mapping (this node).
        case nonScalarKey(YAMLNode)
    }

    public var kind: Kind
    public var line: Int
}

/// Reads one YAML document through libyaml's event API into located nodes.
public enum YAMLReader {
    private enum Frame {
        case sequence(line: Int, column: Int, items: [YAMLNode])
        case mapping(line: Int, column: Int, pairs: [YAMLPair], key: (text: String, line: Int)?, skipValue: Bool,
                     seen: [String: Int])
    }

    /// The document's root (nil when it has no content or a problem ended reading) and its
    /// problems in the order met. Nesting deeper than `maxDepth` is refused: it bounds the
    /// tree and the recursion of whoever walks it.
    public static func read(_ bytes: [UInt8], maxDepth: Int) -> (root: YAMLNode?, problems: [YAMLProblem]) {
        var problems: [YAMLProblem] = []
        if bytes.isEmpty { return (nil, problems) }
        let root: YAMLNode? = bytes.withUnsafeBufferPointer { buffer in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else {
                problems.append(YAMLProblem(kind: .noParser, line: 1))
                return nil
            }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            return run(&parser, maxDepth: maxDepth, &problems)
        }
        return (root, problems)
    }

    private static func run(_ parser: inout yaml_parser_t, maxDepth: Int, _ problems: inout [YAMLProblem]) -> YAMLNode? {
        var stack: [Frame] = []
        var root: YAMLNode?
        var documents = 0

        func attach(_ node: YAMLNode, _ problems: inout [YAMLProblem]) {
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
                        problems.append(YAMLProblem(kind: .duplicateKey(text, firstLine: first), line: node.line))
                        skip = true
                    } else {
                        seen[text] = node.line
                    }
                    stack.append(.mapping(line: line, column: column, pairs: pairs, key: (text, node.line),
                                          skipValue: skip, seen: seen))
                } else {
                    problems.append(YAMLProblem(kind: .nonScalarKey(node), line: node.line))
                    stack.append(.mapping(line: line, column: column, pairs: pairs, key: ("", node.line),
                                          skipValue: true, seen: seen))
                }
            }
        }

        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else {
                problems.append(syntaxProblem(parser))
                return nil
            }
            defer { yaml_event_delete(&event) }
            let line = Int(event.start_mark.line) + 1
            let column = Int(event.start_mark.column) + 1

            switch event.type {
            case YAML_STREAM_END_EVENT:
                return root
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 {
                    problems.append(YAMLProblem(kind: .secondDocument, line: line))
                    return nil
                }
            case YAML_ALIAS_EVENT:
                problems.append(YAMLProblem(kind: .alias, line: line))
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
                attach(YAMLNode(value: .scalar(text, plain: plain), line: line, column: column), &problems)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                if stack.count >= maxDepth {
                    problems.append(YAMLProblem(kind: .tooDeep(maxDepth: maxDepth), line: line))
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
                    attach(YAMLNode(value: .sequence(items), line: line, column: column), &problems)
                case .mapping(let line, let column, let pairs, _, _, _):
                    attach(YAMLNode(value: .mapping(pairs), line: line, column: column), &problems)
                }
            default:
                continue
            }
        }
    }

    private static func syntaxProblem(_ parser: yaml_parser_t) -> YAMLProblem {
        let problem = parser.problem.map { String(cString: $0) } ?? "unreadable input"
        var message = "YAML syntax error: \(problem)"
        if let context = parser.context {
            message += " (\(String(cString: context)) at line \(Int(parser.context_mark.line) + 1))"
        }
        return YAMLProblem(kind: .syntax(message), line: Int(parser.problem_mark.line) + 1)
    }
}

extension YAMLReader {
    /// Deeper nesting is rejected (the spec is shallow).
    static let maxDepth = 64

    /// The spec's root node, or nil with at least one error, worded for the spec.
    static func parse(_ bytes: [UInt8], into sink: inout DiagnosticSink) -> YAMLNode? {
        let (root, problems) = read(bytes, maxDepth: maxDepth)
        for problem in problems {
            let line = problem.line
            switch problem.kind {
            case .noParser:
                sink.error(line, "libyaml could not allocate a parser", fix: "retry with more memory")
            case .syntax(let message):
                sink.error(line, message, fix: "correct the YAML near line \(line) (indentation, quotes, ':' inside plain text)")
            case .secondDocument:
                sink.error(line, "the spec must be a single YAML document", fix: "remove the second document (from line \(line))")
            case .alias:
                sink.error(line, "aliases are not supported", fix: "write the value out instead of '*alias'")
            case .tooDeep(let depth):
                sink.error(line, "nesting deeper than \(depth) levels", fix: "flatten the value")
            case .duplicateKey(let key, let first):
                sink.error(line, "duplicate key '\(key)' (first at line \(first))", fix: "remove or rename one of the two")
            case .nonScalarKey(let key):
                sink.error(line, "mapping keys must be scalars, not \(key.kindName)", fix: "use a plain name as the key")
            }
        }
        if root == nil && problems.isEmpty {
            sink.error(1, "the spec is empty", fix: "write the spec's sections (protocol, states, inputs, transitions, ...)")
        }
        return root
    }
}
