/// The members of a JSON object, in insertion order, duplicates kept as parsed.
///
/// Lookup returns the last member with a key, as `JSON.parse` keeps the last duplicate.
/// Serialization writes what `JSON.stringify` writes for the equivalent JS object
/// (see `JSONValue.serialize(into:)`), so duplicates and index-like keys are handled there.
///
/// An object read from a message may hold only its validated text (`JSONText`) until a member
/// is asked for: a handler that passes `data` on untouched costs no parse and no re-encoding.
public struct JSONObject: Hashable, Sendable {
    public struct Member: Hashable, Sendable {
        /// The key; for an `unpairedKey`, its text with U+FFFD for each unpaired surrogate.
        /// Setting it sets a plain key (and clears `unpairedKey`).
        public var key: String {
            get { storedKey }
            set {
                storedKey = newValue
                unpairedKey = nil
            }
        }
        public var value: JSONValue
        /// The key, when it holds an unpaired surrogate (`"\ud800"`) that `key` cannot; such a key
        /// is told apart from every `String` key (lookups by `String` do not find it).
        public private(set) var unpairedKey: JSONUnpairedString?
        private var storedKey: String

        public init(key: String, value: JSONValue) {
            self.storedKey = key
            self.value = value
        }

        public init(key: JSONUnpairedString, value: JSONValue) {
            self.storedKey = key.lossy
            self.unpairedKey = key
            self.value = value
        }

        /// Whether this member's key is the plain key `key` (same UTF-8 bytes).
        @inline(__always)
        func hasKey(_ key: String) -> Bool { unpairedKey == nil && sameKey(storedKey, key) }

        /// Whether both members have the same key, as JS compares keys (code unit for code unit).
        @inline(__always)
        func hasSameKey(as other: Member) -> Bool {
            unpairedKey == nil ? other.hasKey(storedKey) : unpairedKey == other.unpairedKey
        }

        /// Bytes that identify the key as JS does: UTF-8, or 0xFF (never in UTF-8) and the WTF-8.
        var keyIdentity: [UInt8] {
            if let unpairedKey { return [0xFF] + unpairedKey.wtf8 }
            return Array(storedKey.utf8)
        }
    }

    enum Storage: Sendable {
        case members([Member])
        /// Canonical text, read where it lies (see `JSONText`).
        case text(JSONText)
    }

    var storage: Storage

    /// The members in insertion order.
    public internal(set) var members: [Member] {
        get {
            switch storage {
            case .members(let members): members
            case .text(let text): text.members
            }
        }
        _modify {
            var members = self.members
            storage = .members([])  // `members` is now the only reference: mutated in place
            defer { storage = .members(members) }
            yield &members
        }
    }

    public init() { storage = .members([]) }

    public init(_ pairs: [(key: String, value: JSONValue)]) {
        storage = .members(pairs.map { Member(key: $0.key, value: $0.value) })
    }

    /// Members sorted by key (a `Dictionary` has no order of its own).
    public init(_ dictionary: [String: JSONValue]) {
        storage = .members(dictionary.map { Member(key: $0.key, value: $0.value) }.sorted { $0.key < $1.key })
    }

    /// Members as given (keys that hold an unpaired surrogate included).
    public init(members: [Member]) { storage = .members(members) }

    /// An object held as its canonical text until a member is read.
    init(text: JSONText) { storage = .text(text) }

    /// Structural, as for the members (the same text is the same object without a parse).
    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        if case .text(let x) = a.storage, case .text(let y) = b.storage, x.bytes == y.bytes { return true }
        return a.members == b.members
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(members)
    }

    /// The value of the last member named `key`.
    ///
    /// Setting replaces the value of the last member named `key` in place (its position is kept,
    /// as a JS assignment keeps it), or appends a member; setting `nil` removes every member named `key`.
    public subscript(key: String) -> JSONValue? {
        get {
            if case .text(let text) = storage, let found = text.member(key) { return found }
            let members = self.members
            if let index = JSONObject.lastIndex(of: key, in: members) { return members[index].value }
            return nil
        }
        set {
            if let newValue {
                if let index = JSONObject.lastIndex(of: key, in: members) {
                    members[index].value = newValue
                } else {
                    members.append(Member(key: key, value: newValue))
                }
            } else {
                members.removeAll { $0.hasKey(key) }
            }
        }
    }

    /// Appends a member, even if `key` is already present.
    public mutating func append(key: String, value: JSONValue) {
        members.append(Member(key: key, value: value))
    }

    /// Keys in insertion order (duplicates included).
    public var keys: [String] { members.map(\.key) }

    private static func lastIndex(of key: String, in members: [Member]) -> Int? {
        var index = members.count
        while index > 0 {
            index -= 1
            if members[index].hasKey(key) { return index }
        }
        return nil
    }
}

extension JSONObject: RandomAccessCollection {
    public typealias Element = (key: String, value: JSONValue)

    /// Walks the members read once: an object held as text parses them on every `members`.
    public struct Iterator: IteratorProtocol {
        let members: [Member]
        var index = 0

        public mutating func next() -> (key: String, value: JSONValue)? {
            guard index < members.count else { return nil }
            defer { index += 1 }
            return (members[index].key, members[index].value)
        }
    }

    public func makeIterator() -> Iterator { Iterator(members: members) }

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
        storage = .members(elements.map { Member(key: $0.0, value: $0.1) })
    }
}
