/// The typed spec: every section of spec/protocol.yaml, each entry with its 1-based line.
/// Built by `SpecLoader`; `rows` (the expanded table) is filled in by `Validator`.
public struct ProtocolSpec: Sendable {
    /// The spec path as given (used in diagnostics, stamps and remarks).
    public var file: String
    /// Lowercase hex SHA-256 of the spec bytes.
    public var sha256: String
    public var name = ""
    public var version = 0
    public var states: [StateSpec] = []
    public var inputs: [InputSpec] = []
    public var guards: [GuardSpec] = []
    public var hooks: [HookSpec] = []
    public var timers: [TimerSpec] = []
    public var errors: [ErrorSpec] = []
    public var closeCodes: [CloseCodeSpec] = []
    public var startupErrors: [StartupErrorSpec] = []
    public var http: [HTTPAnswerSpec] = []
    public var defaults: [DefaultSpec] = []
    public var rooms: RoomsSpec?
    public var channels: ChannelsSpec?
    /// The `transitions` items as written.
    public var transitions: [TransitionSpec] = []
    /// The expanded table: one row per (state, input) of each item, grouped by cell in state and
    /// input order, spec order within a cell.
    public var rows: [TableRow] = []
    /// Warnings found while loading (errors make loading fail).
    public var warnings: [Diagnostic] = []
    /// Line of each section key that is present.
    public var sectionLines: [String: Int] = [:]

    public init(file: String, sha256: String) {
        self.file = file
        self.sha256 = sha256
    }

    /// The rows of one cell, in spec order.
    public func rows(state: String, input: String) -> [TableRow] {
        rows.filter { $0.state == state && $0.input == input }
    }
}

public struct StateSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var initial = false
    public var terminal = false
    /// The state name on the wire (several states may share one).
    public var wire = ""
    public var doc = ""
}

/// The input groups the kernel knows.
public enum InputGroupName: String, Sendable, CaseIterable {
    case client, hook, timer, transport, server
}

public struct InputSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var group: InputGroupName = .client
    /// The wire event that selects this client input (`event:`).
    public var event: String?
    public var eventLine = 0
    public var doc = ""
}

public struct GuardSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var doc = ""
}

public struct HookSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var doc = ""
}

public struct TimerSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    /// The default (type ms) the timer waits.
    public var after = ""
    public var afterLine = 0
    public var times = 1
    public var doc = ""
}

public struct ErrorSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    /// The `data.message` text on the wire.
    public var message = ""
    public var trigger = ""
    public var doc = ""
}

public enum ReconnectAdviceName: String, Sendable, CaseIterable {
    case yes, no
    case withNewToken = "with_new_token"

    /// The advice in words ("yes", "no", "with a new token").
    public var words: String {
        switch self {
        case .yes: "yes"
        case .no: "no"
        case .withNewToken: "with a new token"
        }
    }
}

public enum CloseOriginName: String, Sendable, CaseIterable {
    case kernel, codec
}

public struct CloseCodeSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var code = 0
    public var codeLine = 0
    public var reason = ""
    public var reconnect: ReconnectAdviceName = .no
    public var origin: CloseOriginName = .kernel
    public var triggers: [String] = []
    public var advice = ""
}

public struct StartupErrorSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var message = ""
    public var trigger = ""
}

public struct HTTPAnswerSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var status = 0
    public var body = ""
    public var trigger = ""
    public var doc = ""
}

/// The value types of `defaults` and the Swift types they become.
public enum DefaultType: String, Sendable, CaseIterable {
    case string, strings, int, ms, bool

    public var swiftType: String {
        switch self {
        case .string: "String"
        case .strings: "[String]"
        case .int: "Int"
        case .ms: "Int64"
        case .bool: "Bool"
        }
    }
}

public enum DefaultValue: Sendable, Equatable {
    case string(String)
    case strings([String])
    case int(Int64)
    case bool(Bool)
}

public struct DefaultSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var type: DefaultType
    public var value: DefaultValue
    public var doc = ""
}

public struct RoomsSpec: Sendable, Equatable {
    public var line: Int
    public var minLength = 0
    public var maxLength = 0
    public var reservedPrefix = ""
}

