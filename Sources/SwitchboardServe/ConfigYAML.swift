import SwitchboardGen

/// Config and token files are read by the generator's `YAMLReader` (the package's one YAML
/// reader); this file words what it finds for `switchboard serve`'s messages.
enum ConfigYAML {
    static let maxDepth = 32

    /// The root node; nil for a document without content (only comments or nothing).
    static func read(_ bytes: [UInt8], file: String) throws(ConfigErrors) -> YAMLNode? {
        let (root, problems) = YAMLReader.read(bytes, maxDepth: maxDepth)
        guard problems.isEmpty else {
            throw ConfigErrors(problems.map { ConfigError(file: file, line: $0.line, key: key(of: $0), message(for: $0)) })
        }
        return root
    }

    private static func key(of problem: YAMLProblem) -> String? {
        if case .duplicateKey(let key, _) = problem.kind { return key }
        return nil
    }

    private static func message(for problem: YAMLProblem) -> String {
        switch problem.kind {
        case .noParser: "libyaml could not allocate a parser"
        case .syntax(let message): message
        case .secondDocument: "only one YAML document is allowed"
        case .alias: "YAML aliases are not supported"
        case .tooDeep(let depth): "nesting deeper than \(depth) levels"
        case .duplicateKey(_, let first): "duplicate key (first at line \(first))"
        case .nonScalarKey(let key): "a key must be a plain name, not \(key.configKindName)"
        }
    }
}

extension YAMLNode {
    /// What a config message calls the node's kind (a sequence is "a list" to its readers).
    var configKindName: String {
        switch value {
        case .scalar: "a scalar"
        case .sequence: "a list"
        case .mapping: "a mapping"
        }
    }
}
