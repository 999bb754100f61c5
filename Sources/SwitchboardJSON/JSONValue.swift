/// A JSON value, as `JSON.parse` produces it and `JSON.stringify` writes it.
///
/// Not declared `indirect`: the recursion already goes through arrays, and an indirect enum
/// would put every payload (even a `Bool`) in its own heap box.
///
/// Equality is structural: numbers compare by literal text (`1.0 != 1`), objects by their
/// members in order (duplicates included), strings by Swift's `String` equality (an
/// `unpairedString` equals only the same code units).
public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    /// A string with an unpaired surrogate, which `String` cannot hold (`"\ud800"`); the parser
    /// gives every such string this way, and only such strings, so each JS string has one form.
    case unpairedString(JSONUnpairedString)
    case array([JSONValue])
    case object(JSONObject)
}

extension JSONValue {
    public init(_ value: Bool) { self = .bool(value) }
    public init(_ value: Int) { self = .number(JSONNumber(value)) }
    public init(_ value: String) { self = .string(value) }

    /// A finite `value` becomes a number; NaN and infinities become `.null`, as `JSON.stringify` writes them.
    public init(_ value: Double) {
        if let number = JSONNumber(value) { self = .number(number) } else { self = .null }
    }

    /// For an object, the value of the last member named `key`; `nil` otherwise.
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    /// For an array, the element at `index` if it exists; `nil` otherwise.
    public subscript(index: Int) -> JSONValue? {
        if case .array(let array) = self, array.indices.contains(index) { return array[index] }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var numberValue: JSONNumber? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The string; for an `unpairedString`, its text with U+FFFD for each unpaired surrogate.
    public var stringValue: String? {
        switch self {
        case .string(let value): value
        case .unpairedString(let value): value.lossy
        default: nil
        }
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }
}

extension JSONValue: ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(JSONNumber(value)) }
    public init(floatLiteral value: Double) { self.init(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }

    /// Members in the order written; duplicate keys are kept (the last one wins on lookup).
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { (key: $0.0, value: $0.1) }))
    }
}

extension JSONValue: CustomStringConvertible {
    /// The compact JSON text (same as `serialized()`).
    public var description: String { serialized() }
}
