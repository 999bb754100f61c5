/// The members of a JSON object, in insertion order, duplicates kept as parsed.
///
/// Lookup returns the last member with a key, as `JSON.parse` keeps the last duplicate.
/// Serialization writes what `JSON.stringify` writes for the equivalent JS object
/// (see `JSONValue.serialize(into:)`), so duplicates and index-like keys are handled there.
public struct JSONObject: Hashable, Sendable {
    public struct Member: Hashable, Sendable {
        public var key: String
        public var value: JSONValue

        public init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    /// The members in insertion order.
    public internal(set) var members: [Member]

    public init() { members = [] }

    public init(_ pairs: [(key: String, value: JSONValue)]) {
        members = pairs.map { Member(key: $0.key, value: $0.value) }
    }

    /// Members sorted by key (a `Dictionary` has no order of its own).
    public init(_ dictionary: [String: JSONValue]) {
        members = dictionary.map { Member(key: $0.key, value: $0.value) }.sorted { $0.key < $1.key }
    }

    init(members: [Member]) { self.members = members }

    /// The value of the last member named `key`.
    ///
    /// Setting replaces the value of the last member named `key` in place (its position is kept,
    /// as a JS assignment keeps it), or appends a member; setting `nil` removes every member named `key`.
    public subscript(key: String) -> JSONValue? {
        get {
            if let index = lastIndex(of: key) { return members[index].value }
            return nil
        }
        set {
            if let newValue {
                if let index = lastIndex(of: key) {
                    members[index].value = newValue
                } else {
                    members.append(Member(key: key, value: newValue))
                }
            } else {
                members.removeAll { sameKey($0.key, key) }
            }
        }
    }

    /// Appends a member, even if `key` is already present.
    public mutating func append(key: String, value: JSONValue) {
        members.append(Member(key: key, value: value))
    }

    /// Keys in insertion order (duplicates included).
    public var keys: [String] { members.map(\.key) }

    private func lastIndex(of key: String) -> Int? {
        var index = members.count
        while index > 0 {
            index -= 1
            if sameKey(members[index].key, key) { return index }
        }
        return nil
    }
}

extension JSONObject: RandomAccessCollection {
    public typealias Element = (key: String, value: JSONValue)
    public var startIndex: Int { 0 }
    public var endIndex: Int { members.count }
    public subscript(position: Int) -> (key: String, value: JSONValue) {
        let member = members[position]
        return (member.key, member.value)
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// Members in the order written; duplicate keys are kept.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        members = elements.map { Member(key: $0.0, value: $0.1) }
    }
}
