import Foundation
import Switchboard
import SwitchboardGen
import TestSupport

/// docs/api.yaml, read with the package's YAML reader, as a checker of real answers: the path
/// and method must be documented, the status listed for them, and the JSON body must have the
/// members its schema requires, with the documented types (nested objects and `$ref`s
/// followed). Records what was checked so a test can ask whether every operation was.
final class APIDocument: @unchecked Sendable {
    let root: YAMLNode
    private(set) var answered: Set<String> = []

    init() throws {
        let bytes = try readBytes(repoRoot + "/docs/api.yaml")
        let (root, problems) = YAMLReader.read(bytes, maxDepth: 64)
        guard problems.isEmpty, let root else { throw TestFailure("docs/api.yaml does not read: \(problems)") }
        self.root = root
    }

    /// Every documented `METHOD /path` (templates as written).
    var operations: [String] {
        guard let paths = root["paths"], case .mapping(let pairs) = paths.value else { return [] }
        return pairs.flatMap { path in
            (path.value.mappingKeys).map { "\($0.uppercased()) \(path.key)" }
        }
    }

    /// Problems with one answer to `METHOD template`; empty when it is as documented.
    func problems(_ method: String, _ template: String, status: Int, body: String) -> [String] {
        guard let operation = root["paths"]?[template]?[method.lowercased()] else {
            return ["\(method) \(template) is not in docs/api.yaml"]
        }
        guard let response = operation["responses"]?["\(status)"].map(resolve) else {
            return ["\(method) \(template): status \(status) is not documented (body \(body))"]
        }
        answered.insert("\(method) \(template) \(status)")
        guard let schema = response["content"]?["application/json"]?["schema"] else {
            return ["\(method) \(template) \(status): no application/json schema"]
        }
        let value: JSONValue
        do { value = try JSONValue.parse(body) } catch { return ["\(method) \(template) \(status): body is not JSON: \(body)"] }
        return conforms(value, resolve(schema), at: "\(method) \(template) \(status)")
    }

    func wasAnswered(_ operation: String, status: Int) -> Bool { answered.contains("\(operation) \(status)") }

    // MARK: - Schemas

    private func conforms(_ value: JSONValue, _ schema: YAMLNode, at place: String) -> [String] {
        var problems: [String] = []
        if let type = schema["type"]?.scalar {
            let nullable = schema["nullable"]?.scalar == "true"
            let matches: Bool = switch (type, value) {
            case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool): true
            case ("integer", .number(let number)): number.int != nil
            case (_, .null): nullable
            default: false
            }
            if !matches { return ["\(place): \(value.serialized()) is not a \(type)\(nullable ? " or null" : "")"] }
        }
        if let values = schema["enum"], case .sequence(let items) = values.value,
           !items.contains(where: { $0.scalar == Self.scalarText(value) }) {
            problems.append("\(place): \(value.serialized()) is not one of \(items.compactMap(\.scalar))")
        }
        guard case .object(let object) = value else {
            if case .array(let items) = value, let itemSchema = schema["items"].map(resolve) {
                for (index, item) in items.enumerated() { problems += conforms(item, itemSchema, at: "\(place)[\(index)]") }
            }
            return problems
        }
        if let required = schema["required"], case .sequence(let names) = required.value {
            for name in names.compactMap(\.scalar) where object[name] == nil {
                problems.append("\(place): the required member '\(name)' is missing from \(value.serialized())")
            }
        }
        let properties = schema["properties"]
        for key in object.keys {
            if let property = properties?[key] {
                problems += conforms(object[key]!, resolve(property), at: "\(place).\(key)")
            } else if let extra = schema["additionalProperties"] {
                if extra.scalar == "false" { problems.append("\(place): '\(key)' is not documented") }
                else if extra.scalar == nil { problems += conforms(object[key]!, resolve(extra), at: "\(place).\(key)") }
            } else if properties != nil {
                problems.append("\(place): '\(key)' is not documented")
            }
        }
        return problems
    }

    private static func scalarText(_ value: JSONValue) -> String? {
        switch value {
        case .string(let text): text
        case .number(let number): number.literal
        case .bool(let flag): flag ? "true" : "false"
        default: nil
        }
    }

    /// Follows `$ref: "#/components/..."`.
    private func resolve(_ node: YAMLNode) -> YAMLNode {
        guard let reference = node["$ref"]?.scalar, reference.hasPrefix("#/") else { return node }
        var current: YAMLNode? = root
        for part in reference.dropFirst(2).split(separator: "/") { current = current?[String(part)] }
        return current.map(resolve) ?? node
    }
}

extension YAMLNode {
    subscript(key: String) -> YAMLNode? {
        guard case .mapping(let pairs) = value else { return nil }
        return pairs.first { $0.key == key }?.value
    }

    var mappingKeys: [String] {
        guard case .mapping(let pairs) = value else { return [] }
        return pairs.map(\.key)
    }
}

func readBytes(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else { throw TestFailure("cannot read \(path)") }
    return [UInt8](data)
}
