/// The `messages` section: the shape of every message on the wire, in wire order.
///
/// Server messages the kernel writes (`from: kernel`) and the Redis envelope (`from: bus`)
/// become Swift field enums the kernel encodes from, so the spec decides the bytes; client
/// messages and messages the application writes (`from: app`) are described for the docs.

/// Who writes a message.
public enum MessageSourceName: String, Sendable, CaseIterable {
    /// Client to server; the kernel reads it (an input selects it by `event`).
    case client
    /// Server to client, encoded by the kernel from a generated field enum.
    case kernel
    /// Server to client, made by the application (e.g. the outbound transformer).
    case app
    /// Instance to instance on Redis; encoded by `BusEnvelope` from a generated field enum.
    case bus

    /// Whether the generator renders a field enum the Swift side encodes from.
    public var isRendered: Bool { self == .kernel || self == .bus }

    /// The direction in words, for the docs.
    public var words: String {
        switch self {
        case .client: "client to server"
        case .kernel, .app: "server to client"
        case .bus: "server to server (Redis)"
        }
    }
}

/// The JSON type of a field (or of a whole `data`).
public enum FieldTypeName: String, Sendable, CaseIterable {
    case string, strings, number, bool, object, any
    /// No value at all (only for `data`: the message carries no data).
    case none

    /// The type in words, for the docs.
    public var words: String {
        switch self {
        case .string: "string"
        case .strings: "array of strings"
        case .number: "number"
        case .bool: "boolean"
        case .object: "object"
        case .any: "any JSON value"
        case .none: "none"
        }
    }
}

/// The values a field may take: listed in the spec, or the messages of a table.
public enum FieldValues: Sendable, Equatable {
    case list([String])
    /// `values: errors`: the `message` of an entry of the `errors` section.
    case errorMessages
}

/// One member of a message's `data` (or of the bus envelope).
public struct MessageFieldSpec: Sendable, Equatable {
    /// The member name on the wire (`userId`).
    public var name: String
    public var line: Int
    public var type: FieldTypeName = .string
    /// When the member is written; nil: always.
    public var when: String?
    public var values: FieldValues?
    public var valuesLine = 0
    /// Present only in envelopes whose `type` field has one of these values (bus envelope).
    public var inTypes: [String] = []
    public var inTypesLine = 0
    public var doc = ""

    /// Whether the member may be absent.
    public var isOptional: Bool { when != nil || !inTypes.isEmpty }
}

/// One entry of `messages`.
public struct MessageSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var from: MessageSourceName = .client
    /// The wire `event` (nil for the bus envelope; `*` for "any other event name").
    public var event: String?
    public var eventLine = 0
    /// The type of `data` as a whole: `object` when there are fields.
    public var data: FieldTypeName = .object
    public var dataLine = 0
    /// Members of `data` (of the envelope itself for `from: bus`), in wire order.
    public var fields: [MessageFieldSpec] = []
    public var doc = ""

    /// `connected` -> `ConnectedField`.
    public var fieldTypeName: String { Names.upperCamel(name) + "Field" }
}