public struct ChannelsSpec: Sendable, Equatable {
    public var line: Int
    public var broadcast = ""
    /// Templates with one `{x}` placeholder.
    public var room = ""
    public var client = ""
    public var user = ""
    public var subscribe: [String] = []
    public var psubscribe: [String] = []
    public var emitterServerID = ""
    /// Lines of the fields, for diagnostics.
    public var fieldLines: [String: Int] = [:]
}

/// A name in the spec with its line.
public struct SpecName: Sendable, Equatable {
    public var name: String
    public var line: Int
}

/// `from:` or `on:` of a transition.
public enum Selector: Sendable, Equatable {
    /// `"*"`.
    case all(line: Int)
    case names([SpecName])
}

/// `x` or `not x` in `when:`.
public struct GuardLiteral: Sendable, Equatable, Hashable {
    public var name: String
    public var negated: Bool

    public var text: String { negated ? "not \(name)" : name }
}

/// The effects the kernel can execute (TransitionRow.swift's `EffectTemplate`).
public enum EffectKind: String, Sendable, CaseIterable {
    case ignore, touch, log
    case sendError = "send_error"
    case close
    case armTimer = "arm_timer"
    case cancelTimer = "cancel_timer"
    case call
    case recordIdentity = "record_identity"
    case markEncrypted = "mark_encrypted"
    case admit
    case sendConnected = "send_connected"
    case joinValidatedRooms = "join_validated_rooms"
    case leaveRooms = "leave_rooms"
    case release

    /// What the effect's argument names, or nil for a bare effect.
    public var argument: EffectArgument? {
        switch self {
        case .log: .text
        case .sendError: .error
        case .close: .closeCode
        case .armTimer, .cancelTimer: .timer
        case .call: .hook
        case .ignore, .touch, .recordIdentity, .markEncrypted, .admit, .sendConnected, .joinValidatedRooms,
             .leaveRooms, .release: nil
        }
    }
}

public enum EffectArgument: String, Sendable {
    case text, error
    case closeCode = "close code"
    case timer, hook

    /// Placeholder in fixes: `send_error: ERROR`.
    var placeholder: String {
        switch self {
        case .text: "TEXT"
        case .error: "ERROR"
        case .closeCode: "CLOSE_CODE"
        case .timer: "TIMER"
        case .hook: "HOOK"
        }
    }
}

/// One effect of a row: the kind and, for `log` and the referencing effects, its argument.
public struct RowEffect: Sendable, Equatable, Hashable {
    public var kind: EffectKind
    public var argument: String?

    public init(_ kind: EffectKind, _ argument: String? = nil) {
        self.kind = kind
        self.argument = argument
    }

    /// The spec spelling: `touch`, `send_error: invalid_message_format`.
    public var text: String {
        guard let argument else { return kind.rawValue }
        return kind == .log ? "\(kind.rawValue): \(Names.literal(argument))" : "\(kind.rawValue): \(argument)"
    }
}

/// An effect as written, with its line.
public struct EffectSpec: Sendable, Equatable {
    /// The name as written (may be unknown).
    public var name: String
    public var argument: String?
    public var line: Int
}

/// One item of `transitions`, as written.
public struct TransitionSpec: Sendable, Equatable {
    /// Line of the item's `- from:`.
    public var line: Int
    public var from: Selector
    public var on: Selector
    public var when: [GuardLiteral] = []
    public var whenLine = 0
    /// nil: stay in the from-state.
    public var to: SpecName?
    public var effects: [EffectSpec] = []
}

/// One row of the expanded table.
public struct TableRow: Sendable, Equatable {
    public var state: String
    public var input: String
    /// The `when` literals as written.
    public var when: [GuardLiteral]
    public var next: String
    public var effects: [RowEffect]
    /// Line of the transition item's `- from:`.
    public var line: Int

    public var required: [String] { when.filter { !$0.negated }.map(\.name) }
    public var forbidden: [String] { when.filter(\.negated).map(\.name) }
    public var whenText: String { when.map(\.text).joined(separator: ", ") }
}
